import Postgres
import Logging

/// How long the customer's faces are kept (`MEDIA_RETENTION_DAYS`, docs/architecture.md#media-retention):
/// a selfie for `days` after its upload, a generated photo for `days` after its job ended.
/// The one place of the rule: `pinglass prune` removes by it and the job answer's `keptUntil`
/// shows it, both with these SQL expressions.
///
/// ```swift
/// let retention = MediaRetention(days: deps.config.mediaRetentionDays)
/// "SELECT \(retention.keptUntilSQL(job: "j")) AS kept_until FROM generation_jobs j"
/// ```
public struct MediaRetention: Equatable, Sendable {
    public static let defaultDays = 90
    /// Days a photo is kept (at least 1).
    public let days: Int

    public init(days: Int = MediaRetention.defaultDays) {
        self.days = max(1, days)
    }

    /// When the photos of the job (alias `job`) are removed, NULL while it runs.
    public func keptUntilSQL(job: String) -> String { "(\(job).finished_at + make_interval(days => \(days)))" }

    /// True when the photos of the job (alias `job`) are past their retention.
    public func photosExpiredSQL(job: String) -> String { "\(job).finished_at < now() - make_interval(days => \(days))" }

    /// True when the selfie (alias `reference`, a `reference_photos` row) is past its retention.
    public func referenceExpiredSQL(reference: String) -> String {
        "\(reference).created_at < now() - make_interval(days => \(days))"
    }
}

/// Removing stored photos: the avatar's deletion, the customer's `DELETE /api/me/data` and the
/// retention pass of `pinglass prune` share these steps. A generated photo keeps its row (the
/// money records and the audit count it) and is marked `media_removed_at`; a selfie's row is
/// deleted. Objects are deleted after the rows say so, outside any transaction; one that fails
/// is logged and left for `pinglass prune`, which deletes an object whose row is gone or
/// marked removed.
public enum MediaRemoval {
    /// Why a removal must wait: one of the photos is being sent to Telegram this moment.
    public struct DeliveryInFlight: Error, Equatable {}

    /// What to do with a photo whose delivery is waiting (`pending`) or being sent (`sending`).
    public enum InFlight: Equatable, Sendable {
        /// The customer's deletion: a waiting delivery is withdrawn (`failed`, with the
        /// reason: a photo that is gone cannot be sent, and a customer who deleted their
        /// photos does not want them sent); one being sent this moment cannot be called back:
        /// `DeliveryInFlight`, and the caller's transaction rolls back (the lease is short;
        /// asking again a minute later works).
        case withdrawOrRefuse
        /// The retention pass: such a photo is left for a later run, the others are removed.
        case skip
    }

    /// Marks the generated photos `photos` selects (ids, as SQL with `$1`…) removed, in `tx`,
    /// and returns their keys; their deliveries as `inFlight` says.
    ///
    /// Lock order, the same for every removal (docs/architecture.md#media-retention): the photos first
    /// (`FOR UPDATE`: the set is chosen once, and a concurrent removal of the same photos
    /// waits and then finds them removed), then their deliveries (`FOR UPDATE`). With both
    /// held, no delivery of these photos can change state before this commits: a deliverer's
    /// claim passes the locked rows over (`SKIP LOCKED`), its outcome waits, and a re-queue
    /// (`DeliveryRequeue`, which share-locks the photos first) waits and then finds them
    /// removed. So a photo is never marked removed while a delivery of it waits or is sent.
    public static func removeGenerated(_ tx: Transaction, photos: String, _ params: [PostgresEncodable?],
                                       reason: String, inFlight: InFlight = .withdrawOrRefuse) throws -> [String] {
        try removeGeneratedBatch(tx, photos: photos, params, reason: reason, inFlight: inFlight).keys
    }

    /// `removeGenerated`, also saying how many photos it looked at (locked, not yet removed):
    /// with `.skip` some of them may stay, so a batch's end is told by this count, not by the
    /// keys (`Pruner.pruneExpiredMedia`).
    public static func removeGeneratedBatch(_ tx: Transaction, photos: String, _ params: [PostgresEncodable?],
                                            reason: String, inFlight: InFlight = .withdrawOrRefuse) throws -> (keys: [String], lookedAt: Int) {
        let locked = try tx.query("""
            SELECT id, delivery_id FROM generated_photos
            WHERE id IN (\(photos)) AND media_removed_at IS NULL ORDER BY id FOR UPDATE
            """, params).map { (id: $0.requiredInt("id"), delivery: $0.int("delivery_id")) }
        let deliveryIDs = Set(locked.compactMap(\.delivery)).sorted().map(String.init)
        let busy = try tx.query("""
            SELECT id, state FROM telegram_deliveries WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE
            """, [deliveryIDs]).filter { ["pending", "sending"].contains($0.requiredString("state")) }
        var removable = locked
        switch inFlight {
        case .skip:
            let held = Set(busy.map { $0.requiredInt("id") })
            removable = locked.filter { $0.delivery.map { !held.contains($0) } ?? true }
        case .withdrawOrRefuse:
            if busy.contains(where: { $0.requiredString("state") == "sending" }) { throw DeliveryInFlight() }
            // Guarded on `pending`, though the rows are locked: the row count is the truth.
            try tx.execute("""
                UPDATE telegram_deliveries SET state = 'failed', last_error = left($2, 500), \(LeasedQueue.release)
                WHERE id = ANY($1::bigint[]) AND state = 'pending'
                """, [busy.map { String($0.requiredInt("id")) }, reason])
        }
        let keys = try tx.query("""
            UPDATE generated_photos SET media_removed_at = now()
            WHERE id = ANY($1::bigint[]) AND media_removed_at IS NULL
            RETURNING storage_key
            """, [removable.map { String($0.id) }]).map { $0.requiredString("storage_key") }
        return (keys, locked.count)
    }

    /// Deletes the objects (no transaction may be open); returns how many could not be deleted
    /// (logged; `pinglass prune` deletes them later).
    @discardableResult
    public static func deleteObjects(_ media: any MediaStore, _ keys: [String], log: Logger) -> Int {
        var failed = 0
        for key in keys {
            do {
                try media.delete(key: key)
            } catch {
                failed += 1
                log.warning("stored photo not deleted; pinglass prune deletes it later", metadata: ["key": "\(key)", "error": "\(error)"])
            }
        }
        return failed
    }
}

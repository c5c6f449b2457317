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

    /// Marks the generated photos `photos` selects (ids, as SQL with `$1`…) removed, in `tx`,
    /// and returns their keys. Deliveries still waiting to send one of them are withdrawn
    /// (`failed`, with the reason): a photo that is gone cannot be sent, and a customer who
    /// deleted their photos does not want them sent. A delivery being sent right now
    /// (`sending`) cannot be withdrawn: `DeliveryInFlight`, and the caller's transaction rolls
    /// back (the lease is short; asking again a minute later works).
    public static func removeGenerated(_ tx: Transaction, photos: String, _ params: [PostgresEncodable?],
                                       reason: String) throws -> [String] {
        let n = params.count
        // Guarded on `pending`: a row a deliverer claims meanwhile is `sending` and refused below.
        try tx.execute("""
            UPDATE telegram_deliveries d SET state = 'failed', last_error = left($\(n + 1), 500), \(LeasedQueue.release)
            WHERE d.state = 'pending' AND d.id IN (
                SELECT g.delivery_id FROM generated_photos g WHERE g.id IN (\(photos)) AND g.delivery_id IS NOT NULL)
            """, params + [reason])
        if try tx.query("""
            SELECT 1 FROM telegram_deliveries d
            WHERE d.state = 'sending' AND d.id IN (
                SELECT g.delivery_id FROM generated_photos g WHERE g.id IN (\(photos)) AND g.delivery_id IS NOT NULL)
            LIMIT 1
            """, params).first != nil {
            throw DeliveryInFlight()
        }
        return try tx.query("""
            UPDATE generated_photos SET media_removed_at = now()
            WHERE id IN (\(photos)) AND media_removed_at IS NULL
            RETURNING storage_key
            """, params).map { $0.requiredString("storage_key") }
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

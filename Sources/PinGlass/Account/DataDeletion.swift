import Logging
import Postgres

/// `DELETE /api/me/data`: the customer's faces go, the money records stay
/// (docs/architecture.md#media-retention).
///
/// Removed: every avatar of the caller (marked `deleted`, as `DELETE /api/avatars/{id}` does),
/// every selfie (rows and objects), every generated photo's object (released or withheld),
/// the receipt address and the time of consent. Kept: the users row (payments and jobs refer
/// to it), payments (with the address their receipt was sent to: a refund's receipt names the
/// same customer), refunds, jobs, their tasks, and the generated photos' rows marked
/// `media_removed_at` (what the customer got decides what was refunded, and `pinglass audit`
/// counts them). Photo deliveries still waiting are withdrawn (`MediaRemoval`).
///
/// Refused while a generation of the caller is queued or running (its selfies are in use and
/// its photos still coming), and while one of the caller's photos is being sent this moment.
///
/// ```swift
/// let counts = try DataDeletion.run(deps, userID: user.id, log: log)   // avatars, references, photos
/// ```
public enum DataDeletion {
    public struct Counts: Equatable, Sendable {
        public var avatars = 0
        public var references = 0
        public var photos = 0
    }

    public static func run(_ deps: Dependencies, userID: Int, log: Logger) throws -> Counts {
        var counts = Counts()
        let keys: [String] = try deps.db().withTransaction { tx in
            // The user row first, as `GenerationStart` locks it: no job of this user can start
            // until this commits, and one that started before is seen below.
            try tx.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", [userID])
            // The avatars next (reference uploads lock only their avatar): an upload waiting
            // here finds its avatar deleted and removes its object again.
            try tx.execute("SELECT 1 FROM avatars WHERE user_id = $1 AND status <> 'deleted' ORDER BY id FOR UPDATE", [userID])
            if try tx.query("SELECT 1 FROM generation_jobs WHERE user_id = $1 AND status IN ('queued', 'processing') LIMIT 1",
                            [userID]).first != nil {
                throw AccountError.generationRunning
            }
            let photos: [String]
            do {
                photos = try MediaRemoval.removeGenerated(
                    tx, photos: "SELECT g.id FROM generated_photos g JOIN generation_jobs j ON j.id = g.job_id WHERE j.user_id = $1",
                    [userID], reason: "withdrawn: the customer deleted their data")
            } catch is MediaRemoval.DeliveryInFlight {
                throw AccountError.deliveryInFlight
            }
            let refs = try tx.query("""
                DELETE FROM reference_photos WHERE avatar_id IN (SELECT id FROM avatars WHERE user_id = $1) RETURNING storage_key
                """, [userID]).map { $0.requiredString("storage_key") }
            counts.avatars = try tx.execute("""
                UPDATE avatars SET status = 'deleted', updated_at = now() WHERE user_id = $1 AND status <> 'deleted'
                """, [userID])
            try tx.execute("UPDATE users SET receipt_email = NULL, consent_at = NULL, updated_at = now() WHERE id = $1", [userID])
            counts.references = refs.count
            counts.photos = photos.count
            return refs + photos
        }
        MediaRemoval.deleteObjects(deps.media, keys, log: log)
        log.info("customer data deleted", metadata: ["avatars": "\(counts.avatars)", "references": "\(counts.references)",
                                                     "photos": "\(counts.photos)"])
        return counts
    }
}

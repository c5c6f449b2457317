import Postgres

/// An operator puts a failed delivery back in the queue (`pinglass requeue-delivery`, the
/// admin UI later): `failed → pending`, due now, `give_up_at` moved a full give-up period
/// ahead, the attempts kept (a row that keeps failing keeps its long backoff), recorded in
/// `admin_audit` in the same transaction. Guarded by `state = 'failed'`: a row that is
/// pending, being sent or sent is never touched. Refused for a row whose photos were removed
/// (the customer deleted them, or `MEDIA_RETENTION_DAYS` passed: docs/architecture.md#media-retention):
/// there is nothing left to send. Its photos are share-locked first, so a removal running
/// meanwhile (`MediaRemoval`, which locks them to mark them) is either seen here or sees
/// the row pending and withdraws it.
///
/// ```swift
/// switch try DeliveryRequeue.requeue(db, id: 42, actor: "cli:alice") {
/// case .requeued(let attempts, let giveUpAt): print("requeued after \(attempts) attempts, gives up at \(giveUpAt)")
/// case .notFound: print("no delivery 42")
/// case .notFailed(let state): print("delivery 42 is \(state), not failed")
/// case .photosRemoved(let n): print("delivery 42: \(n) of its photos were removed")
/// }
/// ```
public enum DeliveryRequeue {
    public enum Outcome: Equatable, Sendable {
        /// Back in the queue; `giveUpAt` ISO 8601 UTC.
        case requeued(attempts: Int, giveUpAt: String)
        case notFound
        case notFailed(state: String)
        /// Failed, and `count` of its photos are no longer stored: left failed.
        case photosRemoved(count: Int)
    }

    public static func requeue(_ db: Connection, id: Int, actor: String,
                               giveUpSeconds: Int = DeliveryBatches.giveUpSeconds) throws -> Outcome {
        let row = try db.withTransaction { tx -> Row? in
            try tx.execute("SELECT 1 FROM generated_photos WHERE delivery_id = $1 ORDER BY id FOR SHARE", [id])
            guard let row = try tx.query("""
                UPDATE telegram_deliveries d SET state = 'pending', run_at = now(), \(LeasedQueue.release),
                       give_up_at = greatest(give_up_at, now() + make_interval(secs => $2))
                WHERE id = $1 AND state = 'failed'
                  AND NOT EXISTS (SELECT 1 FROM generated_photos g WHERE g.delivery_id = d.id AND g.media_removed_at IS NOT NULL)
                RETURNING attempts, kind, job_id, chat_id, last_error,
                          to_char(give_up_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS give_up_at
                """, [id, giveUpSeconds]).first else { return nil }
            try AdminAudit.record(tx, actor: actor, action: "delivery.requeue", target: "telegram_delivery:\(id)", details: [
                "kind": .string(row.requiredString("kind")), "jobId": row.int("job_id").map { .int($0) } ?? .null,
                "chatId": .int(row.requiredInt("chat_id")), "attempts": .int(row.requiredInt("attempts")),
                "lastError": row.string("last_error").map { .string($0) } ?? .null])
            try tx.execute("SELECT pg_notify('deliver', $1)", ["requeue:\(id)"])
            return row
        }
        if let row { return .requeued(attempts: row.requiredInt("attempts"), giveUpAt: row.requiredString("give_up_at")) }
        // Only to say why nothing changed: the guarded UPDATE above decided.
        guard let state = try db.query("""
            SELECT state, (SELECT count(*) FROM generated_photos g WHERE g.delivery_id = d.id AND g.media_removed_at IS NOT NULL)::int AS removed
            FROM telegram_deliveries d WHERE id = $1
            """, [id], retry: .idempotent).first else {
            return .notFound
        }
        let removed = state.requiredInt("removed")
        if state.requiredString("state") == "failed", removed > 0 { return .photosRemoved(count: removed) }
        return .notFailed(state: state.requiredString("state"))
    }
}

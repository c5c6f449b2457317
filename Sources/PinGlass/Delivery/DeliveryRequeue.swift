import Postgres

/// An operator puts a failed delivery back in the queue (`pinglass requeue-delivery`, the
/// admin UI later): `failed → pending`, due now, `give_up_at` moved a full give-up period
/// ahead, the attempts kept (a row that keeps failing keeps its long backoff), recorded in
/// `admin_audit` in the same transaction. Guarded by `state = 'failed'`: a row that is
/// pending, being sent or sent is never touched.
///
/// ```swift
/// switch try DeliveryRequeue.requeue(db, id: 42, actor: "cli:alice") {
/// case .requeued(let attempts, let giveUpAt): print("requeued after \(attempts) attempts, gives up at \(giveUpAt)")
/// case .notFound: print("no delivery 42")
/// case .notFailed(let state): print("delivery 42 is \(state), not failed")
/// }
/// ```
public enum DeliveryRequeue {
    public enum Outcome: Equatable, Sendable {
        /// Back in the queue; `giveUpAt` ISO 8601 UTC.
        case requeued(attempts: Int, giveUpAt: String)
        case notFound
        case notFailed(state: String)
    }

    public static func requeue(_ db: Connection, id: Int, actor: String,
                               giveUpSeconds: Int = DeliveryBatches.giveUpSeconds) throws -> Outcome {
        let row = try db.withTransaction { tx -> Row? in
            guard let row = try tx.query("""
                UPDATE telegram_deliveries SET state = 'pending', run_at = now(), \(LeasedQueue.release),
                       give_up_at = greatest(give_up_at, now() + make_interval(secs => $2))
                WHERE id = $1 AND state = 'failed'
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
        guard let state = try db.query("SELECT state FROM telegram_deliveries WHERE id = $1", [id], retry: .idempotent).first else {
            return .notFound
        }
        return .notFailed(state: state.requiredString("state"))
    }
}

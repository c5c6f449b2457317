import Postgres
import JSON

/// Claiming rows, holding their chats, and giving them back.
extension Deliverer {
    /// A row this process claimed (state `sending`, lease `lease`).
    struct ClaimedDelivery {
        let id: Int
        let chatID: Int64
        let kind: String
        let jobID: Int?
        let batchNo: Int
        let payload: JSON
        /// Attempts including this one.
        let attempts: Int
        /// Telegram messages it makes (an album of N photos is N): its budget and its pace.
        let cost: Int
        let lease: String
        /// Claimed again after a lease ran out: an earlier send may have gone out.
        let reclaimed: Bool
    }

    /// The conditions under which a row (alias `d`) may be claimed, shared by the claim and
    /// by `secondsUntilDue` so both agree:
    /// - due: `pending` with `run_at` come, or `sending` whose lease ran out (its process died;
    ///   whether its send went out is unknown — the residual risk in `Deliverer`'s doc);
    /// - in order: a job's batches go out one after another, so its photos arrive in order
    ///   and the final message last; a row waits while an earlier batch of its job is unsent
    ///   (a failed one does not hold the rest back);
    /// - its chat's pace allows a message now (`telegram_chat_pacing`).
    static let dueSQL = "(d.state = 'pending' AND d.run_at <= now() OR \(LeasedQueue.deliveries.expired("d")))"
    static let inOrderSQL = """
        NOT EXISTS (SELECT 1 FROM telegram_deliveries e
                    WHERE e.job_id = d.job_id AND e.batch_no < d.batch_no AND e.state IN ('pending', 'sending'))
        """
    static let chatFreeSQL = "NOT EXISTS (SELECT 1 FROM telegram_chat_pacing p WHERE p.chat_id = d.chat_id AND p.next_send_at > now())"
    /// Telegram messages a row makes (an album of N photos counts N: Telegram
    /// leaves it open, so we assume N, docs/providers.md#A4). Capped at an album's size so a malformed row can
    /// never block the queue: loading it refuses it.
    static let costSQL = """
        CASE WHEN d.kind = 'album' AND jsonb_typeof(d.payload -> 'photos') = 'array'
             THEN least(\(DeliveryBatches.albumSize), greatest(1, jsonb_array_length(d.payload -> 'photos'))) ELSE 1 END
        """

    /// Claims due rows whose messages fit `budget` (at most `limit` rows), the longest waiting
    /// first, at most one per chat, in ONE statement (docs/reliability.md#R5):
    /// 1. `due`: claimable rows, ranked per chat (its oldest first);
    /// 2. `picked`: each chat's first, while the running count of messages fits the budget,
    ///    locked `FOR UPDATE SKIP LOCKED` (another deliverer's rows are passed over);
    /// 3. `held`: each picked chat is held until the lease ends — a guarded upsert that wins
    ///    only while the chat's pace allows a message now, so two deliverers that both saw a
    ///    chat free (different rows of it) cannot both send: the second finds it held;
    /// 4. the rows of the chats won become `sending` with a fresh lease token, the attempt
    ///    counted.
    func claim(_ db: Connection, budget: Int, rows limit: Int = 1000) throws -> [ClaimedDelivery] {
        let rows = try db.query("""
            WITH due AS (
                SELECT d.id, d.run_at, \(Self.costSQL) AS cost,
                       row_number() OVER (PARTITION BY d.chat_id ORDER BY d.id) AS turn
                FROM telegram_deliveries d
                WHERE \(Self.dueSQL) AND \(Self.inOrderSQL) AND \(Self.chatFreeSQL)
            ), budgeted AS (
                SELECT id, cost, sum(cost) OVER (ORDER BY run_at, id) AS running FROM due WHERE turn = 1
            ), picked AS (
                SELECT d.id, d.chat_id, d.state AS was, b.cost, b.running
                FROM telegram_deliveries d JOIN budgeted b ON b.id = d.id
                WHERE b.running <= $1 AND \(Self.dueSQL)
                ORDER BY b.running
                LIMIT $3
                FOR UPDATE OF d SKIP LOCKED
            ), held AS (
                INSERT INTO telegram_chat_pacing AS p (chat_id, next_send_at)
                SELECT chat_id, now() + make_interval(secs => $2) FROM picked
                ON CONFLICT (chat_id) DO UPDATE SET next_send_at = EXCLUDED.next_send_at
                WHERE p.next_send_at <= now()
                RETURNING p.chat_id
            )
            UPDATE telegram_deliveries d
            SET state = 'sending', \(LeasedQueue.grant(seconds: "$2")),
                attempts = d.attempts + 1
            FROM picked JOIN held ON held.chat_id = picked.chat_id
            WHERE d.id = picked.id
            RETURNING d.id, d.chat_id, d.kind, d.job_id, d.batch_no, d.payload::text AS payload, d.attempts,
                      picked.cost, picked.running, picked.was, \(LeasedQueue.token("d"))
            """, [budget, config.leaseSeconds, limit])
        return try rows.sorted { $0.requiredInt("running") < $1.requiredInt("running") }.map {
            ClaimedDelivery(id: $0.requiredInt("id"), chatID: Int64($0.requiredInt("chat_id")), kind: $0.requiredString("kind"),
                            jobID: $0.int("job_id"), batchNo: $0.requiredInt("batch_no"),
                            payload: try JSON.parse($0.requiredString("payload")), attempts: $0.requiredInt("attempts"),
                            cost: $0.requiredInt("cost"), lease: $0.requiredString("lease"), reclaimed: $0.string("was") == "sending")
        }
    }

    /// Right before the call: extends the lease and the chat's hold, guarded by the lease
    /// token. False when the row is not ours any more (its lease ran out and another
    /// deliverer took it): it must not be sent from here.
    func renew(_ db: Connection, _ row: ClaimedDelivery) throws -> Bool {
        try db.query("""
            WITH renewed AS (
                \(LeasedQueue.deliveries.renewSQL(returning: "chat_id"))
            ), held AS (
                UPDATE telegram_chat_pacing p SET next_send_at = greatest(p.next_send_at, now() + make_interval(secs => $3))
                FROM renewed WHERE p.chat_id = renewed.chat_id
                RETURNING 1
            )
            SELECT count(*)::int AS n FROM renewed
            """, [row.id, row.lease, config.leaseSeconds], retry: .idempotent)[0].requiredInt("n") == 1
    }

    /// Puts claimed rows back unsent (guarded by their lease tokens): `pending`, the attempt
    /// given back, their chats free again. Returns how many were still ours.
    @discardableResult
    func giveBack(_ db: Connection, _ rows: [ClaimedDelivery]) throws -> Int {
        guard !rows.isEmpty else { return 0 }
        return try db.query("""
            WITH back AS (
                UPDATE telegram_deliveries d SET state = 'pending', \(LeasedQueue.release),
                       attempts = greatest(d.attempts - 1, 0)
                FROM unnest($1::bigint[], $2::uuid[]) AS mine(id, lease)
                WHERE \(LeasedQueue.deliveries.held("d", id: "mine.id", token: "mine.lease"))
                RETURNING d.chat_id
            ), freed AS (
                UPDATE telegram_chat_pacing p SET next_send_at = now() FROM back WHERE p.chat_id = back.chat_id RETURNING 1
            )
            SELECT count(*)::int AS n FROM back
            """, [rows.map { String($0.id) }, rows.map(\.lease)], retry: .idempotent)[0].requiredInt("n")
    }

    /// Seconds until the next row may be claimed (0 when one is due now), nil when no row
    /// waits: when the command's loop should start the next pass. Counts the chats' pace,
    /// backoffs, 429 waits, leases that will run out, and the global budget (spent, or
    /// paused by a bot-wide 429).
    public func secondsUntilDue() throws -> Double? {
        guard let due = try secondsUntilARowIsDue() else { return nil }
        return max(due, try budget.secondsUntilFree(deps.db()))
    }

    func secondsUntilARowIsDue() throws -> Double? {
        try deps.db().query("""
            SELECT extract(epoch FROM min(at) - now())::float8 AS wait FROM (
                SELECT greatest(d.run_at, p.next_send_at) AS at
                FROM telegram_deliveries d LEFT JOIN telegram_chat_pacing p ON p.chat_id = d.chat_id
                WHERE d.state = 'pending' AND \(Self.inOrderSQL)
                UNION ALL
                SELECT min(lease_until) FROM telegram_deliveries WHERE state = 'sending'
            ) next
            """, retry: .idempotent).first?.double("wait").map { max(0, $0) }
    }
}

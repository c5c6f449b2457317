import Postgres
import ProviderWire

/// What Telegram's answer means for the row (docs/providers.md#telegram-errors), and recording it.
extension Deliverer {
    enum Verdict: Equatable {
        /// Sent: the message ids, one per photo of an album.
        case sent([Int])
        /// 429 flood control: again no sooner than this many seconds, the chat paced until then.
        case retryAfter(Int)
        /// 5xx, timeouts, network, storage unavailable: again after `DeliveryBackoff`, until
        /// `give_up_at`.
        case transient(String)
        /// Never again. `chatUnreachable` (403 blocked/deactivated/kicked, 400 chat not found):
        /// the chat's other waiting rows fail with it rather than each asking Telegram again.
        case permanent(String, chatUnreachable: Bool)
        /// 401: the bot token is wrong; the row goes back, the pass stops, the operator is alerted.
        case unauthorized(String)

        init(_ error: TelegramError) {
            switch error {
            case .retryAfter(let seconds): self = .retryAfter(max(1, seconds))
            case .transient(let why): self = .transient(why)
            case .unauthorized(let why): self = .unauthorized(why)
            case .permanent(let code, let description):
                self = .permanent(error.description,
                                  chatUnreachable: code == 403 || description.lowercased().contains("chat not found"))
            // Reaching here a rejected link means the bytes were refused too, and a second
            // migration means a chat that cannot be followed: both are refusals of this row.
            case .mediaURLRejected, .migrated: self = .permanent(error.description, chatUnreachable: false)
            }
        }
    }

    /// Records the outcome in ONE short transaction: the compare-and-set on the lease token
    /// with the row's business write, the chat's next pace, the counters and, for a user's
    /// delivery failed for good, the operator's alert. A lost compare-and-set (the lease ran
    /// out and another deliverer took the row) changes nothing and is logged. `.floodPaused`
    /// when a 429 paused every chat (`isBotFlood`).
    func record(_ verdict: Verdict, _ row: ClaimedDelivery, sentTo chat: Int64, _ db: Connection, _ report: inout Report) throws -> Turn {
        let paceSeconds = pace(chat, cost: row.cost)
        let result: RecordResult = try db.withTransaction { tx in
            let change: RecordResult
            switch verdict {
            case .sent(let ids):
                guard try LeasedQueue.deliveries.write(
                    tx, id: row.id, lease: row.lease,
                    set: "state = 'sent', sent_at = now(), telegram_message_ids = $3::bigint[], chat_id = $4, last_error = NULL",
                    [ids.map(String.init), chat], releasing: true) == .recorded else { return .leaseLost }
                try Counters.increment(tx, "telegram.sent")
                try Counters.increment(tx, "telegram.messages", by: row.cost)
                try self.pace(tx, chat: chat, after: paceSeconds)
                change = .sent
            case .retryAfter(let seconds):
                // Not the row's fault: its attempt is given back. Telegram's wait is honoured
                // for the chat always, and for every chat when the chat kept its own pace.
                guard let state = try retryLater(tx, row, after: Double(seconds), honouringDelay: true, "429: retry after \(seconds) s")
                else { return .leaseLost }
                try Counters.increment(tx, "telegram.rate_limited")
                try self.pace(tx, chat: chat, after: max(Double(seconds), paceSeconds))
                if state == "failed" {
                    let reason = "flood control past its give-up time"
                    try failed(tx, [(row.id, row.kind, row.jobID)], chat: chat, reason: reason)
                    change = .failed([(row.id, row.kind, row.jobID)], reason)
                } else if try isBotFlood(tx, chat: chat, cost: row.cost) {
                    try budget.exhaust(tx, for: Double(seconds))
                    try Counters.increment(tx, "telegram.flood_paused")
                    change = .floodPaused
                } else {
                    change = .rateLimited
                }
            case .transient(let why):
                guard let state = try retryLater(tx, row, after: DeliveryBackoff.seconds(afterAttempt: row.attempts),
                                                 honouringDelay: false, why)
                else { return .leaseLost }
                try Counters.increment(tx, "telegram.transient_errors")
                try self.pace(tx, chat: chat, after: paceSeconds)   // the request may have counted
                if state == "failed" {
                    let reason = "gave up after \(row.attempts) attempts: \(why)"
                    try failed(tx, [(row.id, row.kind, row.jobID)], chat: chat, reason: reason)
                    change = .failed([(row.id, row.kind, row.jobID)], reason)
                } else {
                    change = .retried
                }
            case .permanent(let why, let chatUnreachable):
                guard try LeasedQueue.deliveries.write(tx, id: row.id, lease: row.lease, set: "state = 'failed', last_error = left($3, 500)",
                                                       [why], releasing: true) == .recorded else { return .leaseLost }
                var rows: [(id: Int, kind: String, jobID: Int?)] = [(row.id, row.kind, row.jobID)]
                if chatUnreachable {
                    // Every other row waiting for this chat would get the same answer.
                    rows += try tx.query("""
                        UPDATE telegram_deliveries SET state = 'failed', last_error = left($2, 500)
                        WHERE chat_id = $1 AND state = 'pending'
                        RETURNING id, kind, job_id
                        """, [chat, "chat unreachable: " + why]).map { ($0.requiredInt("id"), $0.requiredString("kind"), $0.int("job_id")) }
                }
                try self.pace(tx, chat: chat, after: paceSeconds)
                try failed(tx, rows, chat: chat, reason: why)
                change = .failed(rows, why)
            case .unauthorized:
                preconditionFailure("an unauthorized answer stops the pass before recording")
            }
            if chat != row.chatID { try self.pace(tx, chat: row.chatID, after: 0) }   // the old chat's hold ends
            return change
        }
        switch result {
        case .sent:
            report.sent += 1
            report.messages += row.cost
            if row.kind != "alert" {
                log.info("delivery sent", metadata: Trace.job(db, row.jobID, [
                    "delivery_id": "\(row.id)", "kind": "\(row.kind)", "job_id": "\(row.jobID.map(String.init) ?? "-")"]))
            }
        case .rateLimited: report.rateLimited += 1
        case .floodPaused:
            report.rateLimited += 1
            log.warning("Telegram flood control on a chat that kept its pace: every chat waits", metadata: ["chat_id": "\(chat)"])
            return .floodPaused
        case .retried: report.retried += 1
        case .failed(let rows, let reason):
            report.failed += rows.count
            // Logged after the commit, the ids looked up outside the transaction.
            for r in rows {
                log.error("delivery failed for good", metadata: Trace.job(db, r.jobID, [
                    "delivery_id": "\(r.id)", "kind": "\(r.kind)", "chat_id": "\(chat)", "reason": "\(reason)"]))
            }
        case .leaseLost:
            report.leaseLost += 1
            log.warning("a delivery's lease ran out before its outcome was recorded; another deliverer has it",
                        metadata: Trace.job(db, row.jobID, ["delivery_id": "\(row.id)", "outcome": "\(verdict)"]))
        }
        return .next
    }

    enum RecordResult {
        case sent, rateLimited, floodPaused, retried, leaseLost
        case failed([(id: Int, kind: String, jobID: Int?)], String)
    }

    /// The ONE retry rule of a row that may go again (a 429, a transient failure), guarded by
    /// the lease token: due again `seconds` from now, never after its `give_up_at` (the
    /// maximum age). A transient failure's last try is moved to `give_up_at` itself; a 429's
    /// wait is Telegram's and is never shortened (`honouringDelay`), so when it would end
    /// past `give_up_at` the row gives up now. A row at or past `give_up_at` fails. A 429
    /// gives its attempt back (not the row's fault). The new state (`pending`, `failed`), nil
    /// when the lease was lost.
    func retryLater(_ tx: Transaction, _ row: ClaimedDelivery, after seconds: Double, honouringDelay: Bool,
                    _ why: String) throws -> String? {
        try tx.query("""
            WITH next AS (
                SELECT CASE WHEN $5 THEN now() + make_interval(secs => $3::float8)
                            ELSE least(now() + make_interval(secs => $3::float8), d.give_up_at) END AS at
                FROM telegram_deliveries d WHERE d.id = $1
            )
            UPDATE telegram_deliveries d
            SET state = CASE WHEN now() >= d.give_up_at OR next.at > d.give_up_at THEN 'failed' ELSE 'pending' END,
                run_at = next.at,
                attempts = CASE WHEN $5 THEN greatest(d.attempts - 1, 0) ELSE d.attempts END,
                \(LeasedQueue.release),
                last_error = left(CASE WHEN now() >= d.give_up_at OR next.at > d.give_up_at
                                       THEN 'gave up after ' || d.attempts || ' attempts: ' ELSE '' END || $4, 500)
            FROM next
            WHERE \(LeasedQueue.deliveries.held("d"))
            RETURNING d.state
            """, [row.id, row.lease, seconds, why, honouringDelay]).first?.string("state")
    }

    /// Seconds between messages to the chat: `chatIntervalSeconds`, and at least
    /// `DelivererDefaults.groupIntervalSeconds` for a group (negative id, like the admin chat:
    /// Telegram allows about 20 messages a minute in a group).
    func interval(_ chat: Int64) -> Double {
        chat < 0 ? max(config.chatIntervalSeconds, DelivererDefaults.groupIntervalSeconds) : config.chatIntervalSeconds
    }

    /// How long the chat waits after a row of `cost` messages.
    func pace(_ chat: Int64, cost: Int) -> Double { Double(cost) * interval(chat) }

    /// When the chat may get its next message: `seconds` from now.
    func pace(_ tx: Transaction, chat: Int64, after seconds: Double) throws {
        try tx.execute("""
            INSERT INTO telegram_chat_pacing (chat_id, next_send_at) VALUES ($1, now() + make_interval(secs => $2::float8))
            ON CONFLICT (chat_id) DO UPDATE SET next_send_at = EXCLUDED.next_send_at
            """, [chat, seconds])
    }

    /// A 429 for a chat that kept its own pace is Telegram's bot-wide flood control, not that
    /// chat's: the messages it got in the last minute, this row's included, are within what
    /// its pace allows in a minute. Then every chat must wait (docs/reliability.md#R7), not only
    /// this one. A chat over its pace (a group that got its 20 a minute) waits alone.
    func isBotFlood(_ tx: Transaction, chat: Int64, cost: Int) throws -> Bool {
        let recent = try tx.query("""
            SELECT coalesce(sum(\(Self.costSQL)), 0)::int AS n FROM telegram_deliveries d
            WHERE d.chat_id = $1 AND d.state = 'sent' AND d.sent_at > now() - interval '1 minute'
            """, [chat])[0].requiredInt("n")
        return Double(recent + cost) <= 60 / interval(chat)
    }

    /// Rows failed for good: counted, and for a user's job the operator alerted (one alert key
    /// per job; a failed alert raises no alert). `record` logs them once committed.
    func failed(_ tx: Transaction, _ rows: [(id: Int, kind: String, jobID: Int?)], chat: Int64, reason: String) throws {
        try Counters.increment(tx, "telegram.failed", by: rows.count)
        var alerted: Set<Int> = []
        for r in rows {
            guard r.kind != "alert", let jobID = r.jobID, alerted.insert(jobID).inserted else { continue }
            try Alerts.raise(tx, chatID: deps.config.adminTelegramChatID, key: "delivery-failed:job:\(jobID)",
                             text: "Telegram delivery \(r.id) (\(r.kind)) of job \(jobID) to chat \(chat) failed for good: \(reason)")
        }
    }

    /// The bot token was refused: the row goes back to the queue (its attempt given back),
    /// the operator is alerted (the alert waits in the queue like everything else until the
    /// token is fixed; the log line is immediate).
    func stopForToken(_ row: ClaimedDelivery, _ why: String, _ db: Connection, _ report: inout Report) throws {
        report.givenBack += try giveBack(db, [row])
        try db.withTransaction { tx in
            try Counters.increment(tx, "telegram.unauthorized")
            try Alerts.raise(tx, chatID: deps.config.adminTelegramChatID, key: "telegram-unauthorized",
                             text: "Telegram refused the bot token (401): \(why). Deliveries wait until TELEGRAM_BOT_TOKEN is fixed.")
        }
    }
}

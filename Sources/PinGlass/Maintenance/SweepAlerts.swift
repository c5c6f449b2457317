import Postgres
import PinGlassConfig
import Platform

/// The alerts `pinglass sweep` checks on every pass, each one read-only query,
/// raised through `Alerts.raise` (so at most one message per key per hour reaches the admin
/// chat, and every pass logs it):
///
/// - `worker-silent:<duty>`: a duty that has run before (it has a `worker_runs` row) has
///   had no successful pass on any host for `workerSilenceSeconds` (a day and two hours
///   for the daily `prune`, two hours and ten minutes for the hourly `audit`). A pass that
///   fails counts as silent: it does not do its work.
///   The sweep does not judge itself: it is running.
/// - `queue-stale:<queue>`: due work has waited longer than `queueAlertSeconds`: tasks to
///   submit (`dispatch`), running tasks to ask Kie about (`poll-kie`), deliveries
///   (`deliver`: only rows the deliverer could claim now, with the deliverer's own rules,
///   not those held back by design behind an earlier batch of their job or their chat's
///   pace), refunds (`refund`), or (`jobs`) a job still open that long after the
///   latest moment its tasks could have ended (its deadline, plus a task's deadline and
///   the sweep's grace).
/// - `refunds-owed`: money owed to customers: a refund `failed` (its payment not refunded in
///   full since), or still `requested` (outcome unknown, or held) `SweeperDefaults.refundOwedSeconds`
///   after it was created. One constant key, so while any is left the message repeats every
///   hour and every pass logs it: the per-refund `refund-failed:<id>` alert is raised once,
///   and goes nowhere when the admin chat is missing or wrong. An operator may acknowledge
///   it (`pinglass ack-alert refunds-owed`): quiet while every owed refund was acknowledged.
/// - `tbank-test-mode-public`: T-Bank is in test mode on a public install (`PUBLIC_BASE_URL`
///   not loopback): customers pay on the test terminal and that money buys nothing there
///   (`PaymentEligibility`), so the switch to production was probably forgotten. Repeats
///   every hour while it lasts.
/// - `http-5xx`: at least `serverErrorAlertCount` 5xx answers in the last
///   `serverErrorWindowSeconds` (`ServerErrors`; answers given because PostgreSQL itself
///   was down cannot be counted, and show as silent duties instead).
/// - `webhook-signature-failures` and `payment-success-ratio`: `SweepAlerts+Money.swift`.
///
/// Each message ends with a link to the admin page that explains it (`Condition.page`
/// under `adminBaseURL`, the install's `PUBLIC_BASE_URL`; no link without one).
///
/// ```swift
/// let found = try SweepAlerts(config: Sweeper.Config(), adminChatID: config.adminTelegramChatID).raise(db)
/// ```
public struct SweepAlerts {
    public let config: Sweeper.Config
    public let adminChatID: Int64?
    /// `Config.isPublicInstall`: alert when T-Bank's test mode is in force there.
    public var publicInstall = false
    /// `PUBLIC_BASE_URL`: where the admin pages an alert links to are.
    public var adminBaseURL: String?

    public init(config: Sweeper.Config, adminChatID: Int64?) {
        self.config = config
        self.adminChatID = adminChatID
    }

    /// One alert condition: its key (the hourly de-duplication key), the message, and the
    /// admin page (a path) that explains it.
    public struct Condition: Equatable, Sendable {
        public let key: String
        public let text: String
        public var page: String? = nil
    }

    /// The message sent: the text, then the admin page's address when the install has one.
    public func message(_ c: Condition) -> String {
        guard let page = c.page, let base = adminBaseURL, !base.isEmpty else { return c.text }
        return c.text + "\n" + (base.hasSuffix("/") ? String(base.dropLast()) : base) + page
    }

    /// Raises every condition found: how many were found and how many new messages queued.
    public func raise(_ db: Connection) throws -> (found: Int, queued: Int) {
        let found = try conditions(db)
        var queued = 0
        for c in found {
            if try Alerts.raise(db, chatID: adminChatID, key: c.key, text: message(c)) { queued += 1 }
        }
        return (found.count, queued)
    }

    public func conditions(_ db: Connection) throws -> [Condition] {
        try silentDuties(db) + staleQueues(db) + refundsOwed(db) + testModeInPublic(db) + serverErrors(db)
            + webhookSignatureFailures(db) + paymentSuccessRatio(db)
    }

    func testModeInPublic(_ db: Connection) throws -> [Condition] {
        guard publicInstall, try PaymentSettings.terminalMode(db) == .test else { return [] }
        return [Condition(key: "tbank-test-mode-public", text: """
            T-Bank is in test mode on a public install (PUBLIC_BASE_URL is not loopback): new payments go to the \
            test terminal, and test payments buy nothing here except for TEST_TELEGRAM_IDS. Switch with \
            pinglass settings tbank-mode production; this repeats hourly until then.
            """, page: "/admin/settings")]
    }

    func silentDuties(_ db: Connection) throws -> [Condition] {
        let duties = DutyName.allCases.filter { $0 != .sweep }
        return try db.query("""
            SELECT name, to_char(max(finished_at) FILTER (WHERE ok) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS last_ok
            FROM worker_runs WHERE name = ANY($1::text[])
            GROUP BY name
            HAVING NOT coalesce(bool_or(coalesce(ok, false) AND finished_at > now() - make_interval(secs =>
                       CASE name WHEN $2 THEN $3::int WHEN $5 THEN $6::int ELSE $4::int END)), false)
               -- a host's very first pass, started within the window and still running, is not silence
               AND NOT coalesce(bool_or(finished_at IS NULL AND started_at > now() - make_interval(secs =>
                       CASE name WHEN $2 THEN $3::int WHEN $5 THEN $6::int ELSE $4::int END)), false)
            ORDER BY name
            """, [duties.map(\.rawValue), DutyName.prune.rawValue, SweeperDefaults.dailySilenceSeconds, config.workerSilenceSeconds,
                  DutyName.audit.rawValue, SweeperDefaults.hourlySilenceSeconds],
            retry: .idempotent).map { row in
            let name = row.requiredString("name")
            let last = row.string("last_ok").map { "its last successful pass ended \($0) UTC" } ?? "it has never finished a pass successfully"
            return Condition(key: "worker-silent:\(name)", text: "pinglass \(name) has not run successfully on any host lately: \(last). Check cron and its log.",
                             page: "/admin")
        }
    }

    func staleQueues(_ db: Connection) throws -> [Condition] {
        let jobSlack = config.generation.taskDeadlineSeconds + config.deadlineGraceSeconds + config.queueAlertSeconds
        return try db.query("""
            SELECT 'dispatch' AS queue, count(*)::int AS n
            FROM generation_tasks t JOIN generation_jobs j ON j.id = t.job_id
            WHERE t.state = 'queued' AND j.status IN ('queued', 'processing') AND t.run_at < now() - make_interval(secs => $1::int)
            UNION ALL
            SELECT 'poll-kie', count(*)::int FROM generation_tasks
            WHERE state = 'running' AND run_at < now() - make_interval(secs => $1::int)
            UNION ALL
            SELECT 'deliver', count(*)::int FROM telegram_deliveries d
            WHERE d.state = 'pending' AND d.run_at < now() - make_interval(secs => $1::int)
              AND \(Deliverer.inOrderSQL) AND \(Deliverer.chatFreeSQL)
            UNION ALL
            SELECT 'refund', count(*)::int FROM refunds
            WHERE state IN ('pending', 'requested') AND run_at < now() - make_interval(secs => $1::int)
              AND \(LeasedQueue.free)
            UNION ALL
            SELECT 'jobs', count(*)::int FROM generation_jobs
            WHERE status IN ('queued', 'processing') AND deadline_at < now() - make_interval(secs => $2::int)
            """, [config.queueAlertSeconds, jobSlack], retry: .idempotent).compactMap { row in
            let n = row.requiredInt("n")
            guard n > 0 else { return nil }
            let queue = row.requiredString("queue")
            let text = queue == "jobs"
                ? "\(n) generation job(s) still open long after their deadline; docs/runbook.md#queue-stale has the query that lists them."
                : "Queue \(queue): \(n) due item(s) waiting longer than \(config.queueAlertSeconds / 60) min. Is pinglass \(queue) running?"
            let page = switch queue {
            case "dispatch", "jobs": "/admin/jobs?status=queued"
            case "poll-kie": "/admin/jobs?status=processing"
            default: "/admin"
            }
            return Condition(key: "queue-stale:\(queue)", text: text, page: page)
        }
    }

    /// The refunds owed now (`refunds-owed`): failed ones whose payment is not refunded in
    /// full, and ones still `requested` `$1` seconds after they were made. Shared with
    /// `acknowledgeRefundsOwed`, so an acknowledgement covers exactly what the alert reports.
    static let owedSQL = """
        SELECT r.id, r.state, r.amount_kopecks FROM refunds r JOIN payments p ON p.id = r.payment_id
        WHERE (r.state = 'failed' AND p.status <> 'refunded')
           OR (r.state = 'requested' AND r.created_at < now() - make_interval(secs => $1::int))
        """

    func refundsOwed(_ db: Connection) throws -> [Condition] {
        let r = try db.query("""
            WITH owed AS (\(Self.owedSQL))
            SELECT count(*) FILTER (WHERE state = 'failed')::int AS failed,
                   count(*) FILTER (WHERE state = 'requested')::int AS unresolved,
                   coalesce(sum(amount_kopecks), 0)::bigint AS kopecks,
                   array_to_string((array_agg(id ORDER BY id))[1:20], ', ') AS ids,
                   EXISTS (SELECT 1 FROM alert_acks a WHERE a.key = 'refunds-owed' AND a.until > now()
                           AND (SELECT coalesce(array_agg(id), '{}') FROM owed) <@ a.covers) AS acknowledged
            FROM owed
            """, [SweeperDefaults.refundOwedSeconds], retry: .idempotent)[0]
        let failed = r.requiredInt("failed"), unresolved = r.requiredInt("unresolved")
        // Quiet while an operator has acknowledged every refund it would report.
        guard failed + unresolved > 0, r.bool("acknowledged") != true else { return [] }
        let total = failed + unresolved
        return [Condition(key: "refunds-owed", text: """
            Money owed to customers: \(failed) refund(s) failed and \(unresolved) unresolved for over \
            \(SweeperDefaults.refundOwedSeconds / 3600) h, \(Money(kopecks: r.requiredInt("kopecks"))) in all \
            (refund ids \(r.string("ids") ?? "")\(total > 20 ? ", …" : "")). Fix each cause, then pinglass requeue-refund <id> \
            for a failed one, or pinglass resolve-refund <id> for a held one; this repeats hourly until none is left \
            (pinglass ack-alert refunds-owed --reason "…" quiets it until another refund is owed).
            """, page: "/admin")]
    }

    /// An operator acknowledges the refunds owed now (`pinglass ack-alert refunds-owed`):
    /// `refunds-owed` stays quiet for `seconds` unless a refund not among them becomes owed.
    /// One transaction with its audit row. Returns how many refunds and how much it covers;
    /// nil when none is owed (nothing to acknowledge).
    public static func acknowledgeRefundsOwed(_ db: Connection, reason: String, seconds: Int,
                                              actor: String) throws -> (refunds: Int, kopecks: Int, ids: String)? {
        let reason = String(reason.trimmingSpaces().prefix(500))
        return try db.withTransaction { tx in
            guard let r = try tx.query("""
                WITH owed AS (\(owedSQL))
                INSERT INTO alert_acks (key, covers, until, acked_by, reason)
                SELECT 'refunds-owed', array_agg(id ORDER BY id), now() + make_interval(secs => $2::int), $3, $4 FROM owed
                HAVING count(*) > 0
                ON CONFLICT (key) DO UPDATE SET covers = excluded.covers, until = excluded.until, acked_by = excluded.acked_by,
                       reason = excluded.reason, acked_at = now()
                RETURNING cardinality(covers) AS n, array_to_string(covers, ', ') AS ids,
                          (SELECT coalesce(sum(amount_kopecks), 0) FROM owed)::bigint AS kopecks
                """, [SweeperDefaults.refundOwedSeconds, seconds, actor, reason]).first else { return nil }
            try AdminAudit.record(tx, actor: actor, action: "alert.ack", target: "alert:refunds-owed",
                             details: ["refundIds": .string(r.requiredString("ids")), "seconds": .int(seconds), "reason": .string(reason)])
            return (r.requiredInt("n"), r.requiredInt("kopecks"), r.requiredString("ids"))
        }
    }

    func serverErrors(_ db: Connection) throws -> [Condition] {
        let n = try ServerErrors.recent(db, seconds: config.serverErrorWindowSeconds)
        guard n >= config.serverErrorAlertCount else { return [] }
        return [Condition(key: "http-5xx", text: "The API answered 5xx \(n) times in the last \(config.serverErrorWindowSeconds / 60) min. See the pinglass-fcgi log.", page: "/admin")]
    }
}

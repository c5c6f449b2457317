import Postgres

/// The `/metrics` series read from PostgreSQL: the same numbers whichever worker (or VM)
/// answers. One statement per scrape (a few grouped counts and minimums over the queue
/// tables, jobs, payments, refunds, the `counters` table and `worker_runs`), so a scrape every
/// 15 s costs one round trip.
///
/// ```swift
/// var text = PrometheusText()
/// try DatabaseMetrics.read(db).write(into: &text)
/// ```
public struct DatabaseMetrics: Sendable {
    /// A queue table, its states (every one gets a depth series, zero included) and how the
    /// age of its oldest row in an open state is measured.
    struct Queue: Sendable {
        let table: String
        let states: [String]
        /// States of work still to do: these get an oldest-age series.
        let open: [String]
        /// The column the age is measured from.
        let since: String
        /// One grouped count per filter ("" = the whole table).
        var filters = [""]
    }

    static let queues = [
        // Tasks are kept forever (their photos point at them), so finished ones would make
        // every scrape read the whole table (100k rows: ~40 ms on the bench machine); only the
        // open states are counted, through their partial indexes (jobs by status show the
        // outcomes). Tasks have no created_at: a queued task counts from its run_at (when it
        // was queued, or its retry became due), a running one from its submission to Kie.
        Queue(table: "generation_tasks", states: ["queued", "submitting", "running"],
              open: ["queued", "submitting", "running"], since: "coalesce(submitted_at, run_at)",
              filters: ["WHERE state IN ('queued', 'running')", "WHERE state = 'submitting'"]),
        // Deliveries and refunds stay small: prune removes finished deliveries, refunds are few.
        Queue(table: "telegram_deliveries", states: ["pending", "sending", "sent", "failed"],
              open: ["pending", "sending"], since: "created_at"),
        Queue(table: "refunds", states: ["pending", "requested", "succeeded", "failed"],
              open: ["pending", "requested"], since: "created_at"),
    ]
    static let jobStatuses = ["queued", "processing", "completed", "partial", "failed", "canceled"]

    /// `counters` rows that also feed a named family (every row is in `pinglass_events_total`
    /// too). Every `telegram.<reason>` row is a Telegram failure except the successes the
    /// deliver duty counts (`telegramSuccesses`).
    static let kieRateLimited = ["kie.rate_limited": "create_task", "kie.poll_rate_limited": "record_info"]
    static let storageUploadFailures = "storage.upload_failures"
    static let telegramPrefix = "telegram."
    static let telegramSuccesses: Set<String> = ["telegram.sent", "telegram.messages"]

    /// What one scrape read.
    var queueDepth: [String: [String: Int]] = [:]          // table → state → rows
    var queueOldestAge: [String: [String: Double]] = [:]   // table → open state → seconds
    var jobs: [String: Int] = [:]
    var payments: [String: Int] = [:]
    var refundsSent = 0, refundsFailed = 0, refundedKopecks = 0
    var counters: [(name: String, value: Int)] = []
    /// A duty's heartbeat on one host (`worker_runs`; the series keep their `pinglass_worker_`
    /// names, which dashboards and alert rules use).
    struct DutyRun: Sendable { let duty, host: String; let started: Double; let finished: Double?; let ok: Bool? }
    var dutyRuns: [DutyRun] = []

    static let sql: String = {
        var parts = queues.flatMap { q in
            q.filters.map { filter in
                """
                SELECT 'queue' AS kind, '\(q.table)' AS a, state AS b, count(*)::float8 AS n,
                       extract(epoch FROM now() - min(\(q.since)))::float8 AS x, NULL::bool AS ok
                FROM \(q.table) \(filter) GROUP BY state
                """
            }
        }
        parts += [
            "SELECT 'jobs', status, NULL, count(*)::float8, NULL, NULL FROM generation_jobs GROUP BY status",
            "SELECT 'payments', status, NULL, count(*)::float8, NULL, NULL FROM payments GROUP BY status",
            "SELECT 'refunded', NULL, NULL, coalesce(sum(amount_kopecks), 0)::float8, NULL, NULL FROM refunds WHERE state = 'succeeded'",
            "SELECT 'counter', name, NULL, value::float8, NULL, NULL FROM counters",
            """
            SELECT 'worker', name, host, extract(epoch FROM started_at)::float8, extract(epoch FROM finished_at)::float8, ok
            FROM worker_runs
            """,
        ]
        return parts.joined(separator: "\nUNION ALL\n")
    }()

    /// Reads everything in one statement (read-only: safe to retry).
    public static func read(_ db: some Queryable) throws -> DatabaseMetrics {
        var m = DatabaseMetrics()
        for q in queues {
            m.queueDepth[q.table] = Dictionary(uniqueKeysWithValues: q.states.map { ($0, 0) })
            m.queueOldestAge[q.table] = Dictionary(uniqueKeysWithValues: q.open.map { ($0, 0) })
        }
        m.jobs = Dictionary(uniqueKeysWithValues: jobStatuses.map { ($0, 0) })
        m.payments = Dictionary(uniqueKeysWithValues: PaymentStatus.allCases.map { ($0.rawValue, 0) })
        for r in try db.query(sql, retry: .idempotent) {
            let a = r.string("a") ?? "", b = r.string("b") ?? ""
            let n = r.double("n") ?? 0
            switch r.string("kind") {
            case "queue":
                m.queueDepth[a, default: [:]][b] = Int(n)
                let open = queues.first { $0.table == a }?.open ?? []
                // A row due in the future (a retry waiting out its backoff) is not late: 0.
                if open.contains(b) { m.queueOldestAge[a, default: [:]][b] = max(0, r.double("x") ?? 0) }
                if a == "refunds" && b == "succeeded" { m.refundsSent = Int(n) }
                if a == "refunds" && b == "failed" { m.refundsFailed = Int(n) }
            case "jobs": m.jobs[a] = Int(n)
            case "payments": m.payments[a] = Int(n)
            case "refunded": m.refundedKopecks = Int(n)
            case "counter": m.counters.append((a, Int(n)))
            case "worker":
                m.dutyRuns.append(DutyRun(duty: a, host: b, started: n, finished: r.double("x"), ok: r.bool("ok")))
            default: break
            }
        }
        m.counters.sort { $0.name < $1.name }
        m.dutyRuns.sort { ($0.duty, $0.host) < ($1.duty, $1.host) }
        return m
    }

    /// Every family, also those with no row yet (a missing counter row is a zero).
    public func write(into text: inout PrometheusText) {
        text.declare("pinglass_queue_depth", .gauge, "Rows of a queue table by state (generation_tasks: open states only).")
        text.declare("pinglass_queue_oldest_age_seconds", .gauge,
                     "Age of the oldest row in an open state (0 when none): since created_at for telegram_deliveries and refunds, since submission (running) or queueing (queued) for generation_tasks.")
        for q in Self.queues {
            for (state, n) in (queueDepth[q.table] ?? [:]).sorted(by: { $0.key < $1.key }) {
                text.add("pinglass_queue_depth", ["queue": q.table, "state": state], Double(n))
            }
        }
        for q in Self.queues {
            for (state, age) in (queueOldestAge[q.table] ?? [:]).sorted(by: { $0.key < $1.key }) {
                text.add("pinglass_queue_oldest_age_seconds", ["queue": q.table, "state": state], (age * 1000).rounded() / 1000)
            }
        }
        text.declare("pinglass_jobs", .gauge, "Generation jobs by status.")
        for (status, n) in jobs.sorted(by: { $0.key < $1.key }) { text.add("pinglass_jobs", ["status": status], Double(n)) }
        text.declare("pinglass_payments", .gauge, "Payments by status.")
        for (status, n) in payments.sorted(by: { $0.key < $1.key }) { text.add("pinglass_payments", ["status": status], Double(n)) }

        text.declare("pinglass_kie_rate_limited_total", .counter, "Kie answers 429 (the request was dropped), by call.")
        for (counter, call) in Self.kieRateLimited.sorted(by: { $0.value < $1.value }) {
            text.add("pinglass_kie_rate_limited_total", ["call": call], Double(value(of: counter)))
        }
        text.declare("pinglass_storage_upload_failures_total", .counter, "Generated photos whose upload to storage failed (retried).")
        text.add("pinglass_storage_upload_failures_total", [:], Double(value(of: Self.storageUploadFailures)))
        text.declare("pinglass_telegram_failures_total", .counter, "Telegram Bot API failures, by reason (counters named telegram.<reason>).")
        for c in counters where c.name.hasPrefix(Self.telegramPrefix) && !Self.telegramSuccesses.contains(c.name) {
            text.add("pinglass_telegram_failures_total", ["reason": String(c.name.dropFirst(Self.telegramPrefix.count))], Double(c.value))
        }
        text.declare("pinglass_refunds_total", .counter, "Refunds finished at the bank: sent (succeeded) or failed for good.")
        text.add("pinglass_refunds_total", ["outcome": "sent"], Double(refundsSent))
        text.add("pinglass_refunds_total", ["outcome": "failed"], Double(refundsFailed))
        text.declare("pinglass_refunded_kopecks_total", .counter, "Money returned by succeeded refunds, in kopecks.")
        text.add("pinglass_refunded_kopecks_total", [:], Double(refundedKopecks))
        text.declare("pinglass_events_total", .counter, "Every row of the counters table (failures and anomalies), by name.")
        for c in counters { text.add("pinglass_events_total", ["name": c.name], Double(c.value)) }

        text.declare("pinglass_worker_last_run_timestamp_seconds", .gauge, "When a cron duty last finished a pass on a host (unix time).")
        text.declare("pinglass_worker_last_run_ok", .gauge, "1 if that pass succeeded, 0 if it failed.")
        text.declare("pinglass_worker_last_start_timestamp_seconds", .gauge, "When a cron duty last started on a host (unix time).")
        for w in dutyRuns {
            if let finished = w.finished { text.add("pinglass_worker_last_run_timestamp_seconds", ["duty": w.duty, "host": w.host], finished) }
        }
        for w in dutyRuns {
            if let ok = w.ok { text.add("pinglass_worker_last_run_ok", ["duty": w.duty, "host": w.host], ok ? 1 : 0) }
        }
        for w in dutyRuns { text.add("pinglass_worker_last_start_timestamp_seconds", ["duty": w.duty, "host": w.host], w.started) }
    }

    func value(of counter: String) -> Int { counters.first { $0.name == counter }?.value ?? 0 }
}

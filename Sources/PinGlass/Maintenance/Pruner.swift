import Logging
import Postgres
import JSON
import PinGlassConfig

/// The cron duty behind `pinglass prune` (daily): deletes rows whose use is over
/// and whose retention has passed, each kind with its own retention:
///
/// | kind | rows | default |
/// |---|---|---|
/// | deliveries | `telegram_deliveries` sent or failed (photos, messages, alerts), by creation | 30 days |
/// | webhook logs | `webhook_logs` (T-Bank and Kie notifications), by arrival | 90 days |
/// | rate events | `rate_events` (the shared rate budgets look back seconds) | 1 hour |
/// | admin sessions | `admin_sessions` past their absolute expiry | at once |
/// | failed logins | `admin_login_failures` (the lockout looks back 15 minutes, docs/admin.md#lockout) | 1 day |
/// | worker hosts | `worker_runs` of a host with no pass of any duty for that long | 7 days |
/// | server errors | `http_5xx_minutes` (the sweep looks back minutes) | 7 days |
/// | orphaned objects | stored photos (`references/`, `generated/`) no row names, by last write | 48 hours (at least 25) |
/// | selfies | `reference_photos` rows and objects, by upload (`Pruner+Retention`) | `MEDIA_RETENTION_DAYS` (90) |
/// | generated photos | objects only, by their job's end; rows kept, marked removed | `MEDIA_RETENTION_DAYS` (90) |
///
/// An object without a row is what a crash between storing and committing leaves (a result
/// stored before its task's commit, a reference upload whose row never came). It is deleted
/// only once it is older than the grace period, so an upload still on its way to its row is
/// never touched; the grace must be longer than any store-to-commit window (a running
/// task re-stores its result onto the same key at each poll, and ends by its deadline).
///
/// Kept forever: payments, refunds, jobs, tasks, generated photos' rows, users, avatars,
/// admin_audit, counters, settings. Only rows that nothing references are deleted: every
/// pruned table is a leaf of the foreign-key graph (a test checks the catalogue, so a new
/// reference to a pruned table fails it). Deliveries are kept at least
/// `PrunerDefaults.minimumDeliveryDays`, the window in which `pinglass audit` checks that
/// each finished job has its delivery rows.
///
/// Deletes go in batches of `batchSize` rows chosen by key (`DELETE … WHERE id IN (SELECT …
/// LIMIT n)`), each its own short statement, so a years-long backlog never holds a long
/// lock or a huge transaction; a pass stops at its deadline and the next run continues.
///
/// ```swift
/// let report = try Pruner(deps: deps).runOnce(now: deps.clock(), deadline: deps.clock() + 600)
/// print(report.deliveries, report.webhookLogs)
/// ```
public struct Pruner: Duty {
    public static let name = DutyName.prune

    public struct Config: DutyConfig, Equatable {
        /// Seconds a sent or failed Telegram delivery row is kept after its creation.
        public var deliverySeconds = PrunerDefaults.deliveryDays * 86_400
        /// Seconds a webhook log row is kept after it arrived.
        public var webhookLogSeconds = PrunerDefaults.webhookLogDays * 86_400
        /// Seconds a rate-budget event is kept (the windows are seconds long; older rows are
        /// leftovers, e.g. of a budget no longer in use).
        public var rateEventSeconds = PrunerDefaults.rateEventSeconds
        /// Seconds after a host's last pass of any duty before its heartbeat rows go (a VM
        /// taken out of service).
        public var workerHostSeconds = PrunerDefaults.workerHostDays * 86_400
        /// Seconds a minute's 5xx count is kept.
        public var serverErrorSeconds = PrunerDefaults.serverErrorDays * 86_400
        /// Seconds after its last write before a stored object that no row names is deleted.
        public var orphanGraceSeconds = PrunerDefaults.orphanGraceSeconds
        /// Rows per delete statement (and objects per store listing).
        public var batchSize = PrunerDefaults.batchSize

        public init() {}

        public static var settings: [DutySetting<Self>] {
            let day = 86_400
            return [
                .days("deliveries", \.deliverySeconds, in: PrunerDefaults.minimumDeliveryDays...3650,
                      "Keep sent and failed Telegram deliveries this long."),
                .days("webhook-logs", \.webhookLogSeconds, in: 7...3650, "Keep T-Bank and Kie notification logs this long."),
                // Longer than the longest budget window looked at (twice 11 s).
                .seconds("rate-events", \.rateEventSeconds, in: 60...(30 * day), "Keep rate-budget events this long."),
                // Longer than the daily prune's own interval, so a live host is never taken for gone.
                .days("worker-hosts", \.workerHostSeconds, in: 2...365, "Forget a host's heartbeats after this long without any pass."),
                // Longer than the sweep's 5xx window.
                .seconds("server-errors", \.serverErrorSeconds, in: 3600...(365 * day), "Keep per-minute 5xx counts this long."),
                // Longer than an upload takes to reach its row, and than a Kie task may run (a
                // running task re-stores its result at every poll until its deadline).
                .seconds("orphan-grace", \.orphanGraceSeconds, in: PrunerDefaults.minimumOrphanGraceSeconds...(30 * day),
                         "Delete a stored photo no row names only when it was last written longer ago than this "
                         + "(at least 25h: longer than the longest --task-deadline, 24h)."),
                .count("batch-size", \.batchSize, in: 100...100_000, "Rows deleted per statement (and stored objects listed per request)."),
            ]
        }
    }

    public struct Report: DutyReport, Equatable {
        public var deliveries = 0
        public var webhookLogs = 0
        public var rateEvents = 0
        public var adminSessions = 0
        public var loginFailures = 0
        public var workerRuns = 0
        public var serverErrorMinutes = 0
        /// Stored objects no row named (or only a row marked removed), deleted.
        public var orphanedObjects = 0
        /// Selfies past `MEDIA_RETENTION_DAYS` removed (row and object).
        public var expiredReferences = 0
        /// Generated photos past `MEDIA_RETENTION_DAYS` removed (object; the row marked).
        public var expiredPhotos = 0
        /// Stored objects left alone: a key that is not a media key, or a delete that failed.
        public var objectsSkipped = 0
        /// The pass's deadline came before every kind was done (the next run continues).
        public var stoppedAtDeadline = false

        public init() {}

        public var json: JSON {
            ["deliveries": .int(deliveries), "webhookLogs": .int(webhookLogs), "rateEvents": .int(rateEvents),
             "adminSessions": .int(adminSessions), "loginFailures": .int(loginFailures), "workerRuns": .int(workerRuns), "serverErrorMinutes": .int(serverErrorMinutes),
             "orphanedObjects": .int(orphanedObjects), "expiredReferences": .int(expiredReferences),
             "expiredPhotos": .int(expiredPhotos), "objectsSkipped": .int(objectsSkipped),
             "stoppedAtDeadline": .bool(stoppedAtDeadline)]
        }
    }

    /// The tables this duty deletes from (the foreign-key check of the tests reads it).
    public static let prunedTables = ["telegram_deliveries", "webhook_logs", "rate_events", "admin_sessions", "admin_login_failures",
                                      "worker_runs", "http_5xx_minutes", "reference_photos"]

    /// How long failed logins are kept: well past the lockout window, for an operator to look at.
    public static let loginFailureSeconds = 86_400

    public let deps: Dependencies
    public let config: Config
    let log = Logger(label: "prune")

    public init(deps: Dependencies, config: Config = Config()) throws {
        try config.validate()
        self.deps = deps
        self.config = config
    }

    /// One kind: its delete statement (`$1` retention seconds, `$2` batch size; the outer
    /// `WHERE` repeats the condition, so a row that changed meanwhile, e.g. a failed
    /// delivery an admin re-queued, is left alone) and where its count goes.
    struct Kind {
        let sql: String
        let retention: Int
        let count: WritableKeyPath<Report, Int>
    }

    var kinds: [Kind] {
        [
            Kind(sql: """
                DELETE FROM telegram_deliveries WHERE id IN (
                    SELECT id FROM telegram_deliveries
                    WHERE state IN ('sent', 'failed') AND created_at < now() - make_interval(secs => $1::int) ORDER BY id LIMIT $2)
                  AND state IN ('sent', 'failed') AND created_at < now() - make_interval(secs => $1::int)
                """, retention: config.deliverySeconds, count: \.deliveries),
            Kind(sql: """
                DELETE FROM webhook_logs WHERE id IN (
                    SELECT id FROM webhook_logs WHERE received_at < now() - make_interval(secs => $1::int) ORDER BY id LIMIT $2)
                """, retention: config.webhookLogSeconds, count: \.webhookLogs),
            Kind(sql: """
                DELETE FROM rate_events WHERE id IN (
                    SELECT id FROM rate_events WHERE at < now() - make_interval(secs => $1::int) ORDER BY id LIMIT $2)
                  AND at < now() - make_interval(secs => $1::int)
                """, retention: config.rateEventSeconds, count: \.rateEvents),
            Kind(sql: """
                DELETE FROM admin_sessions WHERE token_hash IN (
                    SELECT token_hash FROM admin_sessions WHERE expires_at < now() - make_interval(secs => $1::int) LIMIT $2)
                  AND expires_at < now() - make_interval(secs => $1::int)
                """, retention: 0, count: \.adminSessions),
            Kind(sql: """
                DELETE FROM admin_login_failures WHERE id IN (
                    SELECT id FROM admin_login_failures WHERE at < now() - make_interval(secs => $1::int) ORDER BY id LIMIT $2)
                """, retention: Self.loginFailureSeconds, count: \.loginFailures),
            Kind(sql: """
                DELETE FROM worker_runs WHERE (name, host) IN (
                    SELECT name, host FROM worker_runs WHERE host IN (
                        SELECT host FROM worker_runs GROUP BY host
                        HAVING max(greatest(started_at, finished_at)) < now() - make_interval(secs => $1::int))
                    LIMIT $2)
                """, retention: config.workerHostSeconds, count: \.workerRuns),
            Kind(sql: """
                DELETE FROM http_5xx_minutes WHERE minute IN (
                    SELECT minute FROM http_5xx_minutes WHERE minute < now() - make_interval(secs => $1::int) ORDER BY minute LIMIT $2)
                """, retention: config.serverErrorSeconds, count: \.serverErrorMinutes),
        ]
    }

    public func runOnce(now: Double, deadline: Double) throws -> Report {
        var report = Report()
        let db = try deps.db()
        for kind in kinds {
            while true {
                guard deps.clock() < deadline else { report.stoppedAtDeadline = true; return report }
                // A delete is idempotent: repeated after a lost answer, it deletes what is left.
                let n = try db.execute(kind.sql, [kind.retention, config.batchSize], retry: .idempotent)
                report[keyPath: kind.count] += n
                if n < config.batchSize { break }
            }
        }
        try pruneExpiredMedia(db, deadline: deadline, &report)
        if report.stoppedAtDeadline { return report }
        try pruneOrphanedObjects(db, now: now, deadline: deadline, &report)
        return report
    }

    /// Pages through each folder of the store; of the objects older than the grace period,
    /// deletes those that neither a reference nor a generated photo row still stored names
    /// (a photo row marked `media_removed_at` whose object survived its removal names nothing).
    /// The rows are read after the listing, so a row committed meanwhile keeps its object.
    func pruneOrphanedObjects(_ db: Connection, now: Double, deadline: Double, _ report: inout Report) throws {
        for folder in MediaKeys.folders {
            var after: String?
            while true {
                guard deps.clock() < deadline else { report.stoppedAtDeadline = true; return }
                let page = try deps.media.list(prefix: folder, after: after, limit: config.batchSize)
                // A key that is not ours to name (a bucket's `references/` folder marker, an
                // empty or `..` segment) is never deleted: logged, skipped, and paging goes on.
                let invalid = page.filter { !MediaKeys.isValid($0.key) }
                for object in invalid {
                    report.objectsSkipped += 1
                    log.warning("stored object with a key that is not a media key skipped", metadata: ["key": "\(object.key)"])
                }
                let old = page.filter { MediaKeys.isValid($0.key) && now - $0.modifiedAt >= Double(config.orphanGraceSeconds) }.map(\.key)
                if !old.isEmpty {
                    let orphans = try db.query("""
                        SELECT k FROM unnest($1::text[]) AS k
                        WHERE NOT EXISTS (SELECT 1 FROM reference_photos WHERE storage_key = k)
                          AND NOT EXISTS (SELECT 1 FROM generated_photos WHERE storage_key = k AND media_removed_at IS NULL)
                        """, [old], retry: .idempotent).map { $0.requiredString("k") }
                    for key in orphans {
                        // One object the store cannot delete must not end the pass for good
                        // (the next run would stop at the same key): it is logged and skipped.
                        do {
                            try deps.media.delete(key: key)
                            report.orphanedObjects += 1
                        } catch {
                            report.objectsSkipped += 1
                            log.warning("orphaned object not deleted", metadata: ["key": "\(key)", "error": "\(error)"])
                        }
                    }
                }
                guard page.count == config.batchSize, let last = page.last else { break }
                after = last.key
            }
        }
    }
}

/// The named defaults of `Pruner.Config` (each documented on its field).
public enum PrunerDefaults {
    public static let deliveryDays = 30
    public static let webhookLogDays = 90
    public static let rateEventSeconds = 3600
    public static let workerHostDays = 7
    public static let serverErrorDays = 7
    public static let batchSize = 1000
    public static let orphanGraceSeconds = 48 * 3600
    /// An hour more than the longest task deadline: an object re-stored by a task that
    /// is still running is never old enough to go between the row check and the delete.
    public static let minimumOrphanGraceSeconds = GenerationPolicy.longestTaskDeadlineSeconds + 3600
    /// Deliveries are kept at least this long: `pinglass audit` checks that every job
    /// finished within this many days has its delivery rows.
    public static let minimumDeliveryDays = 7
}

import Logging
import Postgres
import JSON
import PinGlassConfig
import Platform
import ProviderWire

/// The cron duty behind `pinglass dispatch`: submits queued generation tasks to Kie
/// (docs/architecture.md#flow-dispatch), fairly across jobs and under the account's rate budget
/// shared by every dispatcher through PostgreSQL (`RateBudget`, a sliding window).
///
/// Per task: intent first (claim with a lease, its own short statement), then `createTask`
/// outside any transaction, then the result (`kie_task_id`, state `running`) guarded by the
/// lease token. Residual risk (docs/reliability.md#R9): Kie has no idempotency key, so a crash
/// between its answer and our record leaves one orphan task at Kie (credits spent twice for
/// that photo); the window is one call wide.
public struct Dispatcher: Duty {
    public static let name = DutyName.dispatch

    public struct Config: DutyConfig {
        /// At most this many tasks claimed per round (and never more than the budget allows).
        public var batchSize = DispatcherDefaults.batchSize
        /// A claimed task whose submit neither succeeded nor failed by then goes back to the
        /// queue (the next dispatch pass or `pinglass sweep` does that; the claim counted the
        /// attempt), or fails if that was its last attempt (`TaskSweep`).
        public var leaseSeconds = DispatcherDefaults.leaseSeconds
        /// Attempts per task, and the deadline recorded on each submitted task
        /// (`--task-deadline` after its submission; poll-kie and sweep hold the task to it).
        public var generation = GenerationPolicy()
        /// The first poll of a submitted task (Kie takes several seconds at least).
        public var firstPollAfterSeconds = DispatcherDefaults.firstPollAfterSeconds
        /// How long the reference-photo links given to Kie stay valid: a task may wait in
        /// Kie's queue before it fetches them.
        public var referenceLinkSeconds = DispatcherDefaults.referenceLinkSeconds

        public init() {}

        public static var settings: [DutySetting<Self>] {
            [
                .count("batch-size", \.batchSize, in: 1...200, "At most this many tasks claimed per round."),
                GenerationPolicy.setting("max-attempts", in: \.generation),
                GenerationPolicy.setting("task-deadline", in: \.generation),
                .seconds("reference-link-ttl", \.referenceLinkSeconds, in: 3600...(7 * 86_400),
                         "How long the reference-photo links given to Kie stay valid (at least 1h)."),
                // At least twice a Kie call's timeout: a lease renewed before a call outlives it.
                .seconds("lease", \.leaseSeconds, in: 60...3600, "How long a claimed task stays this process's.", onCommandLine: false),
                .seconds("first-poll-after", \.firstPollAfterSeconds, in: 0...600, "The first poll of a submitted task.", onCommandLine: false),
            ]
        }
    }

    public struct Report: DutyReport, Equatable {
        public var submitted = 0
        public var retried = 0
        public var failed = 0
        public var rateLimited = 0
        /// Rounds that found the budget spent (work waited for the window).
        public var budgetWaits = 0
        /// Tasks whose submit lease ran out (a dispatcher died mid-submit) put back in the queue.
        public var rescued = 0
        /// Claimed tasks skipped because their lease was taken back before their turn came.
        public var leaseLost = 0
        public var json: JSON {
            ["submitted": .int(submitted), "retried": .int(retried), "failed": .int(failed),
             "rateLimited": .int(rateLimited), "budgetWaits": .int(budgetWaits), "rescued": .int(rescued),
             "leaseLost": .int(leaseLost)]
        }
    }

    public let config: Config
    let deps: Dependencies
    let kie: any KieAPI
    let budget: RateBudget
    let log = Logger(label: "dispatch")

    /// Throws `ConfigError.missing` without `KIE_API_KEY`, as poll-kie does: the command
    /// refuses to start (exit 78) instead of failing every pass.
    public init(deps: Dependencies, config: Config = Config()) throws {
        try config.validate()
        guard let kie = deps.kie else { throw ConfigError.missing("KIE_API_KEY") }
        self.deps = deps
        self.config = config
        self.kie = kie
        budget = RateBudget(name: "kie.create", limit: deps.config.kieRateLimit, window: DispatcherDefaults.windowSeconds)
    }

    public func runOnce(now: Double, deadline: Double) throws -> Report {
        let db = try deps.db()
        var report = Report()
        try rescueExpiredLeases(db, &report)
        // Rounds until the queue is empty, the budget is spent or the deadline comes.
        while deps.clock() < deadline {
            let grant = try budget.reserve(db, want: config.batchSize)
            guard grant.granted > 0 else {
                report.budgetWaits += 1
                let wait = min(grant.retryAfter, deadline - deps.clock())
                guard wait > 0, try hasDueTasks(db) else { break }
                deps.clock.sleep(wait)
                continue
            }
            let tasks = try claim(db, count: grant.granted)
            try budget.release(db, grant.slots.dropFirst(tasks.count))
            if tasks.isEmpty { break }
            Crashpoint.hit("dispatch.after-intent")
            var references: [Int: [String]] = [:]
            for (i, task) in tasks.enumerated() {
                let urls = try references[task.jobID] ?? referenceURLs(db, jobID: task.jobID)
                references[task.jobID] = urls
                // Calls go out one after another: a slow Kie can outlast a batch's lease, and
                // a task whose lease was taken back meanwhile (and maybe resubmitted by another
                // dispatcher) must not be submitted again from this list.
                let heldUntil = deps.clock.monotonic() + Double(config.leaseSeconds)
                guard try renewLease(db, task) else {
                    report.leaseLost += 1
                    try budget.release(db, [grant.slots[i]])
                    continue
                }
                try budget.stamp(db, grant.slots[i])
                do {
                    let id = try kie.createTask(request(task, urls))
                    Crashpoint.hit("dispatch.after-create")
                    // Kie made the task (and charges for it): a database outage delays the
                    // record, never drops it (a resubmit would pay for a second one).
                    try KnownOutcome(clock: deps.clock).record(heldUntil: heldUntil, what: "task \(task.id) created at Kie as \(id)", log: log) {
                        try recordSubmitted(db, task, kieTaskID: id)
                    }
                    report.submitted += 1
                    log.info("task submitted", metadata: Trace.job(db, task.jobID, [
                        "task_id": "\(task.id)", "job_id": "\(task.jobID)", "kie_task_id": "\(id)"]))
                } catch let error as KieError {
                    try handle(error, task, db, &report)
                    if error == .rateLimited {
                        // Kie dropped the call: the rest of this round waits a full window.
                        try requeue(db, Array(tasks[(i + 1)...]), after: DispatcherDefaults.windowSeconds, countAttempt: false)
                        try budget.exhaust(db)
                        break
                    }
                }
            }
        }
        return report
    }

    /// A queued task with what its submit needs.
    struct ClaimedTask {
        let id: Int
        let jobID: Int
        let prompt: String
        let attempts: Int
        let lease: String
    }

    /// Claims up to `count` due queued tasks, round-robin across jobs: every job's first
    /// waiting task comes before any job's second (a 23-photo job cannot starve a 7-photo
    /// job that arrived later), older jobs first among equals. One statement; SKIP LOCKED
    /// keeps concurrent dispatchers apart; the lease marks the intent. Tasks of a job past
    /// its deadline are not started any more (the sweep fails them: `TaskSweep`).
    func claim(_ db: Connection, count: Int) throws -> [ClaimedTask] {
        let rows = try db.query("""
            WITH ranked AS (
                SELECT t.id, row_number() OVER (PARTITION BY t.job_id ORDER BY t.prompt_index) AS turn, j.created_at
                FROM generation_tasks t JOIN generation_jobs j ON j.id = t.job_id
                WHERE t.state = 'queued' AND t.run_at <= now() AND j.status IN ('queued', 'processing') AND j.deadline_at > now()
            ), picked AS (
                SELECT t.id FROM generation_tasks t JOIN ranked r ON r.id = t.id
                WHERE t.state = 'queued'
                ORDER BY r.turn, r.created_at, t.id
                LIMIT $1
                FOR UPDATE OF t SKIP LOCKED
            )
            UPDATE generation_tasks t SET state = 'submitting', \(LeasedQueue.grant(seconds: "$2")), attempts = t.attempts + 1
            FROM picked WHERE t.id = picked.id AND t.state = 'queued'
            RETURNING t.id, t.job_id, t.prompt_text, t.attempts, \(LeasedQueue.token("t"))
            """, [count, config.leaseSeconds])
        let tasks = rows.map {
            ClaimedTask(id: $0.requiredInt("id"), jobID: $0.requiredInt("job_id"), prompt: $0.requiredString("prompt_text"),
                        attempts: $0.requiredInt("attempts"), lease: $0.requiredString("lease"))
        }
        let jobs = Array(Set(tasks.map { String($0.jobID) }))
        if !jobs.isEmpty {
            // The job has started (guarded: only from queued).
            try db.execute("UPDATE generation_jobs SET status = 'processing', updated_at = now() WHERE id = ANY($1::bigint[]) AND status = 'queued'",
                           [jobs], retry: .idempotent)
        }
        return tasks
    }

    /// Extends a claimed task's lease right before its call, guarded by the lease token: false
    /// when the task is no longer ours (rescued by another dispatcher or the sweeper).
    func renewLease(_ db: Connection, _ task: ClaimedTask) throws -> Bool {
        try LeasedQueue.taskSubmits.renew(db, id: task.id, lease: task.lease, seconds: config.leaseSeconds)
    }

    /// A dispatcher that died between its intent and its record left the task `submitting`
    /// with a lease that runs out: back to the queue (the attempt was counted at the claim),
    /// or failed when that was its last allowed attempt. The same guarded statements as
    /// `pinglass sweep` (`LeaseRescuer`), so whichever runs first does the same. If the crash
    /// came after Kie's answer, the resubmit makes a second Kie task for this photo (the
    /// residual risk above); the first is never recorded, so never polled, and the photo is
    /// stored once.
    func rescueExpiredLeases(_ db: Connection, _ report: inout Report) throws {
        let rescuer = LeaseRescuer(maxAttempts: config.generation.maxAttempts, alertChat: deps.config.adminTelegramChatID)
        for step in rescuer.steps(of: .taskSubmits) {
            let done = try step.run(db, DispatcherDefaults.rescueLimit)
            switch step.kind {
            case .submitsAbandoned: report.failed += done.rows
            default: report.rescued += done.rows
            }
        }
    }

    func hasDueTasks(_ db: Connection) throws -> Bool {
        try db.query("SELECT 1 FROM generation_tasks WHERE state = 'queued' AND run_at <= now() LIMIT 1", retry: .idempotent).first != nil
    }

    /// The avatar's reference photos as links Kie can fetch while the task waits in its queue.
    func referenceURLs(_ db: Connection, jobID: Int) throws -> [String] {
        try db.query("""
            SELECT r.storage_key FROM reference_photos r JOIN generation_jobs j ON j.avatar_id = r.avatar_id
            WHERE j.id = $1 ORDER BY r.created_at, r.id LIMIT 10
            """, [jobID], retry: .idempotent).map {
            deps.media.signedURL(key: $0.requiredString("storage_key"), expiresIn: config.referenceLinkSeconds, now: deps.clock())
        }
    }

    /// The callback URL only with `KIE_WEBHOOK_HMAC_KEY`: without it the endpoint answers 404.
    func request(_ task: ClaimedTask, _ urls: [String]) -> KieTaskRequest {
        let callback = deps.config.kieWebhookHMACKey == nil ? nil : deps.config.publicBaseURL.map { $0 + "/api/kie/callback" }
        return KieTaskRequest(model: deps.config.kieModel, prompt: task.prompt, imageURLs: urls, aspectRatio: "3:4", callbackURL: callback)
    }

    /// The result of the submit, guarded by the lease: a task the sweeper took back meanwhile
    /// is not overwritten (the orphan at Kie is logged).
    func recordSubmitted(_ db: Connection, _ task: ClaimedTask, kieTaskID: String) throws {
        let outcome = try LeasedQueue.taskSubmits.write(db, id: task.id, lease: task.lease, set: """
            state = 'running', kie_task_id = $3, submitted_at = now(),
            deadline_at = now() + make_interval(secs => $4), run_at = now() + make_interval(secs => $5)
            """, [kieTaskID, config.generation.taskDeadlineSeconds, config.firstPollAfterSeconds], releasing: true, retry: .idempotent)
        if outcome == .lost {
            log.warning("a submitted task lost its lease before it was recorded; the Kie task is orphaned",
                        metadata: Trace.job(db, task.jobID, ["task_id": "\(task.id)", "job_id": "\(task.jobID)", "kie_task_id": "\(kieTaskID)"]))
        } else {
            try db.execute("SELECT pg_notify('poll-kie', $1)", [String(task.id)], retry: .idempotent)
        }
    }

    func handle(_ error: KieError, _ task: ClaimedTask, _ db: Connection, _ report: inout Report) throws {
        switch error {
        case .rateLimited:
            report.rateLimited += 1
            try Counters.increment(db, "kie.rate_limited")
            try requeue(db, [task], after: DispatcherDefaults.windowSeconds, countAttempt: false)
        case .transient(let why) where task.attempts < config.generation.maxAttempts:
            report.retried += 1
            log.warning("createTask failed, will retry",
                        metadata: Trace.job(db, task.jobID, ["task_id": "\(task.id)", "job_id": "\(task.jobID)", "error": "\(why)"]))
            try requeue(db, [task], after: Backoff.seconds(attempt: task.attempts), countAttempt: true)
        case .transient(let why):
            report.failed += 1
            try fail(db, task, code: "submit_failed", message: "gave up after \(task.attempts) attempts: \(why)")
        case .outOfCredits:
            report.failed += 1
            try Counters.increment(db, "kie.out_of_credits")
            log.critical("Kie: insufficient credits; top up the account")
            // Every task submitted meanwhile fails (and is refunded): the operator hears it
            // at once, once an hour however many tasks hit it.
            try Alerts.raise(db, chatID: deps.config.adminTelegramChatID, key: "kie-out-of-credits",
                             text: "Kie answered 402: the account is out of credits. New generation tasks fail and are refunded until it is topped up.")
            try fail(db, task, code: "402", message: "Kie account has insufficient credits")
        case .permanent(let code, let message):
            report.failed += 1
            log.error("createTask refused", metadata: Trace.job(db, task.jobID, [
                "task_id": "\(task.id)", "job_id": "\(task.jobID)", "code": "\(code)", "message": "\(message)"]))
            try fail(db, task, code: String(code), message: message)
        }
    }

    /// Back to the queue (guarded by the lease). A 429 is not the task's fault: its attempt
    /// is given back.
    func requeue(_ db: Connection, _ tasks: [ClaimedTask], after seconds: Double, countAttempt: Bool) throws {
        for task in tasks {
            try LeasedQueue.taskSubmits.write(db, id: task.id, lease: task.lease,
                                              set: "state = 'queued', run_at = now() + make_interval(secs => $3::float8), attempts = attempts - $4",
                                              [seconds, countAttempt ? 0 : 1], releasing: true, retry: .idempotent)
        }
    }

    /// The task failed for good (guarded by the lease); when it was the job's last unfinished
    /// task, the job finishes now (the same function the poller uses, so it finishes once).
    func fail(_ db: Connection, _ task: ClaimedTask, code: String, message: String) throws {
        let failed = try LeasedQueue.taskSubmits.write(db, id: task.id, lease: task.lease,
                                                       set: "state = 'failed', finished_at = now(), fail_code = left($3, 64), fail_message = left($4, 500)",
                                                       [code, message], releasing: true, retry: .idempotent)
        if failed == .recorded { _ = try JobFinish.finish(db, jobID: task.jobID, adminChatID: deps.config.adminTelegramChatID) }
    }
}

public enum DispatcherDefaults {
    public static let batchSize = 20
    public static let leaseSeconds = 120
    public static let firstPollAfterSeconds = 5
    public static let referenceLinkSeconds = MediaLinks.providerTTL
    /// Kie's window is 10 s; ours is a second longer because we stamp a call before it
    /// reaches them.
    public static let windowSeconds = 11.0
    /// Expired submit leases taken back per statement before a pass (a backlog is taken
    /// back over several passes, each statement short).
    public static let rescueLimit = 500
}

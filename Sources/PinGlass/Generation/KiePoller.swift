import Logging
import Postgres
import JSON
import PinGlassConfig
import Platform

/// The cron duty behind `pinglass poll-kie` (docs/architecture.md#flow-poll). Each pass claims
/// the running tasks that are due, rounds of `batchSize` until none is due or the pass's
/// deadline comes:
///
/// 1. the claim moves each task's `run_at` one poll interval ahead (docs/reliability.md#R8:
///    polling reschedules, it never holds a worker), so a task whose answer is "still
///    generating", or whose poll failed, is simply due again later, and a second poller
///    passes over it (`FOR UPDATE SKIP LOCKED`);
/// 2. claimed tasks past their deadline fail (`deadline`) without asking Kie;
/// 3. the others are asked with `recordInfo` (at most `KIE_POLL_RPS` per second), and each
///    answer is handled as it arrives (`KiePoller+Result.swift`): a `fail` ends the task; a
///    success's result URL is kept, and when the round's answers are in, its results are
///    downloaded together (waves of up to `downloadConcurrency`, outside the recordInfo pace
///    and budget), each stored and committed with its task when its wave is in.
///    Whoever ends a task calls `JobFinish`.
///
/// A pass ends by finishing jobs whose tasks all ended but which nobody finished (a poller
/// killed between its commit and its finish), so no job waits for the sweeper for that.
///
/// ```swift
/// let poller = try KiePoller(deps: deps, config: KiePoller.Config())
/// let report = try poller.runOnce(now: deps.clock(), deadline: deps.clock() + 55)
/// ```
public struct KiePoller: Duty {
    public static let name = DutyName.pollKie

    public struct Config: DutyConfig, Equatable {
        /// Tasks claimed per round. At the default KIE_POLL_RPS (10) a round is about 2 s of
        /// polling, so a pass stops claiming close to its deadline.
        public var batchSize = KiePollerDefaults.batchSize
        /// A polled task that is not finished is due again after this many seconds (the
        /// original polled every 10 s; Kie suggests 2–5 s, and callbacks make a task due at once).
        public var pollIntervalSeconds = KiePollerDefaults.pollIntervalSeconds
        /// A running task fails at the `deadline_at` dispatch recorded on it (its
        /// `--task-deadline` after submission); one without fails `taskDeadlineSeconds` after
        /// it was submitted. The same policy as dispatch and sweep.
        public var generation = GenerationPolicy()
        /// Results larger than this (bytes) fail their task (`result_too_large`): Kie's
        /// portraits are a few MB, and a download must not fill the disk or the memory.
        public var maxDownloadBytes = KiePollerDefaults.maxDownloadBytes
        /// Whole-download limit (seconds); a slow download is tried again at the next poll.
        public var downloadTimeout = KiePollerDefaults.downloadTimeout
        /// Result downloads of one round that run at once.
        public var downloadConcurrency = KiePollerDefaults.downloadConcurrency

        public init() {}

        public static var settings: [DutySetting<Self>] {
            [
                .count("batch-size", \.batchSize, in: 1...500, "Tasks claimed per round."),
                .seconds("poll-interval", \.pollIntervalSeconds, in: 1...600, "Time until a task that is not finished is polled again."),
                GenerationPolicy.setting("task-deadline", in: \.generation),
                .count("max-download-bytes", \.maxDownloadBytes, in: 1 << 20...100 << 20, "Largest result image accepted, in bytes."),
                .seconds("download-timeout", \.downloadTimeout, in: 1...300, "How long one result download may take."),
                .count("download-concurrency", \.downloadConcurrency, in: 1...64, "Result downloads of one round that run at once.",
                       onCommandLine: false),
            ]
        }
    }

    public struct Report: DutyReport, Equatable {
        /// recordInfo answers received (any state).
        public var polled = 0
        /// Tasks that got their photo stored and committed.
        public var succeeded = 0
        /// Tasks ended as failed: Kie's `fail`, an unusable result, or the deadline.
        public var failed = 0
        /// Of `failed`: tasks past their deadline.
        public var deadlineFailed = 0
        /// Tasks still generating, or whose result could not be taken yet (polled again later).
        public var stillRunning = 0
        /// Polls that failed and downloads or uploads that failed (each retried at the next poll).
        public var errors = 0
        /// Jobs this pass finished.
        public var jobsFinished = 0
        /// The pass stopped claiming at its deadline.
        public var stoppedAtDeadline = false

        public init() {}

        public var json: JSON {
            ["polled": .int(polled), "succeeded": .int(succeeded), "failed": .int(failed), "deadlineFailed": .int(deadlineFailed),
             "stillRunning": .int(stillRunning), "errors": .int(errors), "jobsFinished": .int(jobsFinished),
             "stoppedAtDeadline": .bool(stoppedAtDeadline)]
        }
    }

    public let deps: Dependencies
    public let config: Config
    let kie: any KieAPI
    let download: ResultDownload
    let mediaSecret: String
    let log = Logger(label: "poll-kie")

    public init(deps: Dependencies, config: Config = Config()) throws {
        try config.validate()
        guard let kie = deps.kie else { throw ConfigError.missing("KIE_API_KEY") }
        guard let secret = deps.config.mediaKeySecret else { throw ConfigError.missing("MEDIA_KEY_SECRET") }
        // Without allowed hosts every finished image would be refused until its deadline, and
        // every job refunded: refuse to start instead.
        guard !deps.config.kieResultHosts.isEmpty else { throw ConfigError.missing("KIE_RESULT_HOSTS") }
        // An entry written for the old subdomain match would refuse (and refund) every photo.
        if let old = ResultDownload.parentDomainEntries(deps.config.kieResultHosts).first {
            throw ConfigError.invalid("KIE_RESULT_HOSTS", "entry \(old.entry) matches that exact host only, not Kie's \(old.host): "
                                      + "write *.\(old.entry) (any subdomain) or \(old.host)")
        }
        self.deps = deps
        self.config = config
        self.kie = kie
        self.mediaSecret = secret
        self.pollBudget = RateBudget(name: "kie.poll", limit: deps.config.kiePollRPS, window: 1.0)
        self.download = ResultDownload(allowedHosts: deps.config.kieResultHosts, maxBytes: config.maxDownloadBytes,
                                       timeout: config.downloadTimeout,
                                       allowInternalAddresses: ResultDownload.internalAddressesAllowed(deps.config))
    }

    /// recordInfo calls per second for every poller together (a sliding one-second window).
    let pollBudget: RateBudget

    public func runOnce(now: Double, deadline: Double) throws -> Report {
        var report = Report()
        let db = try deps.db()
        while true {
            guard deps.clock() < deadline else { report.stoppedAtDeadline = true; break }
            // KIE_POLL_RPS holds per API key, so for every poller on every machine together:
            // each round first takes its calls from the shared budget.
            let grant = try pollBudget.reserve(db, want: config.batchSize)
            guard grant.granted > 0 else {
                let wait = min(grant.retryAfter, deadline - deps.clock())
                guard wait > 0 else { break }
                deps.clock.sleep(wait)
                continue
            }
            let claimed = try claimDue(limit: grant.granted)
            try pollBudget.release(db, grant.slots.dropFirst(claimed.count))
            guard !claimed.isEmpty else { break }
            // Overdue tasks are asked too, one last time: a photo Kie did make is taken
            // rather than refunded (docs/reliability.md#I3); anything else ends them at their deadline.
            try poll(claimed, &report)
            if claimed.count < grant.granted { break }
        }
        report.jobsFinished += try JobFinish.finishStranded(deps.db(), limit: config.batchSize,
                                                            alertChat: deps.config.adminTelegramChatID).finished.count
        return report
    }

    /// A running task this pass claimed.
    struct ClaimedTask {
        let id: Int
        let jobID: Int
        let kieTaskID: String
        let overdue: Bool
    }

    /// Claims up to `batchSize` due running tasks, oldest due first, by moving their `run_at`
    /// one poll interval ahead in the same autocommit statement: the claim is the reschedule.
    /// Queue times are the database's clock, one clock for every poller on every VM.
    func claimDue(limit: Int) throws -> [ClaimedTask] {
        try deps.db().query("""
            UPDATE generation_tasks SET run_at = now() + make_interval(secs => $2)
            WHERE id IN (SELECT id FROM generation_tasks WHERE state = 'running' AND run_at <= now()
                         ORDER BY run_at LIMIT $1 FOR UPDATE SKIP LOCKED)
            RETURNING id, job_id, kie_task_id,
                      coalesce(coalesce(deadline_at, submitted_at + make_interval(secs => $3)) <= now(), false) AS overdue
            """, [limit, config.pollIntervalSeconds, config.generation.taskDeadlineSeconds])
            .map { ClaimedTask(id: $0.requiredInt("id"), jobID: $0.requiredInt("job_id"), kieTaskID: $0.requiredString("kie_task_id"),
                               overdue: $0.bool("overdue") ?? false) }
    }

    /// Makes the running task Kie knows as `kieTaskID` due now and wakes pollers that
    /// listen on `poll-kie` (the Kie callback's effect: a hint, recordInfo stays the
    /// authority); not while a poller holds it to download its result (`holdForDownload`). False when no running task has that id: nothing changes. One statement,
    /// safe to repeat.
    @discardableResult
    public static func markDue(_ db: some Queryable, kieTaskID: String) throws -> Bool {
        try db.query("""
            WITH due AS (UPDATE generation_tasks
                         SET run_at = CASE WHEN lease_until > now() THEN run_at ELSE least(run_at, now()) END
                         WHERE kie_task_id = $1 AND state = 'running' RETURNING id)
            SELECT pg_notify('poll-kie', $1) FROM due
            """, [kieTaskID], retry: .idempotent).count == 1
    }

    /// A task past its deadline whose last answer brought no photo ends (docs/reliability.md#R8:
    /// the deadline is the promise to the customer, and the refund path starts from it).
    func endAtDeadline(_ task: ClaimedTask, _ report: inout Report) throws {
        guard try endTask(task, code: "deadline", message: "no result from Kie before the task's deadline") else { return }
        report.failed += 1
        report.deadlineFailed += 1
        try finishJob(task.jobID, &report)
    }

    /// Asks Kie about the tasks and handles each answer as it arrives, then downloads the
    /// finished ones' results together and takes each as it completes. A database failure
    /// while handling stops handling (the rest are due again after the poll interval) and
    /// fails the pass.
    func poll(_ tasks: [ClaimedTask], _ report: inout Report) throws {
        guard !tasks.isEmpty else { return }
        let byKieID = Dictionary(tasks.map { ($0.kieTaskID, $0) }, uniquingKeysWith: { a, _ in a })
        var stop: Error?
        var r = report
        var finished: [(task: ClaimedTask, url: String)] = []
        try kie.recordInfo(taskIDs: tasks.map(\.kieTaskID), maxPerSecond: deps.config.kiePollRPS) { kieID, answer in
            guard stop == nil, let task = byKieID[kieID] else { return }
            do {
                if let url = try handleAnswer(task, answer, &r) {
                    finished.append((task, url))
                } else if task.overdue {
                    try endAtDeadline(task, &r)
                }
            } catch { stop = error }
        }
        // One download no longer waits for the one before it (a result is a few MB from a
        // CDN): the round's downloads run at once, in waves of `downloadConcurrency`, and a
        // wave's results are stored and committed as soon as its transfers are all in, never
        // while a transfer is on the wire (a slow upload would run out its time limit).
        if stop == nil && !finished.isEmpty {
            do {
                let held = try holdForDownload(finished.map(\.task))
                finished = finished.filter { held.contains($0.task.id) }
            } catch { stop = error }
        }
        if stop == nil && !finished.isEmpty {
            defer { try? releaseHold(finished.map(\.task)) }
            var alerted = Set<String>()
            try download.fetchAll(finished.map { $0.url }, via: deps.resultDownloader,
                                  maxConcurrent: config.downloadConcurrency) { i, downloaded in
                guard stop == nil else { return }
                let task = finished[i].task
                do {
                    if case .failure(.refusedURL) = downloaded, let host = download.unlistedHost(finished[i].url),
                       alerted.insert(host).inserted {
                        try alertUnlistedHost(host)
                    }
                    try take(task, downloaded, &r)
                    // The last look of an overdue task: unless its photo was just taken, it
                    // ends at its deadline now.
                    if task.overdue { try endAtDeadline(task, &r) }
                } catch { stop = error }
            }
        }
        report = r
        if let stop { throw stop }
    }

    /// Keeps other pollers off tasks whose results this one is about to download: their
    /// `run_at` moves past the downloads' longest time (every wave's time limit, and a margin
    /// per wave for storing), and `lease_until` says so until then, which a Kie callback
    /// (`markDue`) respects. Guarded on `running`: the ids of the tasks held (a task ended
    /// meanwhile is not downloaded). A poller that dies meanwhile lets them go when it ends.
    func holdForDownload(_ tasks: [ClaimedTask]) throws -> Set<Int> {
        let waves = (tasks.count + config.downloadConcurrency - 1) / config.downloadConcurrency
        let seconds = Double(waves) * (config.downloadTimeout + KiePollerDefaults.storeMarginSeconds)
        return Set(try deps.db().query("""
            UPDATE generation_tasks SET run_at = greatest(run_at, now() + make_interval(secs => $2)),
                   lease_until = now() + make_interval(secs => $2)
            WHERE id = ANY($1::bigint[]) AND state = 'running'
            RETURNING id
            """, [tasks.map { String($0.id) }, seconds]).map { $0.requiredInt("id") })
    }

    /// After the downloads: a held task that is still running (its result could not be
    /// taken yet) is due again one poll interval later, like any other polled task.
    func releaseHold(_ tasks: [ClaimedTask]) throws {
        try deps.db().execute("""
            UPDATE generation_tasks SET run_at = now() + make_interval(secs => $2), lease_until = NULL
            WHERE id = ANY($1::bigint[]) AND state = 'running' AND lease_until IS NOT NULL
            """, [tasks.map { String($0.id) }, config.pollIntervalSeconds])
    }

    /// Ends a running task as failed; false when it had already ended (another poller, the
    /// sweeper). The guard on `state` keeps a terminal task terminal (docs/reliability.md#R3).
    func endTask(_ task: ClaimedTask, code: String, message: String) throws -> Bool {
        try deps.db().execute("""
            UPDATE generation_tasks SET state = 'failed', fail_code = $2, fail_message = $3, finished_at = now(),
                   \(LeasedQueue.release)
            WHERE id = $1 AND state = 'running'
            """, [task.id, String(code.prefix(64)), String(message.prefix(500))]) == 1
    }

    /// Finishes the job if this was its last live task. A finish that fails for this job
    /// alone is alerted and left to the stranded step (`JobFinish.isolate`): the pass goes
    /// on with the other tasks.
    func finishJob(_ jobID: Int, _ report: inout Report) throws {
        if case .finished(let done) = try JobFinish.finishIsolated(deps.db(), jobID: jobID, alertChat: deps.config.adminTelegramChatID) {
            report.jobsFinished += 1
            log.info("job finished", metadata: Trace.job(deps, jobID, [
                "job_id": "\(jobID)", "outcome": "\(done.outcome.rawValue)", "photos": "\(done.photos)/\(done.total)",
                "refund_kopecks": "\(done.refundKopecks ?? 0)"]))
        }
    }
}

/// The named defaults of `KiePoller.Config` (each documented on its field).
public enum KiePollerDefaults {
    public static let batchSize = 20
    public static let pollIntervalSeconds = 10
    public static let maxDownloadBytes = 20 << 20
    public static let downloadTimeout = 30.0
    public static let downloadConcurrency = 8
    /// Seconds added per download wave to a held task's `run_at` for storing its results.
    public static let storeMarginSeconds = 30.0
}

import Logging
import Postgres
import JSON
import PinGlassConfig

/// The cron duty behind `pinglass sweep` (docs/architecture.md#flow-sweep): takes
/// back work whose owner died and ends work past its deadline, so every paid job ends,
/// delivered or refunded, even when a worker is gone. Each step is ONE guarded statement
/// (docs/reliability.md#R6), repeated in batches while it finds a full batch:
///
/// 1. expired submit leases of tasks go back to the queue, or fail on their last attempt
///    (`LeaseRescuer`, the same statements `pinglass dispatch` runs);
/// 2. running tasks past their deadline plus a grace longer than a poll pass fail, and
///    their jobs finish through `JobFinish` in the same transaction;
/// 3. queued tasks of jobs past the job's deadline fail (a job that never started ends
///    `failed`, fully refunded), jobs finished likewise; running tasks are left alone;
/// 4. jobs whose tasks all ended but which nobody finished are finished (`JobFinish`);
///    a job whose finish throws is alerted and skipped (`JobFinish.isolate`), never
///    holding back the others;
/// 5. Telegram deliveries whose send lease ran out go back to `pending`, due now
///    (`LeaseRescuer`);
/// 6. refunds whose lease ran out are due again, still `requested` (or `pending`)
///    (`LeaseRescuer`);
/// 7. alerts (`SweepAlerts`): silent duties, queues older than their deadline, refunds
///    owed (failed, or unresolved for a day), test mode on a public install, sustained 5xx.
///
/// Every step is safe against a worker finishing the same row at the same moment: the
/// statements only move rows still in the state they expect (never a terminal one), and
/// skip rows another transaction holds. The crash point `sweep.mid-run` sits between steps
/// 4 and 5: whatever ran is committed, the rest runs on the next pass.
///
/// ```swift
/// let sweeper = try Sweeper(deps: deps, config: Sweeper.Config())
/// let report = try sweeper.runOnce(now: deps.clock(), deadline: deps.clock() + 55)
/// ```
public struct Sweeper: Duty {
    public static let name = DutyName.sweep

    public struct Config: DutyConfig, Equatable {
        /// Rows one statement changes at most; a step repeats while it finds a full batch
        /// (or until the pass's deadline), so each transaction stays short.
        public var batchSize = SweeperDefaults.batchSize
        /// A task whose submit lease ran out on its last attempt fails instead of going back
        /// to the queue; a running task ends at the deadline dispatch recorded on it, one
        /// without at `taskDeadlineSeconds` after its submission (the open-jobs alert counts it
        /// in its slack). The same policy as dispatch and poll-kie.
        public var generation = GenerationPolicy()
        /// Seconds past a running task's deadline before the sweep ends it. Longer than a
        /// poll pass: the poller asks an overdue task one last time within one poll interval
        /// of its deadline and takes a photo Kie did make; the sweep must not pre-empt that.
        public var deadlineGraceSeconds = SweeperDefaults.deadlineGraceSeconds
        /// Alert when a duty that has run before has had no successful pass on any host for
        /// this long (`prune`, a daily duty, has its own `SweeperDefaults.dailySilenceSeconds`).
        public var workerSilenceSeconds = SweeperDefaults.workerSilenceSeconds
        /// Alert when due work (tasks to submit or poll, deliveries, refunds) has waited
        /// longer than this, or a job is still open this long after every task's deadline.
        public var queueAlertSeconds = SweeperDefaults.queueAlertSeconds
        /// Alert when at least this many 5xx answers were given within `serverErrorWindowSeconds`.
        public var serverErrorAlertCount = SweeperDefaults.serverErrorAlertCount
        public var serverErrorWindowSeconds = SweeperDefaults.serverErrorWindowSeconds
        /// Alert when at least this many T-Bank notifications were refused for their signature
        /// within `signatureFailureWindowSeconds` (`webhook-signature-failures`).
        public var signatureFailureAlertCount = SweeperDefaults.signatureFailureAlertCount
        public var signatureFailureWindowSeconds = SweeperDefaults.signatureFailureWindowSeconds
        /// Alert when under this percentage of at least `paymentSuccessMinCount` payments,
        /// created within `paymentSuccessWindowSeconds` ending `paymentSuccessGraceSeconds`
        /// ago, succeeded (`payment-success-ratio`).
        public var paymentSuccessMinPercent = SweeperDefaults.paymentSuccessMinPercent
        public var paymentSuccessMinCount = SweeperDefaults.paymentSuccessMinCount
        public var paymentSuccessWindowSeconds = SweeperDefaults.paymentSuccessWindowSeconds
        public var paymentSuccessGraceSeconds = SweeperDefaults.paymentSuccessGraceSeconds

        public init() {}

        public static var settings: [DutySetting<Self>] {
            [
                .count("batch-size", \.batchSize, in: 1...5000, "Rows one statement changes at most."),
                GenerationPolicy.setting("max-attempts", in: \.generation),
                .seconds("deadline-grace", \.deadlineGraceSeconds, in: 120...3600,
                         "How long past its deadline a running task is left to poll-kie's last look (at least 2m)."),
                GenerationPolicy.setting("task-deadline", in: \.generation),
                .seconds("worker-silence", \.workerSilenceSeconds, in: 120...86_400, "Alert when a duty has had no successful pass for this long."),
                .seconds("queue-alert", \.queueAlertSeconds, in: 60...86_400, "Alert when due work has waited this long."),
                .count("5xx-alert", \.serverErrorAlertCount, in: 1...1_000_000, "Alert at this many 5xx answers within --5xx-window."),
                .seconds("5xx-window", \.serverErrorWindowSeconds, in: 60...3600, "The window --5xx-alert counts in."),
            ]
        }
    }

    public struct Report: DutyReport, Equatable {
        /// Tasks whose submit lease ran out, back in the queue.
        public var submitLeasesRescued = 0
        /// Tasks whose submit lease ran out on their last attempt, failed.
        public var submitsAbandoned = 0
        /// Running tasks failed past their deadline and the grace.
        public var tasksPastDeadline = 0
        /// Queued tasks failed because their job's deadline passed.
        public var tasksPastJobDeadline = 0
        /// Jobs this pass finished (through `JobFinish`).
        public var jobsFinished = 0
        /// Jobs whose finish threw (`JobFinish.isolate`): alerted, tried again next pass.
        public var jobFinishFailures = 0
        /// Deliveries whose send lease ran out, pending again.
        public var deliveryLeasesRescued = 0
        /// Refunds whose lease ran out, due again.
        public var refundLeasesRescued = 0
        /// Alert conditions found (each is logged).
        public var alerts = 0
        /// Of those, new alert messages queued for the admin chat (one per key per hour).
        public var alertsQueued = 0
        /// The pass's deadline came before every step was done.
        public var stoppedAtDeadline = false

        public init() {}

        public var json: JSON {
            ["submitLeasesRescued": .int(submitLeasesRescued), "submitsAbandoned": .int(submitsAbandoned),
             "tasksPastDeadline": .int(tasksPastDeadline), "tasksPastJobDeadline": .int(tasksPastJobDeadline),
             "jobsFinished": .int(jobsFinished), "jobFinishFailures": .int(jobFinishFailures), "deliveryLeasesRescued": .int(deliveryLeasesRescued),
             "refundLeasesRescued": .int(refundLeasesRescued), "alerts": .int(alerts), "alertsQueued": .int(alertsQueued),
             "stoppedAtDeadline": .bool(stoppedAtDeadline)]
        }
    }

    public let deps: Dependencies
    public let config: Config
    let log = Logger(label: "sweep")

    public init(deps: Dependencies, config: Config = Config()) throws {
        try config.validate()
        self.deps = deps
        self.config = config
    }

    public func runOnce(now: Double, deadline: Double) throws -> Report {
        var report = Report()
        let db = try deps.db()
        let limit = config.batchSize
        let alertChat = deps.config.adminTelegramChatID
        var strandedAfter = 0   // the stranded step's cursor: failing jobs never hide later ones
        // Each step in batches: a full batch means there may be more.
        func batches(_ step: () throws -> Int) throws -> Bool {
            while true {
                guard deps.clock() < deadline else { return false }
                if try step() < limit { return true }
            }
        }
        // Leases that ran out are the rescuer's: the submits' before the tasks' deadlines,
        // the deliveries' and refunds' after the crash point.
        let rescuer = LeaseRescuer(maxAttempts: config.generation.maxAttempts, alertChat: alertChat)
        func rescue(_ step: LeaseRescuer.Step) -> () throws -> Int {
            { try rescued(step.run(db, limit), step.kind, &report) }
        }
        let taskSteps: [() throws -> Int] = rescuer.steps(of: .taskSubmits).map(rescue) + [
            { try ended(TaskSweep.failPastDeadline(db, graceSeconds: config.deadlineGraceSeconds,
                                                  fallbackDeadlineSeconds: config.generation.taskDeadlineSeconds, limit: limit, alertChat: alertChat),
                        \.tasksPastDeadline, &report) },
            { try ended(TaskSweep.failUnsubmittedPastJobDeadline(db, limit: limit, alertChat: alertChat), \.tasksPastJobDeadline, &report) },
            { let batch = try JobFinish.finishStranded(db, limit: limit, after: strandedAfter, alertChat: alertChat)
              strandedAfter = batch.lastJobID
              count(finished: batch.finished, failed: batch.failed, &report)
              return batch.examined },
        ]
        let leaseSteps = (rescuer.steps(of: .deliveries) + rescuer.steps(of: .refunds)).map(rescue)
        for step in taskSteps {
            guard try batches(step) else { report.stoppedAtDeadline = true; return report }
        }
        Crashpoint.hit("sweep.mid-run")
        for step in leaseSteps {
            guard try batches(step) else { report.stoppedAtDeadline = true; return report }
        }
        var sweepAlerts = SweepAlerts(config: config, adminChatID: deps.config.adminTelegramChatID)
        sweepAlerts.publicInstall = deps.config.isPublicInstall
        sweepAlerts.adminBaseURL = deps.config.publicBaseURL
        let alerts = try sweepAlerts.raise(db)
        report.alerts = alerts.found
        report.alertsQueued = alerts.queued
        return report
    }

    /// Counts what a rescue statement did; its number of rows decides whether to repeat.
    func rescued(_ done: LeaseRescuer.Rescued, _ kind: LeaseRescuer.Step.Kind, _ report: inout Report) -> Int {
        let counter: WritableKeyPath<Report, Int> = switch kind {
        case .submitsBack: \.submitLeasesRescued
        case .submitsAbandoned: \.submitsAbandoned
        case .deliveriesBack: \.deliveryLeasesRescued
        case .refundsDue: \.refundLeasesRescued
        }
        report[keyPath: counter] += done.rows
        count(finished: done.finished, failed: done.failed, &report)
        return done.rows
    }

    /// Counts what a task-ending statement did; its number of tasks decides whether to repeat.
    func ended(_ outcome: TaskSweep.Outcome, _ counter: WritableKeyPath<Report, Int>, _ report: inout Report) -> Int {
        report[keyPath: counter] += outcome.tasks
        count(finished: outcome.finished, failed: outcome.failed, &report)
        return outcome.tasks
    }

    /// Counts the jobs a step finished (each logged) and those whose finish failed (`failed`,
    /// their ids: alerted by `JobFinish.isolate`, tried again next pass).
    func count(finished jobs: [FinishedJob], failed: [Int], _ report: inout Report) {
        report.jobsFinished += jobs.count
        report.jobFinishFailures += failed.count
        for done in jobs {
            let meta: Logger.Metadata = ["job_id": "\(done.jobID)", "outcome": "\(done.outcome.rawValue)",
                                         "photos": "\(done.photos)/\(done.total)", "refund_kopecks": "\(done.refundKopecks ?? 0)"]
            log.info("job finished", metadata: Trace.job(deps, done.jobID, meta))
        }
    }
}

/// The named defaults of `Sweeper.Config` (each documented on its field).
public enum SweeperDefaults {
    public static let batchSize = 200
    public static let deadlineGraceSeconds = 5 * 60
    public static let workerSilenceSeconds = 5 * 60
    /// `prune` runs once a day: silent for a day and two hours before it is alerted.
    public static let dailySilenceSeconds = 26 * 3600
    /// `audit` runs hourly: silent for two hours and ten minutes before it is alerted.
    public static let hourlySilenceSeconds = 2 * 3600 + 600
    public static let queueAlertSeconds = 10 * 60
    /// A refund still `requested` this long after it was created counts as money owed
    /// (`refunds-owed`), like a failed one.
    public static let refundOwedSeconds = 24 * 3600
    public static let serverErrorAlertCount = 25
    public static let serverErrorWindowSeconds = 5 * 60
    public static let signatureFailureAlertCount = 10
    public static let signatureFailureWindowSeconds = 15 * 60
    public static let paymentSuccessMinPercent = 30
    public static let paymentSuccessMinCount = 10
    public static let paymentSuccessWindowSeconds = 3600
    /// T-Bank's payment form stays open this long; a payment younger than that may still be paid.
    public static let paymentSuccessGraceSeconds = 15 * 60
}

import Postgres

/// The one rescuer of every leased queue: each queue registers here the statements that
/// hand back its rows whose holder is presumed dead (the lease ran out). The duties own
/// their state machines; a rescue only puts a row back where the next claim, by any
/// worker, picks it up, or ends it when that was its last allowed attempt.
///
/// Each step is ONE guarded statement (`LeasedQueue.rescueSQL`, docs/reliability.md#R6):
/// only rows still in a leased state with a lease in the past move, rows another
/// transaction holds are skipped, nothing terminal is ever touched, so whichever runs
/// first (`pinglass sweep`, or `pinglass dispatch` before its pass) does the same thing. The attempt was counted
/// when the row was claimed; a rescue never counts it again.
///
/// Download holds of poll-kie (`KiePoller.holdForDownload`) need no step: they hold no
/// state and no token, and a hold whose poller died simply runs out.
///
/// ```swift
/// let rescuer = LeaseRescuer(maxAttempts: 8, alertChat: config.adminTelegramChatID)
/// for step in rescuer.steps(of: .deliveries) { _ = try step.run(db, 200) }
/// ```
struct LeaseRescuer: Sendable {
    /// A task whose submit lease ran out on this attempt fails instead of going back.
    let maxAttempts: Int
    /// The admin chat told of jobs whose finish failed (`JobFinish.isolate`).
    let alertChat: Int64?

    init(maxAttempts: Int, alertChat: Int64?) {
        self.maxAttempts = maxAttempts
        self.alertChat = alertChat
    }

    /// What one statement did: the rows it moved, and for steps that end tasks the jobs
    /// that finished with them and those whose finish failed.
    struct Rescued: Equatable, Sendable {
        var rows = 0
        var finished: [FinishedJob] = []
        var failed: [Int] = []
    }

    /// One registered statement of one queue.
    struct Step: Sendable {
        enum Kind: Sendable, CaseIterable {
            /// Submits whose lease ran out with attempts left: back to `queued`.
            case submitsBack
            /// Submits whose lease ran out on the last allowed attempt: failed, jobs finished.
            case submitsAbandoned
            /// Sends whose lease ran out: back to `pending`.
            case deliveriesBack
            /// Refunds whose lease ran out: due again, their state kept.
            case refundsDue
        }
        let queue: LeasedQueue
        let kind: Kind
        /// Runs the statement once on at most `limit` rows.
        let run: @Sendable (Connection, _ limit: Int) throws -> Rescued
    }

    /// Every registered step, in the order a sweep runs them.
    var steps: [Step] {
        let maxAttempts = maxAttempts, alertChat = alertChat
        return [
            Step(queue: .taskSubmits, kind: .submitsBack) { db, limit in
                Rescued(rows: try Self.submitsBack(db, maxAttempts: maxAttempts, limit: limit))
            },
            Step(queue: .taskSubmits, kind: .submitsAbandoned) { db, limit in
                let ended = try Self.submitsAbandoned(db, maxAttempts: maxAttempts, limit: limit, alertChat: alertChat)
                return Rescued(rows: ended.tasks, finished: ended.finished, failed: ended.failed)
            },
            Step(queue: .deliveries, kind: .deliveriesBack) { db, limit in Rescued(rows: try Self.deliveriesBack(db, limit: limit)) },
            Step(queue: .refunds, kind: .refundsDue) { db, limit in Rescued(rows: try Self.refundsDue(db, limit: limit)) },
        ]
    }

    /// The steps of one queue, in order.
    func steps(of queue: LeasedQueue) -> [Step] { steps.filter { $0.queue == queue } }

    /// A submit whose lease ran out (the dispatcher died, or hung past its lease, between its
    /// intent and its record) with attempts left goes back to the queue, due now. If the
    /// crash came after Kie's answer, the resubmit makes a second Kie task for this photo
    /// (the residual risk of docs/reliability.md#R9); the first is never recorded, never
    /// polled.
    static func submitsBack(_ db: Connection, maxAttempts: Int, limit: Int) throws -> Int {
        try db.execute(LeasedQueue.taskSubmits.rescueSQL(alias: "t", set: "state = 'queued', run_at = now()",
                                                         filter: "attempts < $1", limit: "$2"),
                       [maxAttempts, limit], retry: .idempotent)
    }

    /// A submit whose lease ran out on its last allowed attempt fails instead: a submit that
    /// keeps dying would otherwise be retried forever, each time perhaps leaving an orphan
    /// task (and spent credits) at Kie. Its jobs finish in the same transaction.
    static func submitsAbandoned(_ db: Connection, maxAttempts: Int, limit: Int, alertChat: Int64?) throws -> TaskSweep.Outcome {
        try TaskSweep.endTasks(db, LeasedQueue.taskSubmits.rescueSQL(
            alias: "t",
            set: "state = 'failed', finished_at = now(), fail_code = 'submit_abandoned', "
                + "fail_message = 'the submit lease ran out on the last allowed attempt'",
            filter: "attempts >= $1", limit: "$2", returning: "t.job_id"), [maxAttempts, limit], alertChat: alertChat)
    }

    /// `sending` → `pending`, due now. The send's outcome is unknown (Telegram has no
    /// idempotency key): sending again may show that batch twice (the residual risk of
    /// docs/reliability.md#R9, one batch wide); not sending would lose it.
    /// `give_up_at` is left as it is: the deliver duty decides whether the row is still
    /// worth a try.
    static func deliveriesBack(_ db: Connection, limit: Int) throws -> Int {
        try db.execute(LeasedQueue.deliveries.rescueSQL(
            alias: "d", set: "state = 'pending', run_at = now(), last_error = 'lease ran out during the send; its outcome is unknown'",
            limit: "$1"), [limit], retry: .idempotent)
    }

    /// The lease cleared and the refund due now; its state stays (`requested`: the Cancel
    /// may have reached the bank, so the refund duty asks `GetState` before anything else;
    /// it repeats the Cancel with the same `ExternalRequestId` only where the bank honours
    /// that key, and on SBP, where it does not, sends nothing again and holds the refund for
    /// an operator after the settle period, docs/reliability.md#R15; `pending`: nothing was
    /// sent yet). The refund state machine is the refund duty's.
    static func refundsDue(_ db: Connection, limit: Int) throws -> Int {
        try db.execute(LeasedQueue.refunds.rescueSQL(alias: "r", set: "run_at = now()", limit: "$1"), [limit], retry: .idempotent)
    }
}

import Postgres

/// The guarded statements that end generation tasks nobody is handling: one
/// statement per rule (docs/reliability.md#R6, never SELECT-then-UPDATE-by-id), its rows picked
/// with `FOR UPDATE SKIP LOCKED` so two sweepers (or a sweeper and a dispatcher) never wait
/// on each other, and every outer `WHERE` repeating the predecessor state, so a task that
/// reached a terminal state meanwhile is never touched (the River #1302 / Solid Queue #589
/// bug: a rescuer overwriting a job that had just completed).
///
/// A statement that ends tasks runs in one transaction with `JobFinish` for each job it
/// touched, so the job, its deliveries and its refund row commit together with the task
/// that made it finishable (the refund row appears exactly once: `JobFinish` locks the job
/// and compares-and-sets its status).
///
/// `pinglass sweep` runs all of them. Submits whose lease ran out are the rescuer's
/// (`LeaseRescuer`), which ends the last attempt's through `endTasks` too.
///
/// ```swift
/// let ended = try TaskSweep.failPastDeadline(db, graceSeconds: 300, fallbackDeadlineSeconds: 1200, limit: 200,
///                                           alertChat: config.adminTelegramChatID)
/// ```
public enum TaskSweep {
    /// What one statement did: rows changed, the jobs that finished with them, and those
    /// whose finish failed (`JobFinish.isolate`: alerted; the tasks' ends still commit, and
    /// the stranded step tries the job again).
    public struct Outcome: Equatable, Sendable {
        public var tasks = 0
        public var finished: [FinishedJob] = []
        public var failed: [Int] = []
        public init(tasks: Int = 0, finished: [FinishedJob] = [], failed: [Int] = []) {
            self.tasks = tasks
            self.finished = finished
            self.failed = failed
        }
    }

    /// A running task past its deadline by more than `graceSeconds` fails (`deadline`).
    ///
    /// The poller ends overdue tasks itself, after one last `recordInfo`, so a photo Kie did
    /// make is taken rather than refunded (docs/reliability.md#I3). Its last look comes within one poll
    /// interval of the deadline (the claim moves `run_at` that far), inside one poll pass. The
    /// grace is longer than that, so this statement only ends tasks no poller is looking at
    /// (poll-kie not running, or failing): the deadline is a promise to the customer, and
    /// the refund path must start without the poller. If a poller does take the photo at
    /// the same moment, both writes are guarded by `state = 'running'`: exactly one wins.
    ///
    /// `fallbackDeadlineSeconds` after submission counts for rows without a `deadline_at`
    /// (as in the poller).
    public static func failPastDeadline(_ db: Connection, graceSeconds: Int, fallbackDeadlineSeconds: Int,
                                        limit: Int, alertChat: Int64?) throws -> Outcome {
        try endTasks(db, """
            UPDATE generation_tasks t SET state = 'failed', finished_at = now(), \(LeasedQueue.release),
                   fail_code = 'deadline', fail_message = 'no result from Kie by the task''s deadline (ended by the sweep)'
            WHERE t.id IN (SELECT id FROM generation_tasks
                           WHERE state = 'running'
                             AND (deadline_at < now() - make_interval(secs => $1::int)
                                  OR (deadline_at IS NULL AND submitted_at < now() - make_interval(secs => $1::int + $2::int)))
                           ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
              AND t.state = 'running'
            RETURNING t.job_id
            """, [graceSeconds, fallbackDeadlineSeconds, limit], alertChat: alertChat)
    }

    /// Tasks still queued (never submitted, or back after a failed submit) when their job's
    /// deadline has passed fail (`job_deadline`): starting a generation now would deliver
    /// after the promised time. A job that never started (every task still queued) thus
    /// ends `failed` with a full refund. Tasks being submitted or running are never touched
    /// here: they are live, and end by their own lease or deadline, so a job is never killed
    /// just because time passed without a new photo (the original's bug).
    public static func failUnsubmittedPastJobDeadline(_ db: Connection, limit: Int, alertChat: Int64?) throws -> Outcome {
        try endTasks(db, """
            UPDATE generation_tasks t SET state = 'failed', finished_at = now(), \(LeasedQueue.release),
                   fail_code = 'job_deadline', fail_message = 'not submitted before the job''s deadline'
            WHERE t.id IN (SELECT q.id FROM generation_tasks q JOIN generation_jobs j ON j.id = q.job_id
                           WHERE q.state = 'queued' AND j.status IN ('queued', 'processing') AND j.deadline_at < now()
                           ORDER BY q.id LIMIT $1 FOR UPDATE OF q SKIP LOCKED)
              AND t.state = 'queued'
            RETURNING t.job_id
            """, [limit], alertChat: alertChat)
    }

    /// Runs a task-ending statement (`RETURNING t.job_id`) and finishes the jobs it touched,
    /// in one transaction: never a failed task whose job waits for someone else to finish
    /// it. Jobs are locked in id order, so two sweepers cannot deadlock on them; a job with
    /// other tasks still live is simply not finishable yet. Each finish runs in its own
    /// savepoint (`JobFinish.finishIsolated`): one job whose finish throws is undone and
    /// alerted alone, instead of rolling back the whole batch and coming back first in
    /// every pass, blocking every other job behind it.
    static func endTasks(_ db: Connection, _ sql: String, _ params: [PostgresEncodable?], alertChat: Int64?) throws -> Outcome {
        try db.withTransaction { tx in
            let jobs = try tx.query(sql, params).map { $0.requiredInt("job_id") }
            var outcome = Outcome(tasks: jobs.count)
            for jobID in Set(jobs).sorted() {
                switch try JobFinish.finishIsolated(tx, jobID: jobID, alertChat: alertChat) {
                case .finished(let done): outcome.finished.append(done)
                case .failed: outcome.failed.append(jobID)
                case .notFinishable: break
                }
            }
            return outcome
        }
    }
}

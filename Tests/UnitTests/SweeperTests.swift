import Foundation
import PinGlassTesting
import Postgres
import XCTest
import PinGlassConfig
@testable import PinGlass

/// `pinglass sweep` in-process, step by step, with the exact rows each step must leave.
final class SweeperTests: PipelineTestCase {
    override func setUpWithError() throws {
        try super.setUpWithError()
        try SweepFixtures.recordTerminalChanges(c)
    }
    override func tearDown() {
        if let c { XCTAssertEqual(try SweepFixtures.terminalChanges(c), [], "no terminal row was ever changed") }
        super.tearDown()
    }

    @discardableResult
    func sweep(_ config: Sweeper.Config = .init(), deps: Dependencies? = nil) throws -> Sweeper.Report {
        let d = deps ?? self.deps!
        return try Sweeper(deps: d, config: config).runOnce(now: d.clock(), deadline: d.clock() + 55)
    }

    func task(_ id: Int) throws -> Row {
        try c.query("""
            SELECT state, attempts, fail_code, lease_token IS NULL AS no_lease, lease_until IS NULL AS no_lease_until,
                   run_at <= now() AS due, finished_at IS NOT NULL AS ended
            FROM generation_tasks WHERE id = $1
            """, [id])[0]
    }
    func states(_ jobID: Int) throws -> [String] {
        try c.query("SELECT state FROM generation_tasks WHERE job_id = $1 ORDER BY prompt_index", [jobID]).map { $0.requiredString("state") }
    }
    func jobStatus(_ id: Int) throws -> String { try c.query("SELECT status FROM generation_jobs WHERE id = $1", [id])[0].requiredString("status") }
    func refunds(_ jobID: Int) throws -> [Int] {
        try c.query("SELECT amount_kopecks FROM refunds WHERE job_id = $1", [jobID]).map { $0.requiredInt("amount_kopecks") }
    }
    func deliveryKinds(_ jobID: Int) throws -> [String] {
        try c.query("SELECT kind FROM telegram_deliveries WHERE job_id = $1 ORDER BY batch_no", [jobID]).map { $0.requiredString("kind") }
    }
    func audit() throws -> [String] { try InvariantAudit.run(c).map { "\($0.rule): \($0.ids)" } }

    // MARK: - Submit leases

    func testExpiredSubmitLeasesGoBackToTheQueueAndTheLastAttemptFails() throws {
        let job = try JobFixtures.running(deps, telegramID: 6101, photos: 4)
        let (expired, live, last, running) = (job.tasks[0].id, job.tasks[1].id, job.tasks[2].id, job.tasks[3].id)
        try SweepFixtures.submitting(c, taskID: expired, leaseIn: -1, attempts: 3)
        try SweepFixtures.submitting(c, taskID: live, leaseIn: 60, attempts: 1)
        try SweepFixtures.submitting(c, taskID: last, leaseIn: -1, attempts: GenerationPolicy().maxAttempts)

        let report = try sweep()
        XCTAssertEqual(report.submitLeasesRescued, 1)
        XCTAssertEqual(report.submitsAbandoned, 1)
        XCTAssertEqual(report.jobsFinished, 0, "two tasks are still live")

        let rescued = try task(expired)
        XCTAssertEqual(rescued.string("state"), "queued")
        XCTAssertEqual(rescued.int("attempts"), 3, "counted at the claim, not again")
        XCTAssertEqual(rescued.bool("no_lease"), true)
        XCTAssertEqual(rescued.bool("no_lease_until"), true)
        XCTAssertEqual(rescued.bool("due"), true)
        XCTAssertEqual(try task(live).string("state"), "submitting", "a live lease is its owner's")
        XCTAssertEqual(try task(live).bool("no_lease"), false)
        let abandoned = try task(last)
        XCTAssertEqual(abandoned.string("state"), "failed")
        XCTAssertEqual(abandoned.string("fail_code"), "submit_abandoned")
        XCTAssertEqual(abandoned.bool("no_lease"), true)
        XCTAssertEqual(try task(running).string("state"), "running")
        XCTAssertEqual(try jobStatus(job.id), "processing")

        // Again: nothing left to do.
        let again = try sweep()
        XCTAssertEqual(again.submitLeasesRescued + again.submitsAbandoned, 0)
    }

    /// The abandoned task was its job's last live one: the job finishes in the same
    /// transaction, fully refunded, and the dispatcher's own rescue applies the same rule.
    func testALastAttemptThatDiesFinishesItsJobAndDispatchAppliesTheSameRule() throws {
        let job = try JobFixtures.running(deps, telegramID: 6151, photos: 1)
        try SweepFixtures.submitting(c, taskID: job.tasks[0].id, leaseIn: -1, attempts: GenerationPolicy().maxAttempts)
        let report = try sweep()
        XCTAssertEqual(report.submitsAbandoned, 1)
        XCTAssertEqual(report.jobsFinished, 1)
        XCTAssertEqual(try jobStatus(job.id), "failed")
        XCTAssertEqual(try refunds(job.id), [49_900])
        XCTAssertEqual(try deliveryKinds(job.id), ["message"])

        let other = try JobFixtures.running(deps, telegramID: 6152, photos: 2)
        try SweepFixtures.submitting(c, taskID: other.tasks[0].id, leaseIn: -1, attempts: 2)
        try SweepFixtures.submitting(c, taskID: other.tasks[1].id, leaseIn: -1, attempts: GenerationPolicy().maxAttempts)
        let kie = FakeKie()
        deps.kie = kie
        kie.createErrors = [.permanent(code: 422, message: "refused")]   // the rescued task's resubmit
        let dispatch = try Dispatcher(deps: deps).runOnce(now: deps.clock(), deadline: deps.clock() + 0.3)
        XCTAssertEqual(dispatch.rescued, 1)
        XCTAssertEqual(try task(other.tasks[1].id).string("fail_code"), "submit_abandoned")
        XCTAssertEqual(try states(other.id), ["failed", "failed"])
        XCTAssertEqual(try jobStatus(other.id), "failed", "the dispatcher finished it after the last failure")
        XCTAssertEqual(try refunds(other.id), [49_900])
        XCTAssertEqual(try audit(), [])
    }

    // MARK: - Deadlines

    func testRunningTasksPastTheirDeadlineAndTheGraceFailAndTheJobFinishesOnce() throws {
        let job = try JobFixtures.running(deps, telegramID: 6201, photos: 7)
        try JobFixtures.settle(c, job, succeeded: 5, failed: 0)
        let (overdue, inGrace) = (job.tasks[5].id, job.tasks[6].id)
        try c.execute("UPDATE generation_tasks SET deadline_at = now() - interval '301 seconds' WHERE id = $1", [overdue])
        try c.execute("UPDATE generation_tasks SET deadline_at = now() - interval '200 seconds' WHERE id = $1", [inGrace])

        var report = try sweep()
        XCTAssertEqual(report.tasksPastDeadline, 1)
        XCTAssertEqual(report.jobsFinished, 0)
        XCTAssertEqual(try task(overdue).string("fail_code"), "deadline")
        XCTAssertEqual(try task(overdue).bool("ended"), true)
        XCTAssertEqual(try task(inGrace).string("state"), "running", "left to the poller's last look")
        XCTAssertEqual(try jobStatus(job.id), "processing")
        XCTAssertEqual(try refunds(job.id), [])

        try c.execute("UPDATE generation_tasks SET deadline_at = now() - interval '400 seconds' WHERE id = $1", [inGrace])
        report = try sweep()
        XCTAssertEqual(report.tasksPastDeadline, 1)
        XCTAssertEqual(report.jobsFinished, 1)
        XCTAssertEqual(try jobStatus(job.id), "partial", "5 of 7 is at least 70 %")
        XCTAssertEqual(try refunds(job.id), [49_900 * 2 / 7])
        XCTAssertEqual(try deliveryKinds(job.id), ["album", "message"])

        report = try sweep()
        XCTAssertEqual(report, Sweeper.Report(), "nothing more to do")
        XCTAssertEqual(try refunds(job.id), [49_900 * 2 / 7], "one refund row")
        XCTAssertEqual(try audit(), [])
    }

    /// Without a recorded deadline, `--task-deadline` after the submission counts.
    func testWithoutADeadlineTheSubmissionTimeDecides() throws {
        let job = try JobFixtures.running(deps, telegramID: 6251, photos: 2)
        try c.execute("UPDATE generation_tasks SET deadline_at = NULL WHERE job_id = $1", [job.id])
        try c.execute("UPDATE generation_tasks SET submitted_at = now() - interval '1501 seconds' WHERE id = $1", [job.tasks[0].id])
        try c.execute("UPDATE generation_tasks SET submitted_at = now() - interval '1400 seconds' WHERE id = $1", [job.tasks[1].id])
        XCTAssertEqual(try sweep().tasksPastDeadline, 1)
        XCTAssertEqual(try states(job.id), ["failed", "running"])
    }

    func testAJobThatNeverStartedFailsAtItsDeadlineWithAFullRefund() throws {
        let late = try JobFixtures.queued(deps, telegramID: 6301, photos: 3, deadlineIn: -1)
        let onTime = try JobFixtures.queued(deps, telegramID: 6302, photos: 3, deadlineIn: 3600)

        let report = try sweep()
        XCTAssertEqual(report.tasksPastJobDeadline, 3)
        XCTAssertEqual(report.jobsFinished, 1)
        XCTAssertEqual(try states(late.id), ["failed", "failed", "failed"])
        XCTAssertEqual(try c.query("SELECT DISTINCT fail_code FROM generation_tasks WHERE job_id = $1", [late.id]).map { $0.string("fail_code") },
                       ["job_deadline"])
        XCTAssertEqual(try jobStatus(late.id), "failed")
        XCTAssertEqual(try refunds(late.id), [49_900])
        XCTAssertEqual(try deliveryKinds(late.id), ["message"])
        XCTAssertEqual(try states(onTime.id), ["queued", "queued", "queued"])
        XCTAssertEqual(try jobStatus(onTime.id), "queued")
        XCTAssertEqual(try audit(), [])
    }

    /// A job long past its deadline whose tasks are still at work (one photo taken, another
    /// still generating within its own deadline, one being submitted) is never
    /// killed because time passed: only its never-submitted task ends. It finishes when its
    /// live tasks end.
    func testLiveTasksAreNeverKilledBecauseTimePassed() throws {
        let job = try JobFixtures.running(deps, telegramID: 6401, photos: 4)
        try c.execute("UPDATE generation_jobs SET deadline_at = now() - interval '1 hour', created_at = now() - interval '3 hours' WHERE id = $1", [job.id])
        try JobFixtures.settle(c, job, succeeded: 1, failed: 0)
        try c.execute("UPDATE generation_tasks SET submitted_at = now() - interval '15 minutes', deadline_at = now() + interval '5 minutes' WHERE id = $1",
                      [job.tasks[1].id])
        try SweepFixtures.submitting(c, taskID: job.tasks[2].id, leaseIn: 60)
        try c.execute("UPDATE generation_tasks SET state = 'queued', kie_task_id = NULL WHERE id = $1", [job.tasks[3].id])

        let report = try sweep()
        XCTAssertEqual(report.tasksPastJobDeadline, 1)
        XCTAssertEqual(report.jobsFinished, 0)
        XCTAssertEqual(try states(job.id), ["succeeded", "running", "submitting", "failed"])
        XCTAssertEqual(try jobStatus(job.id), "processing")
        XCTAssertEqual(try refunds(job.id), [])

        // The live tasks end (the poller takes one photo; the submit's lease runs out on its
        // last attempt): now the job finishes, once.
        try c.execute("UPDATE generation_tasks SET state = 'failed', finished_at = now(), fail_code = 'kie_fail' WHERE id = $1", [job.tasks[1].id])
        try SweepFixtures.submitting(c, taskID: job.tasks[2].id, leaseIn: -1, attempts: GenerationPolicy().maxAttempts)
        XCTAssertEqual(try sweep().jobsFinished, 1)
        XCTAssertEqual(try jobStatus(job.id), "failed", "1 of 4 is below 70 %")
        XCTAssertEqual(try refunds(job.id), [49_900], "below 70 % with nothing sent: everything back")
        XCTAssertEqual(try audit(), [])
    }

    /// A job whose tasks all ended but which nobody finished (a poller killed between its
    /// commit and the finish): the sweep finishes it through `JobFinish`, once.
    func testStrandedJobsAreFinishedOnce() throws {
        let job = try JobFixtures.running(deps, telegramID: 6501, photos: 7)
        try JobFixtures.settle(c, job, succeeded: 7, failed: 0)
        XCTAssertEqual(try sweep().jobsFinished, 1)
        XCTAssertEqual(try jobStatus(job.id), "completed")
        XCTAssertEqual(try deliveryKinds(job.id), ["album", "message"])
        XCTAssertEqual(try refunds(job.id), [])
        XCTAssertEqual(try sweep().jobsFinished, 0)
        XCTAssertEqual(try deliveryKinds(job.id), ["album", "message"])
    }

    /// One job whose finish throws (a test-only trigger refuses it) must not hold back the
    /// sweep: its tasks still end, the other jobs of the same statement and of the stranded
    /// step finish, the failure is counted and alerted, and every later pass tries it again
    /// until the cause is gone. Batches of one, so the failing job is always the first row.
    func testAJobWhoseFinishFailsIsAlertedAndTheOthersAreStillSwept() throws {
        let deps = try PollFixtures.deps(db, env: ["ADMIN_TELEGRAM_CHAT_ID": String(DeliveryFixtures.adminChat)])
        let jobs = try (0..<3).map { try JobFixtures.running(deps, telegramID: Int64(6551 + $0), photos: 2) }
        try c.execute("UPDATE generation_tasks SET deadline_at = now() - interval '1 hour' WHERE job_id = ANY($1::bigint[])",
                      [jobs.map { String($0.id) }])
        let stranded = try JobFixtures.running(deps, telegramID: 6554, photos: 2)
        try JobFixtures.settle(c, stranded, succeeded: 2, failed: 0)
        try JobFinishFailure.install(c, jobID: jobs[0].id)
        var config = Sweeper.Config()
        config.batchSize = 1

        let report = try sweep(config, deps: deps)
        XCTAssertEqual(report.tasksPastDeadline, 6)
        XCTAssertEqual(report.jobsFinished, 3, "the two other jobs and the stranded one")
        XCTAssertEqual(report.jobFinishFailures, 2, "twice in the pass: with its last task, then as a stranded job")
        XCTAssertEqual(try states(jobs[0].id), ["failed", "failed"], "its tasks' ends commit")
        XCTAssertEqual(try jobStatus(jobs[0].id), "processing")
        XCTAssertEqual(try refunds(jobs[0].id), [])
        XCTAssertEqual(try [jobs[1], jobs[2], stranded].map { try jobStatus($0.id) }, ["failed", "failed", "completed"])
        XCTAssertEqual(Set(try JobFinishFailure.alerts(c)), ["job-finish-failed:\(jobs[0].id)"])
        XCTAssertEqual(try Counters.value(c, "jobs.finish_failed"), 2)

        XCTAssertEqual(try sweep(config, deps: deps).jobFinishFailures, 1, "tried again every pass")
        try JobFinishFailure.remove(c)
        XCTAssertEqual(try sweep(config, deps: deps).jobsFinished, 1)
        XCTAssertEqual(try jobStatus(jobs[0].id), "failed")
        XCTAssertEqual(try refunds(jobs[0].id), [49_900])
        XCTAssertEqual(try audit(), [])
    }

    // MARK: - Delivery and refund leases

    func testDeliveryAndRefundLeasesAreRescuedAndNothingFinishedIsTouched() throws {
        let expired = try (0..<5).map { _ in try SweepFixtures.delivery(c, state: "sending", leaseIn: -1, runIn: -30) }
        let live = try SweepFixtures.delivery(c, state: "sending", leaseIn: 60, runIn: -30)
        let sent = try SweepFixtures.delivery(c, state: "sent", leaseIn: -60)
        let failed = try SweepFixtures.delivery(c, state: "failed", leaseIn: -60)
        let pending = try SweepFixtures.delivery(c, state: "pending", leaseIn: nil, runIn: 600)

        let payment = try JobFixtures.running(deps, telegramID: 6601, photos: 1).paymentID
        let requested = try SweepFixtures.refund(c, paymentID: payment, state: "requested", leaseIn: -1, runIn: 300)
        let claimed = try SweepFixtures.refund(c, paymentID: payment, state: "pending", leaseIn: -1, runIn: -10)
        let inFlight = try SweepFixtures.refund(c, paymentID: payment, state: "requested", leaseIn: 60, runIn: -10)
        let done = try SweepFixtures.refund(c, paymentID: payment, state: "succeeded", leaseIn: -60)
        let refused = try SweepFixtures.refund(c, paymentID: payment, state: "failed", leaseIn: -60)

        var config = Sweeper.Config()
        config.batchSize = 2   // three statements for the five expired deliveries
        let report = try sweep(config)
        XCTAssertEqual(report.deliveryLeasesRescued, 5)
        XCTAssertEqual(report.refundLeasesRescued, 2)

        func delivery(_ id: Int) throws -> String {
            let r = try c.query("""
                SELECT state, attempts, lease_token IS NULL AND lease_until IS NULL AS no_lease, run_at <= now() AS due
                FROM telegram_deliveries WHERE id = $1
                """, [id])[0]
            return "\(r.requiredString("state")) attempts=\(r.requiredInt("attempts")) noLease=\(r.bool("no_lease")!) due=\(r.bool("due")!)"
        }
        for id in expired { XCTAssertEqual(try delivery(id), "pending attempts=1 noLease=true due=true") }
        XCTAssertEqual(try delivery(live), "sending attempts=1 noLease=false due=true")
        XCTAssertEqual(try delivery(sent), "sent attempts=1 noLease=false due=true")
        XCTAssertEqual(try delivery(failed), "failed attempts=1 noLease=false due=true")
        XCTAssertEqual(try delivery(pending), "pending attempts=1 noLease=true due=false")

        func refund(_ id: Int) throws -> String {
            let r = try c.query("""
                SELECT state, attempts, external_request_id::text AS x, lease_token IS NULL AND lease_until IS NULL AS no_lease,
                       run_at <= now() AS due FROM refunds WHERE id = $1
                """, [id])[0]
            return "\(r.requiredString("state")) attempts=\(r.requiredInt("attempts")) noLease=\(r.bool("no_lease")!) due=\(r.bool("due")!)"
        }
        XCTAssertEqual(try refund(requested), "requested attempts=1 noLease=true due=true", "still requested: the bank is asked first")
        XCTAssertEqual(try refund(claimed), "pending attempts=1 noLease=true due=true")
        XCTAssertEqual(try refund(inFlight), "requested attempts=1 noLease=false due=true")
        XCTAssertEqual(try refund(done), "succeeded attempts=1 noLease=false due=true")
        XCTAssertEqual(try refund(refused), "failed attempts=1 noLease=false due=true")
        XCTAssertEqual(try c.query("SELECT count(DISTINCT external_request_id)::int AS n FROM refunds")[0].int("n"), 5,
                       "every refund keeps its ExternalRequestId")
        XCTAssertEqual(try audit(), [])
    }

    func testSettingsAreValidated() throws {
        var config = Sweeper.Config()
        config.deadlineGraceSeconds = 60
        XCTAssertThrowsError(try Sweeper(deps: deps, config: config)) { XCTAssertTrue("\($0)".contains("--deadline-grace"), "\($0)") }
        config = Sweeper.Config()
        config.batchSize = 0
        XCTAssertThrowsError(try config.validate()) { XCTAssertTrue("\($0)".contains("--batch-size")) }
    }

    /// A pass past its deadline stops before its next statement and says so.
    func testAPassStopsAtItsDeadline() throws {
        let job = try JobFixtures.queued(deps, telegramID: 6701, photos: 2, deadlineIn: -1)
        let report = try Sweeper(deps: deps).runOnce(now: deps.clock(), deadline: deps.clock() - 1)
        XCTAssertTrue(report.stoppedAtDeadline)
        XCTAssertEqual(try states(job.id), ["queued", "queued"])
    }
}

import Foundation
import PinGlassTesting
import Postgres
import XCTest
import PinGlassConfig
@testable import PinGlass
import Providers

/// `pinglass dispatch` in-process against FakeKie: fairness across jobs, the shared sliding
/// budget, and how each Kie answer is handled.
final class DispatcherTests: DatabaseTestCase {
    var c: Connection!

    override func setUpWithError() throws {
        try super.setUpWithError()
        c = try db.connect()
    }

    func deps(_ kie: FakeKie, rateLimit: Int = 20, webhookKey: String? = "dispatcher-webhook-key") throws -> Dependencies {
        var env = ["KIE_RATE_LIMIT": String(rateLimit), "MEDIA_KEY_SECRET": GenerationFixtures.mediaSecret,
                   "PUBLIC_BASE_URL": "https://pinglass.example"]
        env["KIE_WEBHOOK_HMAC_KEY"] = webhookKey
        let config = try db.config(env)
        let d = Dependencies.live(config: config, database: Database(url: config.databaseURL, applicationName: "test"))
        d.kie = kie
        return d
    }

    /// A job with `photos` queued tasks, created `ageSeconds` ago; its id.
    @discardableResult
    func job(_ telegramID: Int64, photos: Int, ageSeconds: Int = 0) throws -> Int {
        try JobFixtures.job(c, telegramID: telegramID, photos: photos, tasks: .queued, createdSecondsAgo: ageSeconds).id
    }

    func states(_ jobID: Int) throws -> [String: Int] {
        var out: [String: Int] = [:]
        for r in try c.query("SELECT state, count(*)::int AS n FROM generation_tasks WHERE job_id = $1 GROUP BY state", [jobID]) {
            out[r.requiredString("state")] = r.requiredInt("n")
        }
        return out
    }

    /// A 23-photo job that came first does not starve a 7-photo job: turn by turn, each job
    /// gets its next photo submitted.
    func testRoundRobinAcrossJobsAndTheSubmitIsRecorded() throws {
        let big = try job(31_001, photos: 23, ageSeconds: 60)
        let small = try job(31_002, photos: 7)
        let kie = FakeKie()
        let d = try deps(kie, rateLimit: 10)
        let report = try Dispatcher(deps: d).runOnce(now: d.clock(), deadline: d.clock() + 0.5)
        XCTAssertEqual(report.submitted, 10)
        XCTAssertEqual(try states(big)["running"], 5)
        XCTAssertEqual(try states(small)["running"], 5, "equal turns, not the older job first")
        let r = try c.query("""
            SELECT kie_task_id, lease_token, submitted_at IS NOT NULL AS s, deadline_at > now() AS d FROM generation_tasks
            WHERE state = 'running' LIMIT 1
            """)[0]
        XCTAssertTrue(r.requiredString("kie_task_id").hasPrefix("fake-"))
        XCTAssertNil(r.string("lease_token"))
        XCTAssertEqual(r.bool("s"), true)
        XCTAssertEqual(r.bool("d"), true)
        XCTAssertEqual(try c.query("SELECT status FROM generation_jobs WHERE id = $1", [small])[0].string("status"), "processing")
        let request = try XCTUnwrap(kie.created.first)
        XCTAssertEqual(request.aspectRatio, "3:4")
        XCTAssertEqual(request.callbackURL, "https://pinglass.example/api/kie/callback")
        XCTAssertEqual(request.imageURLs.count, 1)
        XCTAssertTrue(request.imageURLs[0].contains("md5=") && request.imageURLs[0].contains("expires="), "a signed link Kie can fetch")
        let expires = try XCTUnwrap(request.imageURLs[0].split(separator: "expires=").last.flatMap { Double($0) })
        XCTAssertEqual(expires - d.clock(), Double(DispatcherDefaults.referenceLinkSeconds), accuracy: 30, "long enough for Kie's queue")
        XCTAssertGreaterThanOrEqual(DispatcherDefaults.referenceLinkSeconds, 3600)
        var short = Dispatcher.Config()
        short.referenceLinkSeconds = 600
        XCTAssertThrowsError(try short.validate(), "shorter than an hour is refused")
    }

    /// Two dispatchers at once share one sliding budget: together never more than the limit
    /// inside a window, and each call is made once.
    /// Without KIE_WEBHOOK_HMAC_KEY the callback endpoint answers 404, so Kie is given no
    /// callback URL to call in vain.
    func testNoCallbackURLWithoutTheWebhookKey() throws {
        try job(31_101, photos: 1)
        let kie = FakeKie()
        let d = try deps(kie, webhookKey: nil)
        XCTAssertEqual(try Dispatcher(deps: d).runOnce(now: d.clock(), deadline: d.clock() + 0.5).submitted, 1)
        let request = try XCTUnwrap(kie.created.first)
        XCTAssertNil(request.callbackURL)
    }

    func testTwoDispatchersShareOneBudget() throws {
        try job(32_001, photos: 23)
        try job(32_002, photos: 23)
        let kie = FakeKie()
        let d1 = try deps(kie, rateLimit: 20)
        let d2 = try deps(kie, rateLimit: 20)
        let done = DispatchSemaphore(value: 0)
        let reports = Locked<[Dispatcher.Report]>([])
        for d in [d1, d2] {
            let box = Locked(d)
            Thread {
                let deps = box.value
                if let r = try? Dispatcher(deps: deps).runOnce(now: deps.clock(), deadline: deps.clock() + 1) { reports.mutate { $0.append(r) } }
                done.signal()
            }.start()
        }
        XCTAssertEqual(done.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(done.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(reports.value.count, 2)
        XCTAssertEqual(kie.created.count, 20, "the window's budget, no more")
        XCTAssertEqual(reports.value.map(\.submitted).reduce(0, +), 20)
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM generation_tasks WHERE state = 'running'")[0].int("n"), 20)
        XCTAssertEqual(try c.query("SELECT count(DISTINCT kie_task_id)::int AS n FROM generation_tasks")[0].int("n"), 20)
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM generation_tasks WHERE state = 'queued'")[0].int("n"), 26)
    }

    /// A spent budget is waited out on `Dependencies.clock`: with a test clock the pass
    /// ends at its deadline without sleeping for real, and the budget, counted by
    /// PostgreSQL's clock, lets nothing more through meanwhile.
    func testASpentBudgetIsWaitedOutOnTheDependenciesClock() throws {
        let id = try job(33_101, photos: 5)
        let kie = FakeKie()
        let d = try deps(kie, rateLimit: 2)
        let clock = TestClock(now: 1_000)
        d.clock = clock.clock
        let started = Date()
        let report = try Dispatcher(deps: d).runOnce(now: d.clock(), deadline: d.clock() + 55)
        XCTAssertEqual(report.submitted, 2, "the window's budget")
        XCTAssertGreaterThanOrEqual(report.budgetWaits, 1)
        XCTAssertFalse(clock.sleeps.isEmpty)
        XCTAssertTrue(clock.sleeps.allSatisfy { $0 > 0 && $0 <= DispatcherDefaults.windowSeconds }, "\(clock.sleeps)")
        XCTAssertGreaterThanOrEqual(clock.now, 1_055, "the pass ran to its deadline on the test clock")
        XCTAssertLessThan(Date().timeIntervalSince(started), 10, "no real wait of a window")
        XCTAssertEqual(try states(id), ["running": 2, "queued": 3])
    }

    /// 429: the call was dropped. The task and the rest of the round go back for a full
    /// window, attempts untouched, and the budget is closed for that window.
    func testRateLimitedWaitsAWindowAndClosesTheBudget() throws {
        let id = try job(33_001, photos: 5)
        let kie = FakeKie()
        kie.createErrors = [.rateLimited]
        let d = try deps(kie)
        let report = try Dispatcher(deps: d).runOnce(now: d.clock(), deadline: d.clock() + 0.3)
        XCTAssertEqual(report.rateLimited, 1)
        XCTAssertEqual(report.submitted, 0)
        XCTAssertEqual(try states(id), ["queued": 5])
        let r = try c.query("""
            SELECT min(run_at - now()) > interval '9 seconds' AS later, max(attempts)::int AS a FROM generation_tasks WHERE job_id = $1
            """, [id])[0]
        XCTAssertEqual(r.bool("later"), true, "a full window before the next try")
        XCTAssertEqual(r.int("a"), 0, "a 429 is not the task's attempt")
        XCTAssertEqual(try RateBudget(name: "kie.create", limit: 20, window: 11).reserve(c, want: 1).granted, 0)
        XCTAssertEqual(try Counters.value(c, "kie.rate_limited"), 1)
    }

    func testTransientRetriesWithBackoffPermanentAndOutOfCreditsFail() throws {
        let id = try job(34_001, photos: 3)
        let kie = FakeKie()
        kie.createErrors = [.transient("HTTP 500"), .permanent(code: 422, message: "prompt refused"), .outOfCredits]
        let d = try deps(kie)
        let report = try Dispatcher(deps: d).runOnce(now: d.clock(), deadline: d.clock() + 0.3)
        XCTAssertEqual(report.retried, 1)
        XCTAssertEqual(report.failed, 2)
        XCTAssertEqual(try states(id), ["queued": 1, "failed": 2])
        let retried = try c.query("SELECT attempts, run_at > now() + interval '2 seconds' AS later FROM generation_tasks WHERE job_id = $1 AND state = 'queued'", [id])[0]
        XCTAssertEqual(retried.int("attempts"), 1)
        XCTAssertEqual(retried.bool("later"), true, "backoff, not at once")
        let codes = try c.query("SELECT fail_code FROM generation_tasks WHERE job_id = $1 AND state = 'failed' ORDER BY fail_code", [id]).map { $0.string("fail_code") }
        XCTAssertEqual(codes, ["402", "422"])
        XCTAssertEqual(try Counters.value(c, "kie.out_of_credits"), 1)
        // Past the attempt limit a transient failure fails the task.
        try c.execute("UPDATE generation_tasks SET attempts = 7, run_at = now() WHERE job_id = $1 AND state = 'queued'", [id])
        kie.createErrors = [.transient("timeout")]
        _ = try Dispatcher(deps: d).runOnce(now: d.clock(), deadline: d.clock() + 0.3)
        XCTAssertEqual(try states(id), ["failed": 3])
        // Its last task failed at submit: the job is finished there and then, refunded in full.
        XCTAssertEqual(try c.query("SELECT status FROM generation_jobs WHERE id = $1", [id])[0].string("status"), "failed")
        XCTAssertEqual(try c.query("SELECT amount_kopecks FROM refunds WHERE job_id = $1", [id])[0].int("amount_kopecks"), 49900)
    }

    /// A task the sweeper took back while createTask was in flight is not overwritten.
    func testALostLeaseIsNotOverwritten() throws {
        let id = try job(35_001, photos: 1)
        let kie = FakeKie()
        let other = try db.connect()
        kie.onCreate = { _ in
            _ = try? other.execute("UPDATE generation_tasks SET state = 'queued', lease_token = NULL, lease_until = NULL, run_at = now() + interval '1 hour' WHERE job_id = $1", [id])
        }
        let d = try deps(kie)
        _ = try Dispatcher(deps: d).runOnce(now: d.clock(), deadline: d.clock() + 0.2)
        XCTAssertEqual(kie.created.count, 1)
        XCTAssertNil(try c.query("SELECT kie_task_id FROM generation_tasks WHERE job_id = $1", [id])[0].string("kie_task_id"),
                     "the submit is not recorded on a task that is no longer ours")
    }

    /// A committed NOTIFY ends a listener's wait; without one the wait times out.
    func testListenerWakesOnNotify() throws {
        let listener = Listener(conninfo: db.url, channels: ["dispatch"])
        XCTAssertFalse(listener.wait(timeout: 0.2), "nothing notified")
        try c.execute("SELECT pg_notify('dispatch', '42')")
        XCTAssertTrue(listener.wait(timeout: 30), "woken by the notification, long before the timeout")
        XCTAssertFalse(listener.wait(timeout: 0.1), "a notification wakes once")
    }

    func testConfigIsValidated() {
        var config = Dispatcher.Config()
        config.batchSize = 0
        XCTAssertThrowsError(try config.validate()) { XCTAssertTrue("\($0)".contains("--batch-size")) }
    }

    /// Calls go out one by one: a task whose lease was taken back while earlier calls of the
    /// batch were in flight (another dispatcher or the sweeper rescued it) is not submitted.
    func testATaskRescuedMidBatchIsNotSubmittedAgain() throws {
        let id = try job(36_001, photos: 5)
        let kie = FakeKie()
        let other = try db.connect()
        kie.onCreate = { _ in
            // While the first call is in flight, the rest of the batch is rescued elsewhere.
            _ = try? other.execute("""
                UPDATE generation_tasks SET state = 'queued', lease_token = NULL, lease_until = NULL, run_at = now() + interval '1 hour'
                WHERE job_id = $1 AND state = 'submitting' AND kie_task_id IS NULL
                  AND id <> (SELECT min(id) FROM generation_tasks WHERE job_id = $1)
                """, [id])
        }
        let d = try deps(kie)
        let report = try Dispatcher(deps: d).runOnce(now: d.clock(), deadline: d.clock() + 0.3)
        XCTAssertEqual(kie.created.count, 1, "only the task still ours went to Kie")
        XCTAssertEqual(report.leaseLost, 4)
        XCTAssertEqual(try states(id), ["running": 1, "queued": 4])
    }
}

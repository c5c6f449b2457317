import Foundation
import PinGlassTesting
import Postgres
import XCTest
import PinGlassConfig
import ProviderWire
@testable import PinGlass

/// Two sweepers and two pollers at once, with 1-second leases, over many tasks:
/// the sweeper races completions and never overwrites a terminal state (the River #1302 /
/// Solid Queue #589 bug). Every task ends exactly once, every job finishes once, each
/// refund row exists once with the rule's amount, and the audit is clean.
final class SweepRaceTests: DatabaseTestCase {
    var files: StaticFileServer!
    var kie: FakeKie!
    var storage = ""

    override func setUpWithError() throws {
        try super.setUpWithError()
        files = try StaticFileServer()
        kie = FakeKie()
        storage = try TestEnvironment.makeTempDir("race-media")
    }
    override func tearDown() {
        files?.stop()
        super.tearDown()
    }

    /// Dependencies with their own connection, sharing the media folder and the fake Kie.
    func makeDeps() throws -> Dependencies {
        let d = try PollFixtures.deps(db, env: ["STORAGE_DIR": storage, "KIE_POLL_RPS": "1000"])
        d.kie = kie
        return d
    }

    func testTwoSweepersAndTwoPollersRacingCompletionsEndEverythingOnce() throws {
        let c = try db.connect()
        try SweepFixtures.recordTerminalChanges(c)
        let deps = try makeDeps()
        let grace = SweeperDefaults.deadlineGraceSeconds
        let (jobCount, photos) = (16, 6)

        // Every job past its deadline; its tasks running at Kie, each overdue for the pollers
        // (one last look) and overdue for the sweepers now or within the next two seconds.
        // Kie's answers: a third succeed (real downloads), a third fail, a third still generate.
        var jobs: [JobFixtures.Job] = []
        var leased: [(task: Int, token: String)] = []
        for j in 0..<jobCount {
            let job = try JobFixtures.running(deps, telegramID: Int64(7700 + j), photos: photos)
            jobs.append(job)
            try c.execute("UPDATE generation_jobs SET deadline_at = now() - interval '1 second' WHERE id = $1", [job.id])
            for (i, t) in job.tasks.enumerated() {
                switch (j + i) % 3 {
                case 0:
                    let url = try files.put("results/\(t.kieID).jpg", bytes: GenerationFixtures.jpeg(t.id, size: 2048))
                    kie.states[t.kieID] = .success(KieTaskInfo(taskID: t.kieID, state: .success, resultURLs: [url]))
                case 1:
                    kie.states[t.kieID] = .success(KieTaskInfo(taskID: t.kieID, state: .fail, failCode: "500", failMessage: "fixture"))
                default:
                    break   // generating
                }
            }
            // The last task of each job is being submitted (its lease is set below): a
            // dispatcher records it while the sweepers rescue it.
            let last = job.tasks[photos - 1].id
            try SweepFixtures.submitting(c, taskID: last, leaseIn: 1)
            leased.append((last, try c.query("SELECT lease_token::text AS t FROM generation_tasks WHERE id = $1", [last])[0].requiredString("t")))
        }
        // Deliveries being sent with 1-second leases, completed (in no particular order) by a
        // sender while the sweepers rescue them.
        let sending = try (0..<150).map { _ in
            let id = try SweepFixtures.delivery(c, state: "sending", leaseIn: 1)
            return (id: id, token: try c.query("SELECT lease_token::text AS t FROM telegram_deliveries WHERE id = $1", [id])[0].requiredString("t"))
        }.shuffled()
        let taskCount = jobCount * photos
        // The sweepers' grace ends for the running tasks from half a second ago to 2.5 s from
        // now, spread over the tasks: the pollers' last looks and the sweepers' ends overlap.
        try c.execute("""
            UPDATE generation_tasks SET deadline_at = now() - make_interval(secs => $1) + (id % 7) * interval '0.5 seconds' - interval '0.5 seconds'
            WHERE state = 'running'
            """, [grace])
        // The 1-second leases: from just ended to just ending.
        try c.execute("UPDATE generation_tasks SET lease_until = now() + (id % 4) * interval '0.3 seconds' - interval '0.5 seconds' WHERE state = 'submitting'")
        try c.execute("UPDATE telegram_deliveries SET lease_until = now() + (id % 4) * interval '0.3 seconds' - interval '0.5 seconds' WHERE state = 'sending'")

        var sweepConfig = Sweeper.Config()
        sweepConfig.batchSize = 3
        var pollConfig = KiePoller.Config()
        pollConfig.batchSize = 5
        pollConfig.pollIntervalSeconds = 1
        let sweepers = try (0..<2).map { _ in Locked(try Sweeper(deps: makeDeps(), config: sweepConfig)) }
        let pollers = try (0..<2).map { _ in Locked(try KiePoller(deps: makeDeps(), config: pollConfig)) }
        let jobsFinished = Locked(0)
        let recorded = Locked(0)
        let sent = Locked(0)
        let errors = Locked<[String]>([])
        let running = Locked(true)
        let group = DispatchGroup()
        func spawn(_ body: @escaping @Sendable () throws -> Void) {
            group.enter()
            Thread {
                do { try body() } catch { errors.mutate { $0.append("\(error)") } }
                group.leave()
            }.start()
        }
        let sweeps = [Locked(0), Locked(0)]
        for (sweeper, passes) in zip(sweepers, sweeps) {
            spawn {
                let s = sweeper.value
                while running.value {
                    let r = try s.runOnce(now: s.deps.clock(), deadline: s.deps.clock() + 55)
                    jobsFinished.mutate { $0 += r.jobsFinished }
                    passes.mutate { $0 += 1 }
                }
            }
        }
        for poller in pollers {
            spawn {
                let p = poller.value
                while running.value {
                    let r = try p.runOnce(now: p.deps.clock(), deadline: p.deps.clock() + 55)
                    jobsFinished.mutate { $0 += r.jobsFinished }
                }
            }
        }
        let leasedTasks = leased
        let recorder = Locked(try db.connect())
        let sender = Locked(try db.connect())
        // The recorder and the sender start once the sweepers have taken back a first row of
        // theirs (a wait on the database, not on time): from then on both sides go for the
        // same rows, so the race cannot be over before it began (they are far quicker than a
        // sweeper's pass).
        spawn {
            // The dispatcher's record (Dispatcher.recordSubmitted): guarded by the lease token only.
            let conn = recorder.value
            try Subprocess.waitUntil(timeout: 60, interval: 0.002, "a first submit taken back by a sweeper") {
                try conn.query("SELECT count(*)::int AS n FROM generation_tasks WHERE id = ANY($1::bigint[]) AND state <> 'submitting'",
                               [leasedTasks.map { String($0.task) }])[0].requiredInt("n") > 0
            }
            for (task, token) in leasedTasks {
                let n = try conn.execute("""
                    UPDATE generation_tasks SET state = 'running', kie_task_id = 'late-' || id, submitted_at = now(),
                           deadline_at = now() - make_interval(secs => $3), run_at = now(), lease_token = NULL, lease_until = NULL
                    WHERE id = $1 AND state = 'submitting' AND lease_token = $2::uuid
                    """, [task, token, grace + 1])
                recorded.mutate { $0 += n }
            }
        }
        spawn {
            // The deliver duty's record after a send: guarded by the lease token.
            let conn = sender.value
            try Subprocess.waitUntil(timeout: 60, interval: 0.002, "a first delivery taken back by a sweeper") {
                try conn.query("SELECT count(*)::int AS n FROM telegram_deliveries WHERE job_id IS NULL AND state = 'pending'")[0]
                    .requiredInt("n") > 0
            }
            for (id, token) in sending {
                let n = try conn.execute("""
                    UPDATE telegram_deliveries SET state = 'sent', sent_at = now(), lease_token = NULL, lease_until = NULL
                    WHERE id = $1 AND state = 'sending' AND lease_token = $2::uuid
                    """, [id, token])
                sent.mutate { $0 += n }
            }
        }

        // Until every task and job has ended and every task is past its deadline and the
        // grace (so a sweeper that ignored a terminal state would find every finished task
        // eligible), then two more passes of each sweeper, then stop everyone.
        let waited = Result {
            try Subprocess.waitUntil(timeout: 90, interval: 0.05, "every task and job ended, every grace over") {
                try c.query("""
                    SELECT (SELECT count(*) FROM generation_tasks WHERE state NOT IN ('succeeded', 'failed'))
                         + (SELECT count(*) FROM generation_jobs WHERE finished_at IS NULL)
                         + (SELECT count(*) FROM generation_tasks WHERE deadline_at >= now() - make_interval(secs => $1)) AS n
                    """, [grace])[0].requiredInt("n") == 0
            }
            let seen = sweeps.map(\.value)
            try Subprocess.waitUntil(timeout: 30, interval: 0.01, "two more passes of each sweeper") {
                zip(sweeps, seen).allSatisfy { $0.value >= $1 + 2 }
            }
        }
        running.mutate { $0 = false }
        XCTAssertEqual(group.wait(timeout: .now() + 120), .success)
        try waited.get()
        XCTAssertEqual(errors.value, [], "no deadlock, no failed pass")

        // Never a terminal state overwritten, by anyone.
        XCTAssertEqual(try SweepFixtures.terminalChanges(c), [])
        // Every task ended exactly once; every job finished exactly once, by exactly one caller.
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n, count(DISTINCT task_id)::int AS d FROM test_task_ends")[0].int("n"), taskCount)
        XCTAssertEqual(try c.query("SELECT count(DISTINCT task_id)::int AS d FROM test_task_ends")[0].int("d"), taskCount)
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM test_job_ends")[0].int("n"), jobCount)
        XCTAssertEqual(try c.query("SELECT count(DISTINCT job_id)::int AS n FROM test_job_ends")[0].int("n"), jobCount)
        XCTAssertEqual(jobsFinished.value, jobCount, "each finish counted by the one caller that made it")
        // One photo per succeeded task, none for a failed one.
        XCTAssertEqual(try c.query("""
            SELECT count(*)::int AS n FROM generation_tasks t LEFT JOIN generated_photos p ON p.task_id = t.id
            WHERE (t.state = 'succeeded') <> (p.id IS NOT NULL)
            """)[0].int("n"), 0)
        // The refund rows: one per job with photos missing, the rule's amount.
        for job in jobs {
            let r = try c.query("""
                SELECT j.succeeded, j.total_photos, (SELECT count(*)::int FROM refunds WHERE job_id = j.id) AS refunds,
                       (SELECT count(*)::int FROM generated_photos g WHERE g.job_id = j.id AND g.released_at IS NOT NULL) AS released,
                       (SELECT coalesce(sum(amount_kopecks), 0)::int FROM refunds WHERE job_id = j.id) AS refunded
                FROM generation_jobs j WHERE j.id = $1
                """, [job.id])[0]
            let owed = RefundRule.standard.refund(amount: Money(kopecks: job.amountKopecks), photos: r.requiredInt("succeeded"),
                                                  released: r.requiredInt("released"), total: r.requiredInt("total_photos")).kopecks
            XCTAssertEqual(r.int("refunds"), owed > 0 ? 1 : 0, "job \(job.id)")
            XCTAssertEqual(r.int("refunded"), owed, "job \(job.id)")
        }
        // Each leased delivery was either recorded sent by its sender or rescued, never both.
        let states = try c.query("SELECT state, count(*)::int AS n FROM telegram_deliveries WHERE kind = 'message' AND job_id IS NULL GROUP BY state")
        let byState = Dictionary(uniqueKeysWithValues: states.map { ($0.requiredString("state"), $0.requiredInt("n")) })
        XCTAssertEqual(byState["sent", default: 0], sent.value)
        XCTAssertEqual(byState["sent", default: 0] + byState["pending", default: 0], sending.count, "\(byState)")
        XCTAssertEqual(try InvariantAudit.run(c), [])
        // Who won each row is the race's business, but a run where one side did everything
        // raced nothing and proves nothing: each race must have had winners on both sides.
        let codes = try c.query("SELECT coalesce(fail_code, state) AS k, count(*)::int AS n FROM generation_tasks GROUP BY 1 ORDER BY 1")
            .map { "\($0.requiredString("k"))=\($0.requiredInt("n"))" }
        let overdue = try c.query("""
            SELECT count(*) FILTER (WHERE fail_message LIKE '%ended by the sweep%')::int AS sweep,
                   count(*) FILTER (WHERE fail_message NOT LIKE '%ended by the sweep%')::int AS poll
            FROM generation_tasks WHERE fail_code = 'deadline'
            """)[0]
        let (sweptOverdue, polledOverdue) = (overdue.requiredInt("sweep"), overdue.requiredInt("poll"))
        let outcome = "\(codes.joined(separator: " ")); overdue ended by sweepers \(sweptOverdue), by pollers \(polledOverdue); "
            + "submits recorded \(recorded.value)/\(jobCount); deliveries sent \(sent.value)/\(sending.count)"
        print("race outcome: \(outcome)")
        XCTAssertTrue(sweptOverdue > 0 && polledOverdue > 0, "sweepers and pollers both ended overdue tasks: \(outcome)")
        XCTAssertTrue(recorded.value > 0 && recorded.value < jobCount, "the dispatcher and the sweepers both won submits: \(outcome)")
        XCTAssertTrue(sent.value > 0 && sent.value < sending.count, "the sender and the sweepers both won deliveries: \(outcome)")
    }
}

import XCTest
import Foundation
import PinGlassTesting
import Postgres
import PinGlass

/// `pinglass sweep`, the real binary, killed at `sweep.mid-run` (exit 137): what ran before
/// the crash is committed whole, the next run does the rest, and a third changes nothing:
/// one refund row per job, the audit clean. Alerts without an admin chat are only logged.
final class SweepCrashTests: DatabaseTestCase {
    var env: [String: String] = [:]

    override func setUpWithError() throws {
        try super.setUpWithError()
        env = ["PATH": "/usr/bin:/bin", "PINGLASS_ENV_FILE": "/dev/null", "DATABASE_URL": db.url, "LOG_FORMAT": "text"]
    }

    func pinglass(_ args: [String], crashAt point: String? = nil, extra: [String: String] = [:]) throws -> (Int32, String) {
        var e = env.merging(extra) { $1 }
        if let point { e["CRASHPOINT"] = point }
        let (status, out, err) = try Subprocess.capture(TestEnvironment.binDir() + "/pinglass", args, environment: e)
        return (status, out + err)
    }

    func testACrashMidRunLeavesEachStepWholeAndTheNextRunFinishes() throws {
        let c = try db.connect()
        try SweepFixtures.recordTerminalChanges(c)
        let deps = try PollFixtures.deps(db)
        // A submit whose dispatcher died; a job whose last task is long past its deadline; a
        // job that never started; a delivery and a refund whose workers died.
        let rescued = try JobFixtures.running(deps, telegramID: 9601, photos: 1)
        try SweepFixtures.submitting(c, taskID: rescued.tasks[0].id, leaseIn: -1)
        let overdue = try JobFixtures.running(deps, telegramID: 9602, photos: 2)
        try JobFixtures.settle(c, overdue, succeeded: 1, failed: 0)
        try c.execute("UPDATE generation_tasks SET deadline_at = now() - interval '1 hour' WHERE id = $1", [overdue.tasks[1].id])
        let neverStarted = try JobFixtures.queued(deps, telegramID: 9603, photos: 3, deadlineIn: -60)
        let delivery = try SweepFixtures.delivery(c, state: "sending", leaseIn: -1)
        let refund = try SweepFixtures.refund(c, paymentID: rescued.paymentID, state: "requested", leaseIn: -1, runIn: 600)
        // And a duty silent for ten minutes, for the alert.
        try c.execute("""
            INSERT INTO worker_runs (name, host, started_at, finished_at, ok)
            VALUES ('dispatch', 'vm1', now() - interval '10 minutes', now() - interval '10 minutes', true)
            """)

        func deliveryState() throws -> String { try c.query("SELECT state FROM telegram_deliveries WHERE id = $1", [delivery])[0].requiredString("state") }
        func refundLeased() throws -> Bool { try c.query("SELECT lease_token IS NOT NULL AS l FROM refunds WHERE id = $1", [refund])[0].bool("l")! }
        func jobStatus(_ id: Int) throws -> String { try c.query("SELECT status FROM generation_jobs WHERE id = $1", [id])[0].requiredString("status") }
        func refunds() throws -> [String] {
            try c.query("SELECT job_id || ':' || amount_kopecks AS r FROM refunds WHERE job_id IS NOT NULL ORDER BY job_id").map { $0.requiredString("r") }
        }
        let expectedRefunds = ["\(overdue.id):49900", "\(neverStarted.id):49900"]   // 1 of 2 and 0 of 3: below 70 %

        let (crashed, crashLog) = try pinglass(["sweep"], crashAt: "sweep.mid-run")
        XCTAssertEqual(crashed, 137, crashLog)
        // The steps before the crash point committed whole ...
        XCTAssertEqual(try c.query("SELECT state FROM generation_tasks WHERE id = $1", [rescued.tasks[0].id])[0].string("state"), "queued")
        XCTAssertEqual(try jobStatus(overdue.id), "failed", "1 of 2 is below 70 %")
        XCTAssertEqual(try jobStatus(neverStarted.id), "failed")
        XCTAssertEqual(try refunds(), expectedRefunds)
        // ... the ones after it did not run.
        XCTAssertEqual(try deliveryState(), "sending")
        XCTAssertTrue(try refundLeased())

        let (status, log) = try pinglass(["sweep"])
        XCTAssertEqual(status, 0, log)
        XCTAssertEqual(try deliveryState(), "pending")
        XCTAssertFalse(try refundLeased())
        XCTAssertEqual(try c.query("SELECT state FROM refunds WHERE id = $1", [refund])[0].string("state"), "requested")
        XCTAssertEqual(try refunds(), expectedRefunds, "the rerun finished nothing twice")
        XCTAssertEqual(try c.query("""
            SELECT string_agg(kind, ',' ORDER BY job_id, batch_no) AS k FROM telegram_deliveries WHERE job_id IS NOT NULL
            """)[0].string("k"), "message,message", "delivery rows once per job (the overdue job's one photo is withheld)")
        // No admin chat configured: the alert is logged, nothing is queued.
        XCTAssertTrue(log.contains("alert=worker-silent:dispatch"), log)
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM telegram_deliveries WHERE kind = 'alert'")[0].int("n"), 0)

        // With one configured, the alert goes to the delivery queue, once however many runs.
        for _ in 0..<2 {
            let (s, l) = try pinglass(["sweep"], extra: ["ADMIN_TELEGRAM_CHAT_ID": "-100777"])
            XCTAssertEqual(s, 0, l)
        }
        let alerts = try c.query("SELECT chat_id, payload->>'key' AS key FROM telegram_deliveries WHERE kind = 'alert'")
        XCTAssertTrue((1...2).contains(alerts.count), "once per hour: \(alerts.count)")   // two only across an hour boundary
        XCTAssertEqual(alerts.first?.int("chat_id"), -100777)
        XCTAssertEqual(alerts.first?.string("key"), "worker-silent:dispatch")

        XCTAssertEqual(try refunds(), expectedRefunds)
        XCTAssertEqual(try SweepFixtures.terminalChanges(c), [])
        let (audit, auditLog) = try pinglass(["audit"])
        XCTAssertEqual(audit, 0, auditLog)
        // The heartbeat of each run that got to its end (not the crashed one).
        XCTAssertEqual(try c.query("SELECT ok FROM worker_runs WHERE name = 'sweep'")[0].bool("ok"), true)
    }

    /// The commands explain themselves, show durations as an operator types them, and refuse
    /// a bad setting by its flag before reading any configuration (exit 64).
    func testSweepAndPruneHelpAndRefusedSettings() throws {
        let (s1, sweepHelpText) = try pinglass(["sweep", "--help"])
        XCTAssertEqual(s1, 0)
        // Help is wrapped to the terminal's width: compare with the line breaks as spaces.
        let sweepHelp = sweepHelpText.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        for text in ["Cron: * * * * * pinglass sweep", "--deadline-grace <duration>", "(default: 5m)", "--5xx-alert", "ADMIN_TELEGRAM_CHAT_ID"] {
            XCTAssertTrue(sweepHelp.contains(text), text)
        }
        let (s2, pruneHelp) = try pinglass(["prune", "--help"])
        XCTAssertEqual(s2, 0)
        for text in ["(default: 30d)", "(default: 90d)", "(default: 1h)", "pinglass prune --for 10m", "admin_audit"] {
            XCTAssertTrue(pruneHelp.contains(text), text)
        }
        XCTAssertFalse((sweepHelp + pruneHelp).contains("Duration("))
        let (s3, refused) = try pinglass(["sweep", "--deadline-grace", "30s"], extra: ["DATABASE_URL": ""])
        XCTAssertEqual(s3, 64, refused)
        XCTAssertTrue(refused.contains("--deadline-grace must be between 120s and 3600s (got 30)"), refused)
        let (s4, refused2) = try pinglass(["prune", "--deliveries", "3d"], extra: ["DATABASE_URL": ""])
        XCTAssertEqual(s4, 64, refused2)
        XCTAssertTrue(refused2.contains("--deliveries must be between 7d and 3650d (got 3)"), refused2)
    }
}

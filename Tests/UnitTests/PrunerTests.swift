import Foundation
import PinGlassTesting
import Postgres
import XCTest
import PinGlassConfig
@testable import PinGlass

/// `pinglass prune`: exactly the rows past each kind's retention go, in bounded batches;
/// money, generation and audit rows stay forever; nothing kept references a pruned row.
final class PrunerTests: PipelineTestCase {
    func prune(_ config: Pruner.Config = .init()) throws -> Pruner.Report {
        try Pruner(deps: deps, config: config).runOnce(now: deps.clock(), deadline: deps.clock() + 55)
    }
    func count(_ sql: String) throws -> Int { try c.query(sql)[0].requiredInt("n") }
    func ids(_ sql: String) throws -> [Int] { try c.query(sql).map { $0.requiredInt("id") } }

    /// A delivery row of `ageDays` in `state`.
    @discardableResult
    func delivery(_ state: String, ageDays: Double, kind: String = "message") throws -> Int {
        let id = try SweepFixtures.delivery(c, state: state, leaseIn: nil)
        try c.execute("UPDATE telegram_deliveries SET kind = $2, created_at = now() - make_interval(secs => $3::float8 * 86400) WHERE id = $1",
                      [id, kind, ageDays])
        return id
    }

    func webhookLog(paymentID: Int, ageDays: Double) throws -> Int {
        try c.query("""
            INSERT INTO webhook_logs (source, payment_id, event_type, payload, outcome, received_at)
            VALUES ('tbank', $1, 'CONFIRMED', '{"Status":"CONFIRMED"}', 'applied', now() - make_interval(secs => $2::float8 * 86400))
            RETURNING id
            """, [paymentID, ageDays])[0].requiredInt("id")
    }

    func testEachKindGoesPastItsRetentionAndTheKeptForeverTablesStay() throws {
        // An old finished job: its photos were delivered 40 days ago, its refund paid.
        let old = try JobFixtures.running(deps, telegramID: 7501, photos: 7)
        try JobFixtures.settle(c, old, succeeded: 5, failed: 2)
        _ = try JobFinish.finish(c, jobID: old.id)
        try c.execute("""
            UPDATE telegram_deliveries SET state = 'sent', sent_at = now() - interval '40 days', created_at = now() - interval '40 days'
            WHERE job_id = $1
            """, [old.id])
        try c.execute("UPDATE generation_jobs SET finished_at = now() - interval '40 days', created_at = now() - interval '40 days' WHERE id = $1", [old.id])
        // Paid back long ago, as `pinglass refund` records it (requested, then succeeded with the
        // bank's amounts, and the money on the payment).
        try c.execute("UPDATE refunds SET state = 'requested' WHERE job_id = $1", [old.id])
        try c.execute("""
            UPDATE refunds r SET state = 'succeeded', finished_at = now() - interval '400 days', created_at = now() - interval '400 days',
                   bank_original_kopecks = p.amount_kopecks, bank_remaining_kopecks = p.amount_kopecks - r.amount_kopecks
            FROM payments p WHERE p.id = r.payment_id AND r.job_id = $1
            """, [old.id])
        try c.execute("""
            UPDATE payments p SET refunded_kopecks = r.amount_kopecks, status = 'partially_refunded'
            FROM refunds r WHERE r.payment_id = p.id AND r.job_id = $1
            """, [old.id])
        let oldJobDeliveries = try ids("SELECT id FROM telegram_deliveries ORDER BY id")
        XCTAssertEqual(oldJobDeliveries.count, 2)

        let goneDeliveries = [try delivery("sent", ageDays: 31), try delivery("failed", ageDays: 31),
                              try delivery("sent", ageDays: 31, kind: "alert")]
        let keptDeliveries = [try delivery("sent", ageDays: 29), try delivery("failed", ageDays: 29),
                              try delivery("pending", ageDays: 31), try delivery("sending", ageDays: 31)]

        let goneLogs = [try webhookLog(paymentID: old.paymentID, ageDays: 91), try webhookLog(paymentID: old.paymentID, ageDays: 365)]
        let keptLogs = [try webhookLog(paymentID: old.paymentID, ageDays: 89)]

        try c.execute("INSERT INTO rate_events (name, at) VALUES ('kie.create', now() - interval '2 hours'), ('kie.retired', now() - interval '3 days')")
        try c.execute("INSERT INTO rate_events (name, at) VALUES ('kie.create', now() - interval '10 seconds')")

        let admin = try c.query("INSERT INTO admin_users (login, password_hash, role) VALUES ('ops', 'x', 'admin') RETURNING id")[0].requiredInt("id")
        try c.execute("""
            INSERT INTO admin_sessions (token_hash, admin_id, csrf_token, expires_at) VALUES
                ('\\x01', $1, 'c1', now() - interval '1 second'), ('\\x02', $1, 'c2', now() + interval '1 hour')
            """, [admin])
        try c.execute("INSERT INTO admin_audit (actor, action, created_at) VALUES ('ops', 'refund', now() - interval '10 years')")
        try c.execute("""
            INSERT INTO admin_login_failures (login, address, at) VALUES
                ('ops', '10.0.0.1', now() - interval '2 days'), ('ops', '10.0.0.2', now() - interval '1 minute')
            """)

        // Host "gone": nothing for 8 days. Host "alive": one duty stopped 8 days ago, another ran now.
        try c.execute("""
            INSERT INTO worker_runs (name, host, started_at, finished_at, ok) VALUES
                ('dispatch', 'gone', now() - interval '8 days', now() - interval '8 days', true),
                ('poll-kie', 'gone', now() - interval '9 days', NULL, NULL),
                ('reconcile', 'alive', now() - interval '8 days', now() - interval '8 days', true),
                ('dispatch', 'alive', now() - interval '1 minute', now(), true)
            """)
        try c.execute("""
            INSERT INTO http_5xx_minutes (minute, answers) VALUES
                (date_trunc('minute', now()) - interval '8 days', 5), (date_trunc('minute', now()) - interval '1 hour', 2)
            """)

        let forever = ["payments", "refunds", "generation_jobs", "generation_tasks", "generated_photos", "users", "avatars",
                       "reference_photos", "admin_audit", "admin_users", "counters"]
        let before = try forever.map { try count("SELECT count(*)::int AS n FROM \($0)") }

        let report = try prune()
        var expected = Pruner.Report()
        expected.deliveries = 5
        expected.webhookLogs = 2
        expected.rateEvents = 2
        expected.adminSessions = 1
        expected.loginFailures = 1
        expected.workerRuns = 2
        expected.serverErrorMinutes = 1
        XCTAssertEqual(report, expected)

        let deliveries = Set(try ids("SELECT id FROM telegram_deliveries"))
        XCTAssertEqual(deliveries, Set(keptDeliveries))
        XCTAssertTrue(deliveries.isDisjoint(with: goneDeliveries + oldJobDeliveries))
        XCTAssertEqual(Set(try ids("SELECT id FROM webhook_logs")), Set(keptLogs))
        XCTAssertTrue(Set(try ids("SELECT id FROM webhook_logs")).isDisjoint(with: goneLogs))
        XCTAssertEqual(try c.query("SELECT name FROM rate_events").map { $0.string("name") }, ["kie.create"])
        XCTAssertEqual(try c.query("SELECT csrf_token FROM admin_sessions").map { $0.string("csrf_token") }, ["c2"])
        XCTAssertEqual(try c.query("SELECT address FROM admin_login_failures").map { $0.string("address") }, ["10.0.0.2"])
        XCTAssertEqual(try c.query("SELECT name || '@' || host AS r FROM worker_runs ORDER BY r").map { $0.string("r") },
                       ["dispatch@alive", "reconcile@alive"], "a live host keeps all its rows")
        XCTAssertEqual(try count("SELECT sum(answers)::int AS n FROM http_5xx_minutes"), 2)
        XCTAssertEqual(try forever.map { try count("SELECT count(*)::int AS n FROM \($0)") }, before, "kept forever")
        XCTAssertEqual(try InvariantAudit.run(c), [], "pruned delivery rows of old jobs break no rule")

        XCTAssertEqual(try prune(), Pruner.Report(), "a second run finds nothing")
    }

    /// A backlog goes in bounded batches: a pass whose deadline comes after one statement
    /// has deleted exactly one batch, and says it stopped; the next pass continues.
    func testDeletesInBatchesAndContinuesNextRun() throws {
        let payment = try JobFixtures.running(deps, telegramID: 7601, photos: 1).paymentID
        try c.execute("""
            INSERT INTO webhook_logs (source, payment_id, event_type, payload, outcome, received_at)
            SELECT 'tbank', $1, 'CONFIRMED', '{}', 'applied', now() - interval '100 days' FROM generate_series(1, 250)
            """, [payment])
        var config = Pruner.Config()
        config.batchSize = 100
        // The clock reaches the deadline right after the first statement.
        var reads = 0
        deps.clock.now = { reads += 1; return reads <= 1 ? 0 : 10 }
        let first = try Pruner(deps: deps, config: config).runOnce(now: 0, deadline: 5)
        XCTAssertEqual(first.deliveries, 0)
        XCTAssertEqual(first.webhookLogs, 0)
        XCTAssertTrue(first.stoppedAtDeadline)

        reads = 0
        deps.clock.now = { reads += 1; return reads <= 2 ? 0 : 10 }   // the deliveries' statement, then one batch of logs
        let second = try Pruner(deps: deps, config: config).runOnce(now: 0, deadline: 5)
        XCTAssertEqual(second.webhookLogs, 100, "one batch")
        XCTAssertTrue(second.stoppedAtDeadline)
        XCTAssertEqual(try count("SELECT count(*)::int AS n FROM webhook_logs"), 150)

        deps.clock.now = { 0 }
        let rest = try Pruner(deps: deps, config: config).runOnce(now: 0, deadline: 5)
        XCTAssertEqual(rest.webhookLogs, 150, "two more batches: 100 and 50")
        XCTAssertFalse(rest.stoppedAtDeadline)
        XCTAssertEqual(try count("SELECT count(*)::int AS n FROM webhook_logs"), 0)
    }

    func testRetentionsAreSettingsWithFloors() throws {
        var config = Pruner.Config()
        config.deliverySeconds = 6 * 86_400
        XCTAssertThrowsError(try Pruner(deps: deps, config: config)) { XCTAssertTrue("\($0)".contains("--deliveries"), "\($0)") }
        config = Pruner.Config()
        config.rateEventSeconds = 10
        XCTAssertThrowsError(try config.validate()) { XCTAssertTrue("\($0)".contains("--rate-events"), "\($0)") }

        // The orphan grace outlasts the longest task deadline (a running task re-stores
        // its result until then): 24 h is refused, 25 h accepted, 48 h the default.
        config = Pruner.Config()
        config.orphanGraceSeconds = 24 * 3600
        XCTAssertThrowsError(try config.validate()) { XCTAssertTrue("\($0)".contains("--orphan-grace"), "\($0)") }
        config.orphanGraceSeconds = GenerationPolicy.longestTaskDeadlineSeconds
        XCTAssertThrowsError(try config.validate())
        config.orphanGraceSeconds = 25 * 3600
        XCTAssertNoThrow(try config.validate())
        XCTAssertEqual(Pruner.Config().orphanGraceSeconds, 48 * 3600)
        var poll = KiePoller.Config()
        poll.generation.taskDeadlineSeconds = GenerationPolicy.longestTaskDeadlineSeconds + 1
        XCTAssertThrowsError(try poll.validate())

        let young = try delivery("sent", ageDays: 11)
        let kept = try delivery("sent", ageDays: 9)
        config = Pruner.Config()
        config.deliverySeconds = 10 * 86_400
        XCTAssertEqual(try prune(config).deliveries, 1)
        XCTAssertEqual(try ids("SELECT id FROM telegram_deliveries"), [kept])
        XCTAssertNotEqual(young, kept)
    }

    /// Every pruned table is a leaf of the foreign-key graph: no row anywhere can point at a
    /// row the prune deletes, except through `ON DELETE SET NULL` (a photo's `delivery_id`: the
    /// photo stays and forgets its old delivery row). A new reference to one of them makes this fail, and the prune
    /// must be thought through again.
    func testNothingReferencesAPrunedTable() throws {
        let references = try c.query("""
            SELECT conrelid::regclass::text || ' -> ' || confrelid::regclass::text AS fk
            FROM pg_constraint WHERE contype = 'f' AND confrelid::regclass::text = ANY($1::text[])
              AND confdeltype <> 'n'   -- ON DELETE SET NULL: the referencing row forgets, and stays
            """, [Pruner.prunedTables]).map { $0.requiredString("fk") }
        XCTAssertEqual(references, [])
        // And the tables exist under those names (a rename would make the check above vacuous).
        XCTAssertEqual(try count("SELECT count(*)::int AS n FROM pg_class WHERE relkind = 'r' AND relname = ANY('{\(Pruner.prunedTables.joined(separator: ","))}'::text[])"),
                       Pruner.prunedTables.count)
    }
}

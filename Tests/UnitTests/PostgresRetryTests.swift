import XCTest
import Foundation
import Postgres
import PinGlassTesting

/// What happens when the session dies: before a statement is sent (re-opened, sent once),
/// while it runs (sent again only when marked idempotent), inside a transaction (the whole
/// transaction once more) and during COMMIT (outcome unknown, never retried). Side effects
/// are counted with a sequence, which a rolled-back or killed statement does not undo.
final class PostgresRetryTests: DatabaseTestCase {
    override var migrated: Bool { false }

    func testStatementAfterTheBackendDiedWhileIdleIsSentOnceOnANewSession() throws {
        let c = try db.connect()
        try c.execute("CREATE TABLE effects (n serial)")
        let pid = try backendPID(c)
        try terminate(pid)
        XCTAssertEqual(try c.execute("INSERT INTO effects DEFAULT VALUES"), 1)     // not idempotent, and fine
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM effects")[0].int("n"), 1)
        XCTAssertNotEqual(try backendPID(c), pid)
    }

    func testUnmarkedStatementWhoseAnswerIsLostIsNotSentAgain() throws {
        let c = try db.connect()
        try c.execute("CREATE SEQUENCE effects")
        let killer = try terminateWhenSleeping(try backendPID(c))
        XCTAssertThrowsError(try c.query("SELECT pg_sleep(CASE WHEN nextval('effects') = 1 THEN 30 ELSE 0 END)")) { error in
            guard case .connectionLost = error as? PostgresError else { return XCTFail("\(error)") }
        }
        killer.wait()
        XCTAssertEqual(try c.query("SELECT last_value FROM effects", retry: .idempotent)[0].int("last_value"), 1)
    }

    func testIdempotentStatementWhoseAnswerIsLostIsSentOnceMore() throws {
        let c = try db.connect()
        try c.execute("CREATE SEQUENCE effects")
        let pid = try backendPID(c)
        let killer = try terminateWhenSleeping(pid)
        let r = try c.query("SELECT pg_sleep(CASE WHEN nextval('effects') = 1 THEN 30 ELSE 0 END), currval('effects') AS n",
                            retry: .idempotent)
        killer.wait()
        XCTAssertEqual(r[0].int("n"), 2, "sent twice: once killed, once on the new session")
        XCTAssertNotEqual(try backendPID(c), pid)
    }

    func testTransactionLostBeforeCommitRunsOnceMoreThenGivesUp() throws {
        let c = try db.connect()
        try c.execute("CREATE TABLE t (n int)")
        var runs = 0
        try c.withTransaction { tx in
            runs += 1
            try tx.execute("INSERT INTO t VALUES ($1)", [runs])
            if runs == 1 { try terminate(try backendPID(tx)) }
            try tx.execute("INSERT INTO t VALUES (100)")
        }
        XCTAssertEqual(runs, 2)
        XCTAssertEqual(try c.query("SELECT array_agg(n ORDER BY n)::text AS ns FROM t")[0].string("ns"), "{2,100}")

        runs = 0
        XCTAssertThrowsError(try c.withTransaction { tx in
            runs += 1
            try terminate(try backendPID(tx))
            try tx.execute("INSERT INTO t VALUES (200)")
        }) { error in
            guard case .connectionLost = error as? PostgresError else { return XCTFail("\(error)") }
        }
        XCTAssertEqual(runs, 2)
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM t WHERE n = 200")[0].int("n"), 0)
    }

    func testConnectionLostDuringCommitIsOutcomeUnknownAndNotRetried() throws {
        let c = try db.connect()
        // A deferred trigger makes COMMIT itself slow enough to be killed in flight.
        try c.executeScript("""
            CREATE TABLE slow (n int);
            CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN PERFORM pg_sleep(30); RETURN NULL; END $$;
            CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON slow DEFERRABLE INITIALLY DEFERRED
                FOR EACH ROW EXECUTE FUNCTION slow_commit();
            """)
        let killer = try terminateWhenSleeping(try backendPID(c))
        var runs = 0
        XCTAssertThrowsError(try c.withTransaction { tx in
            runs += 1
            try tx.execute("INSERT INTO slow VALUES (1)")
        }) { error in
            guard case .commitOutcomeUnknown = error as? PostgresError else { return XCTFail("\(error)") }
            XCTAssertTrue((error as! PostgresError).isUnavailable)
        }
        killer.wait()
        XCTAssertEqual(runs, 1)
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM slow")[0].int("n"), 0)
        XCTAssertTrue(c.isIdle)
    }

    // MARK: - Helpers

    func backendPID(_ db: some Queryable) throws -> Int {
        try db.query("SELECT pg_backend_pid() AS pid")[0].requiredInt("pid")
    }

    /// Terminates backend `pid` and waits until it is gone.
    func terminate(_ pid: Int) throws {
        let admin = try Connection(TestEnvironment.adminURL())
        try admin.query("SELECT pg_terminate_backend($1)", [pid])
        try Subprocess.waitUntil("backend \(pid) gone") {
            try admin.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", [pid]).isEmpty
        }
    }

    /// From another thread: terminates backend `pid` as soon as it sleeps in `pg_sleep`.
    func terminateWhenSleeping(_ pid: Int) throws -> Killer {
        let url = try TestEnvironment.adminURL()
        let done = DispatchSemaphore(value: 0)
        Thread {
            defer { done.signal() }
            guard let admin = try? Connection(url) else { return }
            let deadline = Date().addingTimeInterval(20)
            while Date() < deadline {
                let sleeping = (try? admin.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event = 'PgSleep'",
                                                 [pid]).isEmpty == false) ?? false
                if sleeping { _ = try? admin.query("SELECT pg_terminate_backend($1)", [pid]); return }
                usleep(10_000)
            }
        }.start()
        return Killer(done: done)
    }

    struct Killer {
        let done: DispatchSemaphore
        func wait() { done.wait() }
    }
}

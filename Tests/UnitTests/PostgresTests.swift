import XCTest
import Postgres
import PinGlassTesting
@testable import PinGlass

final class PostgresTests: DatabaseTestCase {
    override var migrated: Bool { false }

    func testParametersRowsAndNulls() throws {
        let c = try db.connect()
        let r = try c.query("SELECT $1::int + 1 AS n, $2::text AS t, $3::text AS missing, $4::bool AS b, $5::bytea AS raw",
                            [41, "it's \"quoted\"", nil as String?, true, Bytea([0, 255, 16])])
        XCTAssertEqual(r.count, 1)
        XCTAssertEqual(r[0].int("n"), 42)
        XCTAssertEqual(r[0].string("t"), "it's \"quoted\"")
        XCTAssertNil(r[0].string("missing"))
        XCTAssertTrue(r[0].isNull("missing"))
        XCTAssertEqual(r[0].bool("b"), true)
        XCTAssertNil(r[0].bool("t"), "text that is not a boolean is not false")
        XCTAssertEqual(r[0].string("raw"), "\\x00ff10")
        XCTAssertEqual(try c.query("SELECT 'x' = ANY($1::text[]) AS hit", [["a", "x", "q\"uo,te"]])[0].bool("hit"), true)
    }

    func testSQLStateMapping() throws {
        let c = try db.connect()
        try c.execute("CREATE TABLE t (k text PRIMARY KEY)")
        try c.execute("INSERT INTO t VALUES ($1)", ["a"])
        XCTAssertThrowsError(try c.execute("INSERT INTO t VALUES ($1)", ["a"])) { error in
            guard case .uniqueViolation(let constraint, _) = error as? PostgresError else { return XCTFail("\(error)") }
            XCTAssertEqual(constraint, "t_pkey")
        }
        XCTAssertThrowsError(try c.query("SELECT * FROM nowhere")) { error in
            XCTAssertEqual((error as? PostgresError).map { if case .server(let s, _) = $0 { return s } else { return "" } }, "42P01")
        }
        XCTAssertThrowsError(try Connection("host=/nonexistent-dir port=1 dbname=x connect_timeout=1")) { error in
            guard case .connectionFailed = error as? PostgresError else { return XCTFail("\(error)") }
            XCTAssertTrue((error as! PostgresError).isUnavailable)
        }
    }

    func testTransactionCommitsOrRollsBackAndLeavesIdle() throws {
        let c = try db.connect()
        try c.execute("CREATE TABLE t (n int)")
        try c.withTransaction { tx in try tx.execute("INSERT INTO t VALUES (1)") }
        struct Boom: Error {}
        XCTAssertThrowsError(try c.withTransaction { (tx: Transaction) -> Void in
            try tx.execute("INSERT INTO t VALUES (2)")
            throw Boom()
        })
        XCTAssertTrue(c.isIdle)
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM t")[0].int("n"), 1)
        try c.execute("BEGIN")
        XCTAssertFalse(c.isIdle)
        c.resetToIdle()
        XCTAssertTrue(c.isIdle)
    }

    func testAffectedRowCountForGuardedUpdates() throws {
        let c = try db.connect()
        try c.execute("CREATE TABLE p (id int, status text)")
        try c.execute("INSERT INTO p VALUES (1, 'new'), (2, 'pending')")
        XCTAssertEqual(try c.execute("UPDATE p SET status = 'succeeded' WHERE id = $1 AND status = ANY($2)", [2, ["new", "pending"]]), 1)
        XCTAssertEqual(try c.execute("UPDATE p SET status = 'succeeded' WHERE id = $1 AND status = ANY($2)", [2, ["new", "pending"]]), 0)
    }

    func testAParameterWithANulCharacterIsRefusedNotCut() throws {
        let c = try db.connect()
        XCTAssertThrowsError(try c.query("SELECT $1::int AS n, $2::text AS t", [1, "a\u{0}b"])) { error in
            XCTAssertEqual(error as? PostgresError,
                           .invalidParameter(index: 2, reason: "contains a NUL character, which PostgreSQL text cannot hold"))
        }
        XCTAssertThrowsError(try c.query("SELECT $1::text[] AS a", [["ok", "x\u{0}"]])) { error in
            guard case .invalidParameter(1, _) = error as? PostgresError else { return XCTFail("\(error)") }
        }
        XCTAssertEqual(try c.query("SELECT $1::text AS t", ["a b"])[0].string("t"), "a b")
    }

    func testReconnectsAfterTheBackendIsTerminated() throws {
        let c = try db.connect()
        let pid = try c.query("SELECT pg_backend_pid() AS pid")[0].requiredInt("pid")
        let admin = try Connection(TestEnvironment.adminURL())
        try admin.query("SELECT pg_terminate_backend($1)", [pid])
        // The next statement finds the connection gone, resets it once and succeeds.
        XCTAssertEqual(try c.query("SELECT 7 AS n")[0].int("n"), 7)
        XCTAssertNotEqual(try c.query("SELECT pg_backend_pid() AS pid")[0].int("pid"), pid)
    }
}

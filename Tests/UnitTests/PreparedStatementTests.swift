import XCTest
import Postgres
import PinGlassTesting

/// The per-session statement cache: plans invalidated under a live session, statements the
/// server forgot, and the size limit. Every name is used once per session, so no two SQL
/// texts ever share a server statement.
final class PreparedStatementTests: DatabaseTestCase {
    override var migrated: Bool { false }

    func testChangedResultTypeOutsideATransactionIsPreparedAgainAndRunOnce() throws {
        let c = try db.connect(), other = try db.connect()
        try c.execute("CREATE TABLE pc (id int PRIMARY KEY, v int)")
        try c.execute("CREATE SEQUENCE runs")
        try c.execute("INSERT INTO pc VALUES (1, 10)")
        let sql = "SELECT v, nextval('runs') AS run FROM pc WHERE id = $1"
        XCTAssertEqual(try c.query(sql, [1])[0].int("run"), 1)
        try other.execute("ALTER TABLE pc ALTER COLUMN v TYPE text USING v::text || '!'")
        // 0A000 is raised at Bind, before execution: prepared afresh and sent once more.
        let r = try c.query(sql, [1])
        XCTAssertEqual(r[0].string("v"), "10!")
        XCTAssertEqual(r[0].int("run"), 2, "the rejected attempt did not run")
        XCTAssertEqual(try statementTexts(c).filter { $0 == sql }.count, 1)
    }

    func testChangedResultTypeInATransactionThrowsAndLaterStatementsKeepWorking() throws {
        let c = try db.connect(), other = try db.connect()
        try c.execute("CREATE TABLE pc (id int PRIMARY KEY, v int)")
        try c.execute("INSERT INTO pc VALUES (1, 10)")
        let sql = "SELECT v FROM pc WHERE id = $1"
        try c.query(sql, [1])
        XCTAssertEqual(try c.query("SELECT 'a' AS which")[0].string("which"), "a")
        try other.execute("ALTER TABLE pc ALTER COLUMN v TYPE text")
        XCTAssertThrowsError(try c.withTransaction { tx in try tx.query(sql, [1]) }) { error in
            guard case .server("0A000", _) = error as? PostgresError else { return XCTFail("\(error)") }
        }
        XCTAssertTrue(c.isIdle)
        // Old code named the next statement after the cache size: a name still in use (42P05).
        XCTAssertEqual(try c.query(sql, [1])[0].string("v"), "10")
        XCTAssertEqual(try c.query("SELECT 'b' AS which")[0].string("which"), "b")
        XCTAssertEqual(try c.query("SELECT 'a' AS which")[0].string("which"), "a")
        XCTAssertEqual(try c.query("SELECT 'c' AS which")[0].string("which"), "c")
        let texts = try statementTexts(c)
        XCTAssertEqual(Set(texts).count, texts.count, "one server statement per text: \(texts)")
        XCTAssertEqual(texts.filter { $0 == sql }.count, 1, "the invalidated statement was deallocated")
    }

    func testStatementsTheServerForgotArePreparedAgain() throws {
        let c = try db.connect()
        XCTAssertEqual(try c.query("SELECT 1 AS n")[0].int("n"), 1)
        XCTAssertEqual(try c.query("SELECT 2 AS n")[0].int("n"), 2)
        try c.executeScript("DEALLOCATE ALL")
        XCTAssertEqual(try c.query("SELECT 2 AS n")[0].int("n"), 2)
        XCTAssertEqual(try c.query("SELECT 3 AS n")[0].int("n"), 3)
        XCTAssertEqual(try c.query("SELECT 1 AS n")[0].int("n"), 1)
    }

    func testAtTheLimitTheLeastRecentlyUsedStatementMakesRoom() throws {
        let c = try db.connect()
        c.preparedStatementLimit = 2
        try c.query("SELECT 1 AS n")
        try c.query("SELECT 2 AS n")
        _ = try statementTexts(c)          // a third text: "SELECT 1" makes room
        let texts = try statementTexts(c)  // its DEALLOCATE went before this one
        XCTAssertEqual(Set(texts), ["SELECT 2 AS n", Self.listSQL])
        XCTAssertEqual(try c.query("SELECT 1 AS n")[0].int("n"), 1)
        XCTAssertEqual(Set(try statementTexts(c)), ["SELECT 1 AS n", Self.listSQL])
    }

    static let listSQL = "SELECT statement FROM pg_prepared_statements ORDER BY name"

    func statementTexts(_ c: Connection) throws -> [String] {
        try c.query(Self.listSQL).map { $0.requiredString("statement") }
    }
}

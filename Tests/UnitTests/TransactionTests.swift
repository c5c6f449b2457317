import XCTest
import Postgres
import PinGlassTesting

/// The `Transaction` value: the connection is out of reach while it is open, it is dead
/// once its block ends, and an error the body swallowed is never reported as a commit.
final class TransactionTests: DatabaseTestCase {
    override var migrated: Bool { false }

    func testTheConnectionRefusesStatementsAndTransactionsWhileOneIsOpen() throws {
        let c = try db.connect()
        try c.execute("CREATE TABLE t (n int)")
        XCTAssertThrowsError(try c.withTransaction { tx in
            try tx.execute("INSERT INTO t VALUES (1)")
            try c.execute("INSERT INTO t VALUES (2)")
        }) { error in
            guard case .misuse = error as? PostgresError else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try c.withTransaction { _ in try c.withTransaction { _ in } }) { error in
            guard case .misuse = error as? PostgresError else { return XCTFail("\(error)") }
        }
        XCTAssertTrue(c.isIdle)
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM t")[0].int("n"), 0)
    }

    /// A savepoint undoes only its own part when its body throws (the error comes back to
    /// the caller), and the transaction goes on and commits the rest.
    func testASavepointUndoesOnlyItsOwnPart() throws {
        let c = try db.connect()
        try c.execute("CREATE TABLE s (k text PRIMARY KEY)")
        let kept = try c.withTransaction { tx -> [String] in
            try tx.execute("INSERT INTO s VALUES ('before')")
            XCTAssertThrowsError(try tx.withSavepoint { sp in
                try sp.execute("INSERT INTO s VALUES ('undone')")
                try sp.execute("INSERT INTO s VALUES ('before')")
            }) { error in
                guard case .uniqueViolation = error as? PostgresError else { return XCTFail("\(error)") }
            }
            XCTAssertEqual(try tx.withSavepoint { sp in try sp.execute("INSERT INTO s VALUES ('inside')") }, 1)
            try tx.execute("INSERT INTO s VALUES ('after')")
            return try tx.query("SELECT k FROM s ORDER BY k").map { $0.requiredString("k") }
        }
        XCTAssertEqual(kept, ["after", "before", "inside"])
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM s")[0].int("n"), 3, "committed")
        XCTAssertEqual(c.serializationRetries, 0)
    }

    func testATransactionUsedAfterItsBlockFails() throws {
        let c = try db.connect()
        let escaped = try c.withTransaction { tx in tx }
        XCTAssertThrowsError(try escaped.query("SELECT 1")) { error in
            guard case .misuse = error as? PostgresError else { return XCTFail("\(error)") }
        }
        XCTAssertEqual(try c.query("SELECT 1 AS n")[0].int("n"), 1)
    }

    func testAnErrorCaughtInsideAbortsTheTransactionAndIsNotReportedAsCommitted() throws {
        let c = try db.connect()
        try c.execute("CREATE TABLE u (k text PRIMARY KEY)")
        XCTAssertThrowsError(try c.withTransaction { tx -> Int in
            try tx.execute("INSERT INTO u VALUES ('a')")
            do { try tx.execute("INSERT INTO u VALUES ('a')") } catch PostgresError.uniqueViolation {}
            return 1
        }) { error in
            guard case .server("25P02", _) = error as? PostgresError else { return XCTFail("\(error)") }
        }
        XCTAssertTrue(c.isIdle)
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM u")[0].int("n"), 0)
        // The right way: the statement absorbs the duplicate, the transaction goes on.
        let inserted = try c.withTransaction { tx in
            try tx.execute("INSERT INTO u VALUES ('a') ON CONFLICT DO NOTHING")
                + tx.execute("INSERT INTO u VALUES ('a') ON CONFLICT DO NOTHING")
        }
        XCTAssertEqual(inserted, 1)
    }

    func testSerializationFailuresRetryTheWholeTransaction() throws {
        let c = try db.connect()
        try c.execute("CREATE TABLE t (n int)")
        var runs = 0
        try c.withTransaction(isolation: "SERIALIZABLE") { tx in
            runs += 1
            try tx.execute("INSERT INTO t VALUES ($1)", [runs])
            if runs < 3 { throw PostgresError.serializationFailure("simulated") }
        }
        XCTAssertEqual(runs, 3)
        XCTAssertEqual(try c.query("SELECT array_agg(n)::text AS ns FROM t")[0].string("ns"), "{3}")
    }

    func testHelpersTakeEitherAConnectionOrATransaction() throws {
        let c = try db.connect()
        func answer(_ db: some Queryable) throws -> Int? { try db.query("SELECT 42 AS n", retry: .idempotent)[0].int("n") }
        XCTAssertEqual(try answer(c), 42)
        XCTAssertEqual(try c.withTransaction { tx in try answer(tx) }, 42)
    }
}

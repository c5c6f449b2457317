import Foundation
import XCTest
import Postgres
import PinGlassTesting
@testable import PinGlass

final class MigratorTests: DatabaseTestCase {
    override var migrated: Bool { false }

    func testAppliesEverythingOnEmptyDatabaseThenNothing() throws {
        let c = try db.connect()
        let m = Migrator(db: c, directory: try TestDatabase.migrationsDir())
        let files = try m.files()
        XCTAssertGreaterThanOrEqual(files.count, 2)
        XCTAssertEqual(try m.migrate(), files.map(\.name))
        XCTAssertEqual(try m.migrate(), [])
        XCTAssertTrue(try m.status().allSatisfy { if case .applied = $0.status { return true }; return false })
        XCTAssertEqual(Migrator.pendingCount(db: c, directory: try TestDatabase.migrationsDir()), 0)
        // The seeded catalogue.
        let tiers = try Catalogue.tiers(c).map { "\($0.id):\($0.photos):\($0.amount.kopecks)" }
        XCTAssertEqual(tiers, ["starter:7:49900", "standard:15:99900", "premium:23:149900"])
        let pinglass = try Catalogue.styles(c).first { $0.id == "pinglass" }
        XCTAssertGreaterThanOrEqual(pinglass?.prompts ?? 0, 23)
        XCTAssertEqual(try PaymentSettings.terminalMode(c), .test)
    }

    /// 0007: payments the old code took for paid on AUTHORIZED alone go back to `authorized`;
    /// confirmed or consumed ones stay `succeeded`.
    func testOldAuthorizedOnlyPaymentsAreDemoted() throws {
        let all = try FileManager.default.contentsOfDirectory(atPath: try TestDatabase.migrationsDir()).filter { $0.hasSuffix(".sql") }.sorted()
        let dir = try TestEnvironment.makeTempDir("migrations-0007")
        for f in all where f < "0007" {
            try FileManager.default.copyItem(atPath: try TestDatabase.migrationsDir() + "/" + f, toPath: dir + "/" + f)
        }
        let c = try db.connect()
        try Migrator(db: c, directory: dir).migrate()
        let user = try c.query("INSERT INTO users (telegram_user_id) VALUES (1) RETURNING id")[0].requiredInt("id")
        func payment(_ order: String, bankStatus: String) throws -> Int {
            try c.query("""
                INSERT INTO payments (user_id, order_id, terminal, terminal_key, tbank_payment_id, tier, photo_count, amount_kopecks,
                                      status, bank_status, redirect_due_at)
                VALUES ($1, $2, 'test', 'k', $2, 'starter', 7, 49900, 'succeeded', $3, now()) RETURNING id
                """, [user, order, bankStatus])[0].requiredInt("id")
        }
        let authorizedOnly = try payment("o1", bankStatus: "AUTHORIZED")
        let confirmed = try payment("o2", bankStatus: "CONFIRMED")
        let confirmedLate = try payment("o3", bankStatus: "AUTHORIZED")
        try c.execute("""
            INSERT INTO webhook_logs (source, payment_id, event_type, payload, outcome) VALUES ('tbank', $1, 'CONFIRMED', '{}', 'duplicate')
            """, [confirmedLate])
        for f in all where f >= "0007" {
            try FileManager.default.copyItem(atPath: try TestDatabase.migrationsDir() + "/" + f, toPath: dir + "/" + f)
        }
        try Migrator(db: c, directory: dir).migrate()
        let status = { (id: Int) in try c.query("SELECT status FROM payments WHERE id = $1", [id])[0].requiredString("status") }
        XCTAssertEqual(try status(authorizedOnly), "authorized")
        XCTAssertEqual(try status(confirmed), "succeeded")
        XCTAssertEqual(try status(confirmedLate), "succeeded")
    }

    func testRefusesWhenAnAppliedFileChanged() throws {
        let dir = try TestEnvironment.makeTempDir("migrations")
        try "CREATE TABLE a (n int);".write(toFile: dir + "/0001_a.sql", atomically: true, encoding: .utf8)
        let c = try db.connect()
        let m = Migrator(db: c, directory: dir)
        XCTAssertEqual(try m.migrate(), ["0001_a.sql"])
        try "CREATE TABLE a (n bigint);".write(toFile: dir + "/0001_a.sql", atomically: true, encoding: .utf8)
        try "CREATE TABLE b (n int);".write(toFile: dir + "/0002_b.sql", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try m.migrate()) { error in
            XCTAssertEqual(error as? Migrator.MigrationError, .changedAfterApply(["0001_a.sql"]))
        }
        XCTAssertEqual(try c.query("SELECT to_regclass('b') IS NULL AS absent")[0].bool("absent"), true)
        XCTAssertEqual(try m.status().map(\.status).first.map { if case .changed = $0 { return true }; return false }, true)
    }

    func testFailedMigrationRollsBackAndIsNotRecorded() throws {
        let dir = try TestEnvironment.makeTempDir("migrations")
        try "CREATE TABLE ok1 (n int);".write(toFile: dir + "/0001_ok.sql", atomically: true, encoding: .utf8)
        try "CREATE TABLE half (n int); SELECT broken syntax here;".write(toFile: dir + "/0002_bad.sql", atomically: true, encoding: .utf8)
        let c = try db.connect()
        XCTAssertThrowsError(try Migrator(db: c, directory: dir).migrate()) { error in
            guard case .failed(let file, _) = error as? Migrator.MigrationError else { return XCTFail("\(error)") }
            XCTAssertEqual(file, "0002_bad.sql")
        }
        XCTAssertEqual(try c.query("SELECT to_regclass('half') IS NULL AS absent")[0].bool("absent"), true)
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM schema_migrations")[0].int("n"), 1)
        XCTAssertTrue(c.isIdle)
    }

    func testBadFileNamesAreRefused() throws {
        let dir = try TestEnvironment.makeTempDir("migrations")
        try "SELECT 1;".write(toFile: dir + "/init.sql", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Migrator(db: try db.connect(), directory: dir).migrate()) { error in
            XCTAssertEqual(error as? Migrator.MigrationError, .badFileName("init.sql"))
        }
    }

    /// A file that cannot be read would be applied as an empty script and recorded as done:
    /// it must stop the run before anything is applied.
    func testUnreadableFileStopsEverythingAndIsNeverRecorded() throws {
        let dir = try TestEnvironment.makeTempDir("migrations")
        try "CREATE TABLE a (n int);".write(toFile: dir + "/0001_a.sql", atomically: true, encoding: .utf8)
        let c = try db.connect()
        let m = Migrator(db: c, directory: dir)
        XCTAssertEqual(try m.migrate(), ["0001_a.sql"])
        try "CREATE TABLE c (n int);".write(toFile: dir + "/0003_c.sql", atomically: true, encoding: .utf8)

        var unreadable: [(String, () throws -> Void)] = [
            ("0002_b.sql", { try FileManager.default.createDirectory(atPath: dir + "/0002_b.sql", withIntermediateDirectories: false) }),
            ("0002_b.sql", { try Data([0x53, 0x45, 0xff, 0xfe]).write(to: URL(fileURLWithPath: dir + "/0002_b.sql")) }),
        ]
        if getuid() != 0 {   // root reads a mode-000 file anyway
            unreadable.append(("0002_b.sql", {
                try "CREATE TABLE b (n int);".write(toFile: dir + "/0002_b.sql", atomically: true, encoding: .utf8)
                XCTAssertEqual(chmod(dir + "/0002_b.sql", 0), 0)
            }))
        }
        for (name, make) in unreadable {
            try? FileManager.default.removeItem(atPath: dir + "/" + name)
            try make()
            XCTAssertThrowsError(try m.migrate()) { error in
                XCTAssertEqual(error as? Migrator.MigrationError, .unreadableFile(name))
                XCTAssertTrue("\(error)".contains("migration file \(name) cannot be read"), "\(error)")
            }
            XCTAssertThrowsError(try m.status())
            XCTAssertEqual(try c.query("SELECT string_agg(version, ',' ORDER BY version) AS v FROM schema_migrations")[0].string("v"), "0001")
            XCTAssertEqual(try c.query("SELECT to_regclass('c') IS NULL AS absent")[0].bool("absent"), true)
        }
    }

    /// Schema constraints refuse what the code must never do, each with its own constraint.
    func testSchemaConstraintsHoldTheMoneyInvariants() throws {
        let c = try db.connect()
        try Migrator(db: c, directory: try TestDatabase.migrationsDir()).migrate()
        try c.execute("INSERT INTO users (telegram_user_id) VALUES (1)")
        let insert = """
            INSERT INTO payments (user_id, order_id, terminal, terminal_key, tier, photo_count, amount_kopecks,
                                  status, tbank_payment_id, refunded_kopecks, redirect_due_at)
            VALUES (1, $1, 'test', 'K', 'starter', 7, 49900, $2, $3, $4, now() + interval '1 day')
            """
        try c.execute(insert, ["o1", "succeeded", "p1", 0])

        /// The name of the payments CHECK constraint whose definition contains `fragment`
        /// (table-level checks are unnamed in the schema, so the server numbers them).
        func check(_ fragment: String) throws -> String {
            let rows = try c.query("""
                SELECT conname FROM pg_constraint
                WHERE conrelid = 'payments'::regclass AND contype = 'c' AND pg_get_constraintdef(oid) LIKE '%' || $1 || '%'
                """, [fragment])
            XCTAssertEqual(rows.count, 1, fragment)
            return try XCTUnwrap(rows.first?.string("conname"))
        }
        func assertUnique(_ params: [String?], _ constraint: String, line: UInt = #line) {
            XCTAssertThrowsError(try c.execute(insert, [params[0], params[1], params[2], 0]), line: line) { error in
                guard case .uniqueViolation(let name, _)? = error as? PostgresError else {
                    return XCTFail("expected 23505 on \(constraint), got \(error)", line: line)
                }
                XCTAssertEqual(name, constraint, line: line)
            }
        }
        func assertCheck(_ params: [String?], refunded: Int, _ constraint: String, line: UInt = #line) {
            XCTAssertThrowsError(try c.execute(insert, [params[0], params[1], params[2], refunded]), line: line) { error in
                guard case .server(sqlState: "23514", message: let message)? = error as? PostgresError else {
                    return XCTFail("expected 23514 on \(constraint), got \(error)", line: line)
                }
                XCTAssertTrue(message.contains("violates check constraint \"\(constraint)\""), message, line: line)
            }
        }

        assertUnique(["o1", "new", nil], "payments_order_id_key")
        assertUnique(["o2", "succeeded", "p1"], "payments_tbank_payment_id_key")
        assertCheck(["o3", "succeeded", "p3"], refunded: 50000, try check("refunded_kopecks <= amount_kopecks"))
        assertCheck(["o4", "paid", "p4"], refunded: 0, "payments_status_check")
        assertCheck(["o5", "succeeded", nil], refunded: 0, try check("tbank_payment_id IS NOT NULL"))
    }
}

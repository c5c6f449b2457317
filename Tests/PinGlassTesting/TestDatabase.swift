import Foundation
import PinGlass
import Postgres
import XCTest
import PinGlassConfig

/// A throwaway database per test, copied from a template that is migrated once per run.
///
/// ```swift
/// let db = try TestDatabase()          // fresh, migrated, seeded catalogue
/// defer { db.drop() }
/// let conn = try db.connect()
/// ```
public final class TestDatabase {
    public let name: String
    public let url: String
    nonisolated(unsafe) private static var templateReady = false
    /// One template per cluster, migrated by the first test process that needs it (under a
    /// run-wide lock) and cloned by every other: test processes running side by side
    /// (`swift test --parallel` starts one per test) never migrate twice.
    static let template = "pinglass_template"

    public init(migrated: Bool = true, auditOnDrop: Bool = true) throws {
        self.migrated = migrated
        self.auditOnDrop = auditOnDrop
        try TestEnvironment.holdClusterShared()
        if migrated { try Self.prepareTemplate() }
        name = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
        let admin = try Connection(TestEnvironment.adminURL())
        if migrated {
            try admin.execute("CREATE DATABASE \(name) TEMPLATE \(Self.template)")
        } else {
            try admin.execute("CREATE DATABASE \(name)")
        }
        url = try TestEnvironment.adminURL(database: name)
    }

    public func connect() throws -> Connection { try Connection(url) }

    /// Whether `drop()` first runs `pinglass audit`'s rules on this database and fails the
    /// running test on any violation (the audit is clean after every test). Only tests
    /// that plant broken states on purpose (the audit's and the schema guards' own tests) turn
    /// it off, and say why.
    public var auditOnDrop: Bool
    let migrated: Bool

    public func drop() {
        if auditOnDrop && migrated { auditBeforeDrop() }
        guard let admin = try? Connection(TestEnvironment.adminURL()) else { return }
        _ = try? admin.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
    }

    /// The audit, as `pinglass audit` runs it; a database that cannot be reached (a test that
    /// stopped PostgreSQL and left it so) is not audited.
    func auditBeforeDrop() {
        guard let c = try? connect() else { return }
        defer { c.close() }
        guard let violations = try? InvariantAudit.run(c), !violations.isEmpty else { return }
        XCTFail("pinglass audit after the test: " + violations.map { "\($0.rule): \($0.ids.prefix(10))" }.joined(separator: "; "))
    }

    public static func migrationsDir() throws -> String { try TestEnvironment.root() + "/migrations" }

    static func prepareTemplate() throws {
        if templateReady { return }
        try TestEnvironment.withRunLock("template") {
            let admin = try Connection(TestEnvironment.adminURL())
            defer { admin.close() }
            if try admin.query("SELECT 1 AS one FROM pg_database WHERE datname = $1", [template]).isEmpty {
                try admin.execute("CREATE DATABASE \(template)")
                do {
                    let db = try Connection(TestEnvironment.adminURL(database: template))
                    defer { db.close() }
                    try Migrator(db: db, directory: migrationsDir()).migrate()
                } catch {
                    _ = try? admin.execute("DROP DATABASE IF EXISTS \(template) WITH (FORCE)")
                    throw error
                }
            }
        }
        templateReady = true
    }

    /// A configuration for this database with test defaults; `extra` overrides variables.
    public func config(_ extra: [String: String] = [:]) throws -> Config {
        var vars = ["DATABASE_URL": url, "STORAGE_DIR": try TestEnvironment.tmp(), "LOG_FORMAT": "json"]
        vars.merge(extra) { $1 }
        return try Config(variables: vars)
    }
}

extension XCTestCase {
    /// The one way a test gets a database: a fresh one (migrated unless `migrated` is false,
    /// cloned from the run's template), dropped when the test ends, after `pinglass audit`'s
    /// rules found nothing broken in it (`auditOnDrop`; see `TestDatabase.auditOnDrop`).
    /// Teardown blocks run before `tearDown()`: a suite that also starts a stack stops it in a
    /// teardown block registered after this one, or in the test itself (`defer`).
    public func makeDatabase(migrated: Bool = true, auditOnDrop: Bool = true) throws -> TestDatabase {
        let db = try TestDatabase(migrated: migrated, auditOnDrop: auditOnDrop)
        addTeardownBlock { db.drop() }
        return db
    }
}

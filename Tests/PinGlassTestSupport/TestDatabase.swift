import Foundation
import PinGlass
import Postgres

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
    /// One template per test process: processes running side by side never drop each other's.
    static let template = "pinglass_template_\(getpid())"

    public init(migrated: Bool = true) throws {
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

    public func drop() {
        guard let admin = try? Connection(TestEnvironment.adminURL()) else { return }
        _ = try? admin.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
    }

    public static func migrationsDir() throws -> String { try TestEnvironment.root() + "/migrations" }

    static func prepareTemplate() throws {
        if templateReady { return }
        let admin = try Connection(TestEnvironment.adminURL())
        try admin.execute("DROP DATABASE IF EXISTS \(template) WITH (FORCE)")
        try admin.execute("CREATE DATABASE \(template)")
        let db = try Connection(TestEnvironment.adminURL(database: template))
        try Migrator(db: db, directory: migrationsDir()).migrate()
        db.close()
        templateReady = true
    }

    /// A configuration for this database with test defaults; `extra` overrides variables.
    public func config(_ extra: [String: String] = [:]) throws -> Config {
        var vars = ["DATABASE_URL": url, "STORAGE_DIR": try TestEnvironment.tmp(), "LOG_FORMAT": "json"]
        vars.merge(extra) { $1 }
        return try Config(variables: vars)
    }
}

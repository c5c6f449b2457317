import LibCrypto
import Platform

/// Applies `migrations/NNNN_name.sql` files in order, each in its own transaction, under a
/// PostgreSQL advisory lock (two concurrent runs are safe: the second waits, then finds
/// nothing to do). Applied files are recorded with their SHA-256; a changed applied file
/// stops everything until an operator looks.
///
/// ```swift
/// let m = Migrator(db: db, directory: "migrations")
/// let applied = try m.migrate()
/// ```
public struct Migrator {
    public struct Migration: Sendable, Equatable {
        public let version: String      // "0001"
        public let name: String         // "0001_schema.sql"
        public let sql: String
        public let checksum: String
    }

    public enum Status: Equatable, Sendable {
        case applied(at: String)
        case pending
        case changed(at: String)        // applied, but the file differs from what ran
        case missingFile                // recorded in the database, no file on disk
    }

    public enum MigrationError: Error, CustomStringConvertible, Equatable {
        case noDirectory(String)
        case badFileName(String)
        /// A file that cannot be read (permissions, a directory, not UTF-8): nothing is applied.
        case unreadableFile(String)
        case changedAfterApply([String])
        case failed(file: String, reason: String)

        public var description: String {
            switch self {
            case .noDirectory(let d): return "migrations directory \(d) not found (use --dir)"
            case .badFileName(let f): return "migration file \(f) must be named NNNN_description.sql"
            case .unreadableFile(let f): return "migration file \(f) cannot be read as UTF-8 text (check its permissions and that it is a regular file); nothing was applied"
            case .changedAfterApply(let files):
                return "applied migrations changed on disk: \(files.joined(separator: ", ")); restore them (never edit an applied migration, add a new one)"
            case .failed(let file, let reason): return "migration \(file) failed: \(reason)"
            }
        }
    }

    /// Advisory lock key ("pinglass migrate").
    static let lockKey = 7_346_121_001

    public let db: Connection
    public let directory: String

    public init(db: Connection, directory: String) {
        self.db = db
        self.directory = directory
    }

    public func files() throws -> [Migration] {
        guard let names = System.listDirectory(directory) else { throw MigrationError.noDirectory(directory) }
        return try names.filter { $0.hasSuffix(".sql") }.map { name in
            let prefix = name.prefix { $0.isNumber }
            guard prefix.count == 4, name.dropFirst(4).hasPrefix("_") else { throw MigrationError.badFileName(name) }
            // An unreadable file must stop everything: read as empty it would be recorded as applied.
            guard let bytes = System.readFile(directory + "/" + name), let sql = String(validating: bytes, as: UTF8.self) else {
                throw MigrationError.unreadableFile(name)
            }
            return Migration(version: String(prefix), name: name, sql: sql, checksum: Crypto.hex(Crypto.sha256(bytes)))
        }
    }

    private func ensureTable() throws {
        try db.execute("""
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    text PRIMARY KEY,
                name       text NOT NULL,
                checksum   text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """, retry: .idempotent)
    }

    private func applied() throws -> [String: (name: String, checksum: String, at: String)] {
        var out: [String: (String, String, String)] = [:]
        for row in try db.query("SELECT version, name, checksum, applied_at::text AS at FROM schema_migrations", retry: .idempotent) {
            out[row.requiredString("version")] = (row.requiredString("name"), row.requiredString("checksum"), row.requiredString("at"))
        }
        return out
    }

    /// Every file and every recorded version with its state, in version order.
    public func status() throws -> [(name: String, status: Status)] {
        let files = try self.files()
        let done: [String: (name: String, checksum: String, at: String)]
        do { done = try applied() } catch PostgresError.server(let state, _) where state == "42P01" { done = [:] }
        var out: [(String, Status)] = files.map { f in
            guard let a = done[f.version] else { return (f.name, .pending) }
            return (f.name, a.checksum == f.checksum ? .applied(at: a.at) : .changed(at: a.at))
        }
        let known = Set(files.map(\.version))
        for (v, a) in done where !known.contains(v) { out.append((a.name, .missingFile)) }
        return out.sorted { $0.0 < $1.0 }
    }

    /// Applies what is pending; returns the names applied (empty when up to date).
    @discardableResult
    public func migrate(progress: (String) -> Void = { _ in }) throws -> [String] {
        let files = try self.files()
        try db.execute("SELECT pg_advisory_lock($1)", [Self.lockKey], retry: .idempotent)
        defer { _ = try? db.execute("SELECT pg_advisory_unlock($1)", [Self.lockKey], retry: .idempotent) }
        try ensureTable()
        let done = try applied()
        let changed = files.filter { f in done[f.version].map { $0.checksum != f.checksum } ?? false }
        guard changed.isEmpty else { throw MigrationError.changedAfterApply(changed.map(\.name)) }
        var appliedNow: [String] = []
        for f in files where done[f.version] == nil {
            progress("applying \(f.name)")
            do {
                let ran: Bool = try db.withTransaction { tx in
                    // Held for the transaction as well: if the session (and its session lock)
                    // was lost and silently re-opened, another migrator still waits here, and
                    // a file it applied meanwhile is not applied twice.
                    try tx.execute("SELECT pg_advisory_xact_lock($1)", [Self.lockKey])
                    if try tx.query("SELECT 1 FROM schema_migrations WHERE version = $1", [f.version]).first != nil { return false }
                    try tx.executeScript(f.sql)
                    try tx.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                                   [f.version, f.name, f.checksum])
                    return true
                }
                if ran { appliedNow.append(f.name) }
            } catch {
                throw MigrationError.failed(file: f.name, reason: "\(error)")
            }
        }
        return appliedNow
    }

    /// Number of files not yet applied (for the health check), or nil when unknown.
    public static func pendingCount(db: Connection, directory: String) -> Int? {
        guard let s = try? Migrator(db: db, directory: directory).status() else { return nil }
        return s.filter { if case .pending = $0.status { return true }; return false }.count
    }
}

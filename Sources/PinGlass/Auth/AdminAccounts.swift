import JSON
import LibCrypto
import Postgres

/// Operator accounts (`admin_users`): a viewer sees every admin page and changes nothing, an
/// admin acts (docs/admin.md#roles). Passwords are kept only as `PasswordHash` strings. Every
/// change is written to the audit trail in the same transaction (docs/admin.md#audit).
///
/// ```swift
/// try AdminAccounts.create(db, login: "ops", role: .admin, password: pw, actor: "cli:root")
/// ```
public enum AdminAccounts {
    public enum Role: String, Sendable, CaseIterable { case admin, viewer }

    public struct Account: Sendable, Equatable {
        public let id: Int
        public let login: String
        public let role: Role
        public let disabled: Bool
        public let createdAt: String
        public let sessions: Int
    }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case invalidLogin(String)
        case weakPassword
        case exists(String)
        case unknown(String)

        public var description: String {
            switch self {
            case .invalidLogin(let l): return "'\(l)' is not a valid account name (3 to 64 of a-z A-Z 0-9 _ . @ -)"
            case .weakPassword: return "the password must have at least \(AdminAccounts.minimumPasswordLength) characters"
            case .exists(let l): return "an account named '\(l)' already exists"
            case .unknown(let l): return "no account named '\(l)'"
            }
        }
    }

    public static let minimumPasswordLength = 12

    static func check(login: String) throws {
        let ok = (3...64).contains(login.count) && login.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || "_.@-".unicodeScalars.contains($0)
        }
        guard ok else { throw Failure.invalidLogin(login) }
    }

    static func check(password: String) throws {
        guard password.count >= minimumPasswordLength else { throw Failure.weakPassword }
    }

    @discardableResult
    public static func create(_ db: Connection, login: String, role: Role, password: String, actor: String,
                              address: String? = nil, requestID: String? = nil) throws -> Int {
        try check(login: login)
        try check(password: password)
        let hash = PasswordHash.make(password)
        return try db.withTransaction { tx in
            guard let id = try tx.query("""
                INSERT INTO admin_users (login, password_hash, role) VALUES ($1, $2, $3)
                ON CONFLICT (login) DO NOTHING RETURNING id
                """, [login, hash, role.rawValue]).first?.requiredInt("id") else { throw Failure.exists(login) }
            try AdminAudit.record(tx, actor: actor, action: "admin.create-user", target: login, details: [:],
                                  after: ["role": .string(role.rawValue), "disabled": false], address: address, requestID: requestID)
            return id
        }
    }

    /// Sets a new password and ends every session of the account.
    public static func setPassword(_ db: Connection, login: String, password: String, actor: String,
                                   address: String? = nil, requestID: String? = nil) throws {
        try check(password: password)
        let hash = PasswordHash.make(password)
        try db.withTransaction { tx in
            guard let id = try tx.query("UPDATE admin_users SET password_hash = $2 WHERE login = $1 RETURNING id",
                                        [login, hash]).first?.requiredInt("id") else { throw Failure.unknown(login) }
            let ended = try tx.execute("DELETE FROM admin_sessions WHERE admin_id = $1", [id])
            try AdminAudit.record(tx, actor: actor, action: "admin.set-password", target: login,
                                  details: ["sessionsEnded": .int(ended)], address: address, requestID: requestID)
        }
    }

    /// Disables the account (its sessions end; it can no longer log in). Disabling twice is
    /// no change and writes nothing.
    @discardableResult
    public static func disable(_ db: Connection, login: String, actor: String,
                               address: String? = nil, requestID: String? = nil) throws -> Bool {
        try db.withTransaction { tx in
            guard let row = try tx.query("SELECT id, disabled FROM admin_users WHERE login = $1 FOR UPDATE", [login]).first else {
                throw Failure.unknown(login)
            }
            guard row.bool("disabled") == false else { return false }
            let id = row.requiredInt("id")
            _ = try tx.execute("UPDATE admin_users SET disabled = true WHERE id = $1 AND NOT disabled", [id])
            let ended = try tx.execute("DELETE FROM admin_sessions WHERE admin_id = $1", [id])
            try AdminAudit.record(tx, actor: actor, action: "admin.disable", target: login, details: ["sessionsEnded": .int(ended)],
                                  before: ["disabled": false], after: ["disabled": true], address: address, requestID: requestID)
            return true
        }
    }

    /// Ends every session of the account; the count ended.
    @discardableResult
    public static func logoutEverywhere(_ db: Connection, login: String, actor: String,
                                        address: String? = nil, requestID: String? = nil) throws -> Int {
        try db.withTransaction { tx in
            guard let id = try tx.query("SELECT id FROM admin_users WHERE login = $1", [login]).first?.requiredInt("id") else {
                throw Failure.unknown(login)
            }
            let ended = try tx.execute("DELETE FROM admin_sessions WHERE admin_id = $1", [id])
            try AdminAudit.record(tx, actor: actor, action: "admin.logout-everywhere", target: login,
                                  details: ["sessionsEnded": .int(ended)], address: address, requestID: requestID)
            return ended
        }
    }

    public static func list(_ db: some Queryable) throws -> [Account] {
        try db.query("""
            SELECT u.id, u.login, u.role, u.disabled, to_char(u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS created,
                   (SELECT count(*)::int FROM admin_sessions s WHERE s.admin_id = u.id) AS sessions
            FROM admin_users u ORDER BY u.login
            """).map {
            Account(id: $0.requiredInt("id"), login: $0.requiredString("login"), role: Role(rawValue: $0.requiredString("role")) ?? .viewer,
                    disabled: $0.bool("disabled") ?? false, createdAt: $0.requiredString("created"), sessions: $0.requiredInt("sessions"))
        }
    }
}

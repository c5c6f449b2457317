import JSON
import LibCrypto
import Postgres

/// Operator sessions and the login's lockout, both in PostgreSQL so every pool process and
/// every VM agree (docs/admin.md#sessions, docs/admin.md#lockout). The cookie carries a
/// random token; the table keeps only its SHA-256. A session ends at its absolute expiry, or
/// earlier when idle for `idleSeconds`; each request that finds it alive moves the idle end
/// on. Times are the caller's clock (`Dependencies.clock`), so tests can move them.
///
/// ```swift
/// switch try AdminSessions.login(db, login: "ops", password: pw, address: ip, userAgent: ua, now: now) { … }
/// let session = try AdminSessions.find(db, token: cookie, now: now)   // nil: log in again
/// ```
public enum AdminSessions {
    /// How long a session lives without a request, and at most.
    public static let idleSeconds = 30 * 60
    public static let absoluteSeconds = 12 * 3600
    /// Failed logins inside the window that lock an account, and an address.
    public static let lockoutWindowSeconds = 15 * 60
    public static let maxFailuresPerAccount = 5
    public static let maxFailuresPerAddress = 20

    public struct Session: Sendable, Equatable {
        public let adminID: Int
        public let login: String
        public let role: AdminAccounts.Role
        public let csrfToken: String
    }

    public enum LoginResult: Sendable, Equatable {
        /// The cookie's token (never stored) and the session's CSRF token.
        case success(token: String, csrfToken: String, login: String)
        case invalid
        /// Too many failures for the account or from the address inside the window.
        case locked
    }

    public static func login(_ db: Connection, login: String, password: String, address: String, userAgent: String?,
                             now: Double, requestID: String? = nil) throws -> LoginResult {
        try db.withTransaction { tx in
            // One login attempt at a time per account: counting and recording cannot interleave.
            _ = try tx.query("SELECT pg_advisory_xact_lock(hashtext('pinglass-admin-login:' || $1)) IS NULL AS x", [login])
            let counts = try tx.query("""
                SELECT (SELECT count(*)::int FROM admin_login_failures WHERE login = $1 AND at > to_timestamp($3::float8) - make_interval(secs => $4)) AS by_login,
                       (SELECT count(*)::int FROM admin_login_failures WHERE address = $2 AND at > to_timestamp($3::float8) - make_interval(secs => $4)) AS by_address
                """, [login, address, now, lockoutWindowSeconds])[0]
            if counts.requiredInt("by_login") >= maxFailuresPerAccount || counts.requiredInt("by_address") >= maxFailuresPerAddress {
                return .locked
            }
            let row = try tx.query("SELECT id, password_hash, disabled FROM admin_users WHERE login = $1", [login]).first
            let matches = PasswordHash.verify(password, against: row?.string("password_hash") ?? PasswordHash.decoy)
            guard let row, matches, row.bool("disabled") == false else {
                _ = try tx.execute("INSERT INTO admin_login_failures (login, address, at) VALUES ($1, $2, to_timestamp($3::float8))",
                                   [login, address, now])
                return .invalid
            }
            let id = row.requiredInt("id")
            _ = try tx.execute("DELETE FROM admin_login_failures WHERE login = $1", [login])
            let token = Crypto.base64URL(Crypto.randomBytes(32))
            let csrf = Crypto.base64URL(Crypto.randomBytes(32))
            _ = try tx.execute("""
                INSERT INTO admin_sessions (token_hash, admin_id, csrf_token, created_at, last_seen_at, expires_at, idle_expires_at, address, user_agent)
                VALUES (decode($1, 'hex'), $2, $3, to_timestamp($4::float8), to_timestamp($4::float8),
                        to_timestamp($4::float8) + make_interval(secs => $5), to_timestamp($4::float8) + make_interval(secs => $6), $7, $8)
                """, [Crypto.sha256Hex(token), id, csrf, now, absoluteSeconds, idleSeconds, address, userAgent.map { String($0.prefix(300)) }])
            try AdminAudit.record(tx, actor: login, action: "admin.login", target: login, details: [:], address: address, requestID: requestID)
            return .success(token: token, csrfToken: csrf, login: login)
        }
    }

    /// The live session the cookie's token names, its idle end moved on; nil when unknown,
    /// expired, or its account is disabled.
    public static func find(_ db: some Queryable, token: String, now: Double) throws -> Session? {
        guard !token.isEmpty, token.count <= 100 else { return nil }
        return try db.query("""
            UPDATE admin_sessions s
               SET idle_expires_at = LEAST(to_timestamp($2::float8) + make_interval(secs => $3), s.expires_at),
                   last_seen_at = to_timestamp($2::float8)
              FROM admin_users u
             WHERE s.token_hash = decode($1, 'hex') AND u.id = s.admin_id AND NOT u.disabled
               AND s.idle_expires_at > to_timestamp($2::float8) AND s.expires_at > to_timestamp($2::float8)
            RETURNING u.id, u.login, u.role, s.csrf_token
            """, [Crypto.sha256Hex(token), now, idleSeconds]).first.map {
            Session(adminID: $0.requiredInt("id"), login: $0.requiredString("login"),
                    role: AdminAccounts.Role(rawValue: $0.requiredString("role")) ?? .viewer, csrfToken: $0.requiredString("csrf_token"))
        }
    }

    /// Ends the session the token names (and audits it).
    public static func logout(_ db: Connection, token: String, session: Session, address: String?, requestID: String?) throws {
        try db.withTransaction { tx in
            let ended = try tx.execute("DELETE FROM admin_sessions WHERE token_hash = decode($1, 'hex')", [Crypto.sha256Hex(token)])
            try AdminAudit.record(tx, actor: session.login, action: "admin.logout", target: session.login,
                                  details: ["sessionsEnded": .int(ended)], address: address, requestID: requestID)
        }
    }
}

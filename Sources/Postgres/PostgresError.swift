/// What can go wrong talking to PostgreSQL, with the SQLSTATE classes callers act on.
///
/// An error inside a transaction aborts it: catch outside the transaction, or let the
/// statement itself absorb the expected case.
///
/// ```swift
/// do { try db.execute("INSERT INTO orders (key) VALUES ($1)", [key]) }   // autocommit
/// catch PostgresError.uniqueViolation { /* already there: fine */ }
///
/// try db.withTransaction { tx in
///     let inserted = try tx.execute("INSERT INTO orders (key) VALUES ($1) ON CONFLICT DO NOTHING", [key])
///     if inserted == 0 { /* already there: the transaction goes on */ }
/// }
/// ```
public enum PostgresError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The server could not be reached (refused, timed out, bad conninfo).
    case connectionFailed(String)
    /// The connection broke while a statement was in flight (server restart, network): the
    /// statement may have run. Also thrown inside a transaction, which never committed.
    case connectionLost(String)
    /// The connection broke after COMMIT was sent: the transaction may or may not have
    /// committed. Never retried; the caller must find out (or let its caller retry an
    /// idempotent request).
    case commitOutcomeUnknown(String)
    /// SQLSTATE 23505; `constraint` names the violated unique index when the server says.
    case uniqueViolation(constraint: String?, message: String)
    /// SQLSTATE 40001 / 40P01: safe to retry the whole transaction.
    case serializationFailure(String)
    /// A parameter libpq cannot carry (a NUL character): refused before anything is sent.
    /// `index` is 1-based, like `$1`.
    case invalidParameter(index: Int, reason: String)
    /// The API used in a way that cannot work: a `Transaction` used after its block, the
    /// `Connection` used (or a transaction begun) while a transaction is open on it.
    case misuse(String)
    /// Any other server error, with its SQLSTATE.
    case server(sqlState: String, message: String)

    public var description: String {
        switch self {
        case .connectionFailed(let m): return "database connection failed: \(m)"
        case .connectionLost(let m): return "database connection lost: \(m)"
        case .commitOutcomeUnknown(let m): return "database connection lost during COMMIT, outcome unknown: \(m)"
        case .uniqueViolation(let c, let m): return "unique violation (\(c ?? "?")): \(m)"
        case .serializationFailure(let m): return "serialization failure: \(m)"
        case .invalidParameter(let i, let r): return "invalid parameter $\(i): \(r)"
        case .misuse(let m): return "database API misuse: \(m)"
        case .server(let s, let m): return "database error \(s): \(m)"
        }
    }

    /// True when the database itself is unavailable (the caller should answer 503).
    public var isUnavailable: Bool {
        switch self {
        case .connectionFailed, .connectionLost, .commitOutcomeUnknown: return true
        default: return false
        }
    }

    /// The error for a failed statement. Class 08 and the shutdown states (57P01 terminated,
    /// 57P02 crash) mean the session is gone; 57P03 (starting up) only comes while
    /// connecting, which reports `connectionFailed`.
    static func from(sqlState: String?, constraint: String?, message: String) -> PostgresError {
        switch sqlState {
        case "23505": return .uniqueViolation(constraint: constraint, message: message)
        case "40001", "40P01": return .serializationFailure(message)
        case let s? where s.hasPrefix("08") || s == "57P01" || s == "57P02":
            return .connectionLost(message)
        case let s?: return .server(sqlState: s, message: message)
        case nil: return .connectionLost(message)
        }
    }
}

/// Whether a statement may be sent a second time when the connection broke after it was
/// sent and before its answer came back: it may have run, and committed.
///
/// Whatever the mark, a connection found broken *before* sending (the server restarted
/// while the session was idle) is re-opened and the statement sent once; so is a statement
/// the server rejected before running it (a plan invalidated by a migration). Inside a
/// transaction nothing is retried statement by statement: `withTransaction` retries the
/// whole transaction, which never committed.
///
/// ```swift
/// let rows = try db.query("SELECT id FROM orders WHERE key = $1", [key], retry: .idempotent)
/// // Guarded: running it twice leaves the same state (the row count of a retry may be 0).
/// try db.execute("UPDATE orders SET state = 'sent' WHERE id = $1 AND state = 'new'", [id], retry: .idempotent)
/// // Not idempotent: left unmarked, a lost answer surfaces as `connectionLost`.
/// try db.execute("UPDATE budgets SET spent = spent + $2 WHERE id = $1", [id, amount])
/// ```
public enum Retry: Sendable, Equatable {
    /// Never sent twice (the default): a lost answer throws `PostgresError.connectionLost`.
    case never
    /// Running it twice has the effect of running it once (reads, guarded UPDATEs whose row
    /// count decides nothing, `INSERT … ON CONFLICT DO NOTHING`, upserts of fixed values):
    /// after a lost answer it is sent once more on a new connection.
    case idempotent
}

/// Something statements run on: a `Connection` (autocommit) or a `Transaction`. Helpers
/// that work either way take `some Queryable`; code that must run inside a transaction
/// takes `Transaction`.
///
/// ```swift
/// func tier(_ db: some Queryable, id: String) throws -> Row? {
///     try db.query("SELECT * FROM tiers WHERE id = $1", [id], retry: .idempotent).first
/// }
/// ```
public protocol Queryable {
    /// Runs one statement (`$1…` parameters, text format) and returns its rows.
    @discardableResult
    func query(_ sql: String, _ params: [PostgresEncodable?], retry: Retry) throws -> Rows
}

extension Queryable {
    /// Runs one statement that is never sent twice (`retry: .never`).
    @discardableResult
    public func query(_ sql: String, _ params: [PostgresEncodable?] = []) throws -> Rows {
        try query(sql, params, retry: .never)
    }

    @discardableResult
    public func query(_ sql: String, retry: Retry) throws -> Rows {
        try query(sql, [], retry: retry)
    }

    /// Runs a statement and returns the number of rows it changed.
    @discardableResult
    public func execute(_ sql: String, _ params: [PostgresEncodable?] = [], retry: Retry = .never) throws -> Int {
        try query(sql, params, retry: retry).affected
    }
}

import CLibPQ

/// An open transaction: what the body of `Connection.withTransaction` gets. Statements run
/// on it; the `Connection` refuses them until the block ends, and this value refuses them
/// afterwards (`PostgresError.misuse`). It has no `withTransaction`: transactions do not nest.
/// Functions that must run inside a transaction take a `Transaction`; helpers that work
/// either way take `some Queryable`.
///
/// ```swift
/// func markPaid(_ tx: Transaction, key: String) throws -> Bool {
///     guard let row = try tx.query("SELECT id FROM orders WHERE key = $1 FOR UPDATE", [key]).first else { return false }
///     return try tx.execute("UPDATE orders SET state = 'paid' WHERE id = $1 AND state = 'new'", [row.requiredInt("id")]) == 1
/// }
/// let paid = try db.withTransaction { tx in try markPaid(tx, key: key) }
/// ```
public final class Transaction: Queryable {
    private let connection: Connection
    fileprivate(set) var isOpen = true

    fileprivate init(_ connection: Connection) { self.connection = connection }

    /// Runs one statement in the transaction. `retry` is ignored: after a lost connection
    /// `withTransaction` runs the whole transaction again (it never committed).
    @discardableResult
    public func query(_ sql: String, _ params: [PostgresEncodable?], retry: Retry) throws -> Rows {
        try checkOpen()
        return try connection.statement(sql, params, retry: .never)
    }

    /// Runs a script of several statements with no parameters (migrations).
    public func executeScript(_ sql: String) throws {
        try checkOpen()
        try connection.script(sql)
    }

    private func checkOpen() throws {
        guard isOpen else { throw PostgresError.misuse("Transaction used after its withTransaction block ended") }
    }
}

extension Connection {
    /// Runs `body` in a transaction: COMMIT when it returns, ROLLBACK when it throws.
    ///
    /// - A connection lost before COMMIT was sent runs the whole body once more on a new
    ///   session (nothing was committed); serialization failures (40001, 40P01) up to three
    ///   more times. The body may therefore run more than once: keep foreign calls out of it.
    /// - A connection lost after COMMIT was sent throws `commitOutcomeUnknown`, never retried.
    /// - An error the body caught still aborted the transaction: it is rolled back and
    ///   25P02 thrown, never reported as committed.
    /// - Called while a transaction is open on this connection: `misuse`.
    @discardableResult
    public func withTransaction<T>(isolation: String? = nil, _ body: (Transaction) throws -> T) throws -> T {
        guard openTransaction == nil else {
            throw PostgresError.misuse("withTransaction inside a transaction: transactions do not nest")
        }
        if sessionInTransaction {
            throw PostgresError.misuse("withTransaction after a BEGIN sent by hand: transactions do not nest")
        }
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try transactionOnce(isolation: isolation, body)
            } catch PostgresError.connectionLost where attempt == 1 {
                try reconnect()
            } catch PostgresError.serializationFailure where attempt < 4 {
                serializationRetries += 1
            }
        }
    }

    private func transactionOnce<T>(isolation: String?, _ body: (Transaction) throws -> T) throws -> T {
        try script(isolation.map { "BEGIN ISOLATION LEVEL \($0)" } ?? "BEGIN")
        let tx = Transaction(self)
        openTransaction = tx
        defer {
            tx.isOpen = false
            openTransaction = nil
        }
        let value: T
        do {
            value = try body(tx)
        } catch {
            rollbackQuietly()
            throw error
        }
        try commit()
        return value
    }

    /// COMMIT, and what its failure means: session found gone before sending →
    /// `connectionLost` (nothing committed, retried); answer lost → `commitOutcomeUnknown`;
    /// an error (deferred constraint, serialization) → rolled back, thrown.
    private func commit() throws {
        let conn = try readyToSend()
        switch PQtransactionStatus(conn) {
        case PQTRANS_INERROR:
            rollbackQuietly()
            throw PostgresError.server(sqlState: "25P02",
                                       message: "the block caught an error that aborted the transaction; rolled back")
        case PQTRANS_IDLE:
            throw PostgresError.misuse("the block ended the transaction itself; return or throw instead")
        default:
            break
        }
        do {
            _ = try Self.check(PQexec(conn, "COMMIT"), conn)
        } catch Failure.lost(let message) {
            throw PostgresError.commitOutcomeUnknown(message)
        } catch let failure as Failure {
            // A COMMIT whose connection broke may have committed: never retried as a whole.
            if case .connectionLost(let message) = failure.error { throw PostgresError.commitOutcomeUnknown(message) }
            rollbackQuietly()
            throw failure.error
        }
    }
}

extension Transaction {
    /// Runs `body` inside a savepoint of this transaction. When it throws, only what it did
    /// is rolled back (the transaction stays usable and commits the rest) and the error is
    /// rethrown for the caller to judge; a lost session is rethrown untouched. Use it to
    /// keep one bad item of a batch from rolling back, and so blocking, all the others.
    ///
    /// ```swift
    /// for id in ids {
    ///     do { try tx.withSavepoint { try finish($0, id) } } catch { failed.append(id) }
    /// }
    /// ```
    @discardableResult
    public func withSavepoint<T>(_ body: (Transaction) throws -> T) throws -> T {
        try executeScript("SAVEPOINT item")
        let value: T
        do {
            value = try body(self)
            try executeScript("RELEASE SAVEPOINT item")
        } catch let error as PostgresError where error.isUnavailable {
            throw error
        } catch {
            try executeScript("ROLLBACK TO SAVEPOINT item")
            try executeScript("RELEASE SAVEPOINT item")
            throw error
        }
        return value
    }
}

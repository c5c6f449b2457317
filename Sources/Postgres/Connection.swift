import CLibPQ
#if canImport(Glibc)
import Glibc
#endif

/// One libpq connection, for one process (a FastCGI worker or a cron run). Not thread-safe.
///
/// Parameterised statements only (`$1…`, text format), each prepared once per session
/// (see `PreparedStatements`). A connection that broke because the
/// server restarted is reset and the statement retried once when no transaction was open;
/// inside `withTransaction` the whole transaction is retried once instead.
///
/// ```swift
/// let db = try Connection("host=/run/postgresql dbname=pinglass")
/// let n = try db.withTransaction { tx in
///     try tx.execute("UPDATE payments SET status = 'succeeded' WHERE id = $1 AND status = 'pending'", [id])
/// }
/// ```
public final class Connection {
    private var conn: OpaquePointer?
    private var transactionDepth = 0
    /// Statements prepared on this session, by SQL text. Forgotten when the session is reset.
    private var statements = PreparedStatements(limit: 256)
    /// How many statements stay prepared; past it the least recently used is deallocated.
    public var preparedStatementLimit: Int {
        get { statements.limit }
        set { statements.limit = newValue }
    }
    public let conninfo: String

    public init(_ conninfo: String) throws {
        self.conninfo = conninfo
        let c = PQconnectdb(conninfo)
        guard let c, PQstatus(c) == CONNECTION_OK else {
            let msg = c.map { String(cString: PQerrorMessage($0)) } ?? "out of memory"
            if let c { PQfinish(c) }
            throw PostgresError.connectionFailed(Self.trim(msg))
        }
        // Server NOTICEs ("already exists, skipping") are not errors: keep them off stderr.
        PQsetNoticeProcessor(c, { _, _ in }, nil)
        conn = c
    }

    deinit { if let conn { PQfinish(conn) } }

    /// Closes the connection; later statements fail with `connectionFailed`.
    public func close() {
        if let conn { PQfinish(conn) }
        conn = nil
    }

    /// True when no transaction is open (checked at the end of every request).
    public var isIdle: Bool {
        guard let conn else { return true }
        return PQtransactionStatus(conn) == PQTRANS_IDLE
    }

    /// Rolls back anything a failed handler left open, so the next request starts clean.
    public func resetToIdle() {
        guard let conn, PQstatus(conn) == CONNECTION_OK, !isIdle else { return }
        if let r = PQexec(conn, "ROLLBACK") { PQclear(r) }
        transactionDepth = 0
    }

    public var inTransaction: Bool { transactionDepth > 0 }

    /// Runs a statement and returns its rows.
    @discardableResult
    public func query(_ sql: String, _ params: [PostgresEncodable?] = []) throws -> Rows {
        do {
            return try runOnce(sql, params)
        } catch PostgresError.connectionLost where transactionDepth == 0 {
            // The server went away between statements (restart, idle kill): the statement
            // never ran. Reset once and try again; a second failure is reported.
            try reconnect()
            return try runOnce(sql, params)
        }
    }

    /// The server rejected a prepared statement before running it.
    private struct NotRun: Error { let error: PostgresError }

    private func runOnce(_ sql: String, _ params: [PostgresEncodable?]) throws -> Rows {
        do {
            return try run(sql, params)
        } catch let notRun as NotRun {
            // Rejected before running (plan changed, statement gone): prepared afresh and sent
            // again, outside a transaction only (inside, the error has aborted it).
            guard transactionDepth == 0 else { throw notRun.error }
            do { return try run(sql, params) } catch let again as NotRun { throw again.error }
        }
    }

    /// Runs a statement and returns the number of rows it changed.
    @discardableResult
    public func execute(_ sql: String, _ params: [PostgresEncodable?] = []) throws -> Int {
        try query(sql, params).affected
    }

    /// Runs `body` in a transaction: COMMIT when it returns, ROLLBACK when it throws.
    /// A connection lost before COMMIT was sent retries the whole body once (nothing was
    /// committed); serialization failures retry up to three times.
    @discardableResult
    public func withTransaction<T>(isolation: String? = nil, _ body: (Connection) throws -> T) throws -> T {
        precondition(transactionDepth == 0, "nested transactions are not supported")
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try transactionOnce(isolation: isolation, body)
            } catch PostgresError.connectionLost where attempt == 1 {
                try reconnect()
            } catch PostgresError.serializationFailure where attempt < 4 {
                continue
            }
        }
    }

    private func transactionOnce<T>(isolation: String?, _ body: (Connection) throws -> T) throws -> T {
        _ = try run(isolation.map { "BEGIN ISOLATION LEVEL \($0)" } ?? "BEGIN", [])
        transactionDepth = 1
        let value: T
        do {
            value = try body(self)
        } catch {
            transactionDepth = 0
            rollbackQuietly()
            throw error
        }
        transactionDepth = 0
        do {
            _ = try run("COMMIT", [])
        } catch PostgresError.connectionLost(let m) {
            // The outcome of COMMIT is unknown: never retried here.
            throw PostgresError.server(sqlState: "08007", message: "commit outcome unknown: \(m)")
        }
        return value
    }

    private func rollbackQuietly() {
        guard let conn, PQstatus(conn) == CONNECTION_OK else { return }
        if let r = PQexec(conn, "ROLLBACK") { PQclear(r) }
    }

    /// Re-establishes a broken connection (after a server restart).
    public func reconnect() throws {
        guard let conn else { throw PostgresError.connectionFailed("connection closed") }
        PQreset(conn)
        transactionDepth = 0
        statements.sessionReset()
        guard PQstatus(conn) == CONNECTION_OK else {
            throw PostgresError.connectionFailed(Self.trim(String(cString: PQerrorMessage(conn))))
        }
    }

    private func run(_ sql: String, _ params: [PostgresEncodable?]) throws -> Rows {
        guard let conn else { throw PostgresError.connectionFailed("connection closed") }
        if PQstatus(conn) != CONNECTION_OK {
            if transactionDepth > 0 { throw PostgresError.connectionLost("connection broken") }
            try reconnect()
        }
        deallocateDropped(conn)
        let texts = try Self.parameterTexts(params)
        let name = try statementName(conn, sql)
        let result = Self.withCStrings(texts) { ptrs in PQexecPrepared(conn, name, Int32(ptrs.count), ptrs, nil, nil, 0) }
        guard let result else {
            throw PostgresError.connectionLost(Self.trim(String(cString: PQerrorMessage(conn))))
        }
        let rows = Rows(result)
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK:
            return rows
        default:
            let field = { (code: Character) -> String? in
                PQresultErrorField(result, Int32(code.asciiValue!)).map { String(cString: $0) }
            }
            let message = field("M") ?? Self.trim(String(cString: PQerrorMessage(conn)))
            if PQstatus(conn) == CONNECTION_BAD {
                throw PostgresError.connectionLost(message)
            }
            let error = PostgresError.from(sqlState: field("C"), constraint: field("n"), message: message)
            switch (field("C"), field("R")) {
            case ("0A000"?, "RevalidateCachedQuery"?):
                // "cached plan must not change result type" (a column changed under a live
                // session): raised at Bind, before execution. Prepared afresh next time.
                statements.forget(sql, deallocate: true)
                throw NotRun(error: error)
            case ("26000"?, _):
                // The server no longer has it (DEALLOCATE ALL, DISCARD ALL): nothing ran.
                statements.forget(sql, deallocate: false)
                throw NotRun(error: error)
            default:
                throw error
            }
        }
    }

    /// Deallocates what the statement cache dropped, when no transaction is open (inside
    /// one, a failing DEALLOCATE would abort it). Failures are ignored: names are not reused.
    private func deallocateDropped(_ conn: OpaquePointer) {
        guard !statements.toDeallocate.isEmpty, PQtransactionStatus(conn) == PQTRANS_IDLE else { return }
        for name in statements.takeDeallocations() {
            if let r = PQexec(conn, "DEALLOCATE \(name)") { PQclear(r) }
        }
    }

    /// The prepared statement for `sql`, preparing it on first use.
    private func statementName(_ conn: OpaquePointer, _ sql: String) throws -> String {
        if let name = statements.name(for: sql) { return name }
        let name = statements.nextName()
        guard let r = PQprepare(conn, name, sql, 0, nil) else {
            throw PostgresError.connectionLost(Self.trim(String(cString: PQerrorMessage(conn))))
        }
        let rows = Rows(r)
        guard PQresultStatus(r) == PGRES_COMMAND_OK else {
            // The statement itself is wrong (or the session broke): report it as running it would.
            let field = { (code: Character) -> String? in
                PQresultErrorField(r, Int32(code.asciiValue!)).map { String(cString: $0) }
            }
            let message = field("M") ?? Self.trim(String(cString: PQerrorMessage(conn)))
            _ = rows
            if PQstatus(conn) == CONNECTION_BAD { throw PostgresError.connectionLost(message) }
            throw PostgresError.from(sqlState: field("C"), constraint: field("n"), message: message)
        }
        statements.add(sql, name: name)
        return name
    }

    func runScript(_ sql: String) throws {
        guard let conn else { throw PostgresError.connectionFailed("connection closed") }
        guard let result = PQexec(conn, sql) else {
            throw PostgresError.connectionLost(Self.trim(String(cString: PQerrorMessage(conn))))
        }
        let rows = Rows(result)
        let status = PQresultStatus(result)
        if status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY { _ = rows; return }
        let message = String(cString: PQresultErrorMessage(result))
        let state = PQresultErrorField(result, Int32(Character("C").asciiValue!)).map { String(cString: $0) }
        throw PostgresError.from(sqlState: state, constraint: nil, message: Self.trim(message))
    }

    /// Quotes an identifier (database or table name made at run time).
    public static func quoteIdentifier(_ s: String) -> String {
        "\"" + s.replacingOccurrences("\"", "\"\"") + "\""
    }

    /// Parameters as libpq C strings. A NUL would end the C string there and send a
    /// shorter value without a word, so it is refused before anything is sent.
    static func parameterTexts(_ params: [PostgresEncodable?]) throws -> [String?] {
        try params.enumerated().map { i, p in
            let text = p?.postgresText
            if let text, text.utf8.contains(0) {
                throw PostgresError.invalidParameter(index: i + 1, reason: "contains a NUL character, which PostgreSQL text cannot hold")
            }
            return text
        }
    }

    private static func trim(_ s: String) -> String {
        var t = Substring(s)
        while let last = t.last, last == "\n" || last == " " { t = t.dropLast() }
        return String(t)
    }

    /// Hands libpq a `const char * const *` built from `strdup`ed copies freed afterwards.
    private static func withCStrings<R>(_ values: [String?], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
        let copies: [UnsafeMutablePointer<CChar>?] = values.map { $0.flatMap { strdup($0) } }
        defer { copies.forEach { free($0) } }
        return body(copies.map { $0.map { UnsafePointer($0) } })
    }
}

extension Connection {
    /// Runs a script of several statements with no parameters (migrations only).
    public func executeScript(_ sql: String) throws {
        try runScript(sql)
    }
}

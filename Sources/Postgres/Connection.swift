import CLibPQ
#if canImport(Glibc)
import Glibc
#endif

/// One libpq connection, for one process (a FastCGI worker or a cron run). Not thread-safe.
///
/// Parameterised statements only (`$1…`, text format), each prepared once per session.
/// A statement is sent a second time only when that cannot run it twice: the session was
/// found broken before sending (re-opened first), the server rejected it before running it
/// (a plan invalidated by a migration), or the call site marked it `retry: .idempotent`.
/// Transactions go through `withTransaction`, whose body gets a `Transaction`.
///
/// ```swift
/// let db = try Connection("host=/run/postgresql dbname=shop")
/// let open = try db.query("SELECT id FROM orders WHERE state = $1", ["new"], retry: .idempotent)
/// let moved = try db.withTransaction { tx in
///     try tx.execute("UPDATE orders SET state = 'paid' WHERE id = $1 AND state = 'new'", [id])
/// }
/// ```
public final class Connection: Queryable {
    private(set) var conn: OpaquePointer?
    private var statements = PreparedStatements(limit: 256)
    /// Set by the notice receiver when the server says FATAL while the session is idle
    /// (terminated, shutting down): the session is over even before the socket closes.
    private let fatalNotice = UnsafeMutablePointer<Bool>.allocate(capacity: 1)
    /// The transaction `withTransaction` has open: while set, statements go through it only.
    var openTransaction: Transaction?
    /// Transactions `withTransaction` ran again after a serialization failure or a deadlock
    /// (40001, 40P01) on this connection. The retry hides them from callers; a lock-order
    /// bug shows here (tests assert it stays 0 where none is expected).
    public internal(set) var serializationRetries = 0
    /// Messages this connection sent and waited for an answer to (a statement, a Parse, a
    /// BEGIN/COMMIT, a DEALLOCATE, a ROLLBACK): how many round trips to the server its
    /// callers cost. Tests read it to hold the hot paths to their budget.
    public private(set) var roundTrips = 0

    /// How many statements stay prepared; past it the least recently used is deallocated.
    public var preparedStatementLimit: Int {
        get { statements.limit }
        set { statements.limit = newValue }
    }

    public init(_ conninfo: String) throws {
        fatalNotice.initialize(to: false)
        let c = PQconnectdb(conninfo)
        guard let c, PQstatus(c) == CONNECTION_OK else {
            let msg = c.map { String(cString: PQerrorMessage($0)) } ?? "out of memory"
            if let c { PQfinish(c) }
            throw PostgresError.connectionFailed(Self.trim(msg))
        }
        // NOTICEs ("already exists, skipping") stay off stderr; a FATAL that arrives while
        // idle (pg_terminate_backend, shutdown) marks the session as over.
        PQsetNoticeReceiver(c, { flag, result in
            guard let flag, let result,
                  let severity = PQresultErrorField(result, Int32(UInt8(ascii: "V"))).map({ String(cString: $0) }) else { return }
            if severity == "FATAL" || severity == "PANIC" { flag.assumingMemoryBound(to: Bool.self).pointee = true }
        }, fatalNotice)
        conn = c
    }

    deinit {
        if let conn { PQfinish(conn) }
        fatalNotice.deallocate()
    }

    /// Closes the connection; later statements fail with `connectionFailed`.
    public func close() {
        if let conn { PQfinish(conn) }
        conn = nil
    }

    /// True while the session is up as far as libpq knows (no statement is sent to find
    /// out): false once a statement found the server gone and reconnecting failed.
    public var isConnected: Bool {
        guard let conn else { return false }
        return PQstatus(conn) == CONNECTION_OK
    }

    /// True when no transaction is open (checked at the end of every request).
    public var isIdle: Bool {
        guard let conn else { return true }
        return PQtransactionStatus(conn) == PQTRANS_IDLE
    }

    /// True while a transaction is open on this connection: `withTransaction` is running, or
    /// libpq reports the session inside a transaction block (a BEGIN sent by hand, a failed
    /// one not yet rolled back, a statement in flight). A broken or closed connection has
    /// none (libpq reports UNKNOWN there: nothing is held on the server).
    public var hasOpenTransaction: Bool { openTransaction != nil || sessionInTransaction }

    /// Rolls back anything a failed handler left open, so the next request starts clean.
    public func resetToIdle() {
        guard let conn, PQstatus(conn) == CONNECTION_OK, !isIdle else { return }
        roundTrips += 1
        if let r = PQexec(conn, "ROLLBACK") { PQclear(r) }
    }

    /// Runs one statement in autocommit. Refused while `withTransaction` has a transaction
    /// open on this connection: run it on the `Transaction`.
    @discardableResult
    public func query(_ sql: String, _ params: [PostgresEncodable?], retry: Retry) throws -> Rows {
        guard openTransaction == nil else {
            throw PostgresError.misuse("statement on the Connection while a transaction is open on it; use the Transaction")
        }
        return try statement(sql, params, retry: retry)
    }

    /// Runs a script of several statements with no parameters (migrations only). Never sent twice.
    public func executeScript(_ sql: String) throws {
        guard openTransaction == nil else {
            throw PostgresError.misuse("script on the Connection while a transaction is open on it; use the Transaction")
        }
        try script(sql)
    }

    // MARK: - Sending

    /// How a statement failed, as far as sending it again is concerned.
    enum Failure: Error {
        /// Rejected before it ran: a plan the server will not reuse, a prepared statement
        /// the server no longer has, or the session lost while preparing.
        case notRun(PostgresError)
        /// Sent, and the answer lost with the session: it may have run, and committed.
        case lost(String)
        /// The server answered with an error.
        case failed(PostgresError, sqlState: String?, routine: String?)

        var error: PostgresError {
            switch self {
            case .notRun(let e), .failed(let e, _, _): return e
            case .lost(let m): return .connectionLost(m)
            }
        }
    }

    /// One statement, sent at most twice (see `Retry`). Inside a transaction, once.
    func statement(_ sql: String, _ params: [PostgresEncodable?], retry: Retry) throws -> Rows {
        if sql.utf8.contains(0) { throw PostgresError.misuse("SQL text contains a NUL character") }
        let texts = try Self.parameterTexts(params)
        let conn = try readyToSend()
        let inTransaction = openTransaction != nil || Self.inTransactionBlock(conn)
        do {
            return try send(conn, sql, texts)
        } catch let failure as Failure {
            switch failure {
            case .notRun where !inTransaction: break
            case .lost where !inTransaction && retry == .idempotent: break
            default: throw failure.error
            }
        }
        do {
            return try send(readyToSend(), sql, texts)
        } catch let failure as Failure {
            throw failure.error
        }
    }

    /// Statements without parameters or preparing: scripts, BEGIN, COMMIT. Never sent twice.
    func script(_ sql: String) throws {
        let conn = try readyToSend()
        roundTrips += 1
        do { _ = try Self.check(PQexec(conn, sql), conn) } catch let failure as Failure { throw failure.error }
    }

    /// Sends `sql` on its prepared statement, preparing it first when new.
    private func send(_ conn: OpaquePointer, _ sql: String, _ texts: [String?]) throws -> Rows {
        let name = try statements.name(for: sql) ?? prepare(conn, sql)
        roundTrips += 1
        let result = Self.withCStrings(texts) { PQexecPrepared(conn, name, Int32($0.count), $0, nil, nil, 0) }
        do {
            return try Self.check(result, conn)
        } catch Failure.failed(let error, "0A000"?, "RevalidateCachedQuery"?) {
            // "cached plan must not change result type" (a column changed under a live
            // session): raised at Bind, before execution. The statement is prepared afresh.
            statements.forget(sql, deallocate: true)
            throw Failure.notRun(error)
        } catch Failure.failed(let error, "26000"?, _) {
            // The server no longer has it (DEALLOCATE ALL, DISCARD ALL): nothing ran.
            statements.forget(sql, deallocate: false)
            throw Failure.notRun(error)
        }
    }

    private func prepare(_ conn: OpaquePointer, _ sql: String) throws -> String {
        let name = statements.nextName()
        roundTrips += 1
        do {
            _ = try Self.check(PQprepare(conn, name, sql, 0, nil), conn)
        } catch Failure.lost(let message) {
            throw Failure.notRun(.connectionLost(message))        // a Parse runs nothing
        }
        statements.add(sql, name: name)
        return name
    }

    /// The connection, checked before anything is sent. A session that ended while idle
    /// is re-opened (nothing was sent: any statement may go), unless a transaction was open
    /// on it: then the caller hears `connectionLost` (nothing was committed).
    func readyToSend() throws -> OpaquePointer {
        guard let conn else { throw PostgresError.connectionFailed("connection closed") }
        let inTransaction = openTransaction != nil || Self.inTransactionBlock(conn)
        if !inTransaction { deallocateDropped(conn) }
        guard sessionEnded(conn) else { return conn }
        if inTransaction { throw PostgresError.connectionLost("the session ended during the transaction") }
        try reconnect()
        return conn
    }

    /// True when the session is over before anything is sent: libpq knows it, or the
    /// server closed the socket or said FATAL while we were idle.
    private func sessionEnded(_ conn: OpaquePointer) -> Bool {
        if PQstatus(conn) != CONNECTION_OK || fatalNotice.pointee { return true }
        var fd = pollfd(fd: PQsocket(conn), events: Int16(POLLIN), revents: 0)
        var reads = 0
        while reads < 4, poll(&fd, 1, 0) > 0 {
            reads += 1
            if PQconsumeInput(conn) == 0 { return true }
            _ = PQisBusy(conn)      // parses what came; a FATAL goes to the notice receiver
            if PQstatus(conn) != CONNECTION_OK || fatalNotice.pointee { return true }
        }
        return false
    }

    /// Deallocates what the statement cache dropped, when no transaction is open (inside
    /// one, a failing DEALLOCATE would abort it). Failures are ignored: names are not reused.
    private func deallocateDropped(_ conn: OpaquePointer) {
        guard !statements.toDeallocate.isEmpty, PQstatus(conn) == CONNECTION_OK,
              PQtransactionStatus(conn) == PQTRANS_IDLE else { return }
        for name in statements.takeDeallocations() {
            roundTrips += 1
            if let r = PQexec(conn, "DEALLOCATE \(name)") { PQclear(r) }
        }
    }

    /// Re-opens a broken session (after a server restart); it starts with nothing prepared.
    func reconnect() throws {
        guard let conn else { throw PostgresError.connectionFailed("connection closed") }
        PQreset(conn)
        statements.sessionReset()
        fatalNotice.pointee = false
        guard PQstatus(conn) == CONNECTION_OK else {
            throw PostgresError.connectionFailed(Self.trim(String(cString: PQerrorMessage(conn))))
        }
    }

    func rollbackQuietly() {
        guard let conn, PQstatus(conn) == CONNECTION_OK, PQtransactionStatus(conn) != PQTRANS_IDLE else { return }
        roundTrips += 1
        if let r = PQexec(conn, "ROLLBACK") { PQclear(r) }
    }

    // MARK: - libpq plumbing

    /// The rows of a successful result; otherwise why it failed. Owns (clears) `result`.
    static func check(_ result: OpaquePointer?, _ conn: OpaquePointer) throws -> Rows {
        guard let result else { throw Failure.lost(trim(String(cString: PQerrorMessage(conn)))) }
        let rows = Rows(result)
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            return rows
        default:
            let field = { (code: UInt8) -> String? in PQresultErrorField(result, Int32(code)).map { String(cString: $0) } }
            let message = field(UInt8(ascii: "M")) ?? trim(String(cString: PQerrorMessage(conn)))
            if PQstatus(conn) == CONNECTION_BAD { throw Failure.lost(message) }
            let state = field(UInt8(ascii: "C"))
            throw Failure.failed(PostgresError.from(sqlState: state, constraint: field(UInt8(ascii: "n")), message: message),
                                 sqlState: state, routine: field(UInt8(ascii: "R")))
        }
    }

    /// A transaction is open on the session (by `withTransaction` or a BEGIN sent by hand).
    var sessionInTransaction: Bool { conn.map(Self.inTransactionBlock) ?? false }

    static func inTransactionBlock(_ conn: OpaquePointer) -> Bool {
        let s = PQtransactionStatus(conn)
        return s == PQTRANS_INTRANS || s == PQTRANS_INERROR || s == PQTRANS_ACTIVE
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

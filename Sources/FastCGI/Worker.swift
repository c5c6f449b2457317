import CFastCGI
import HTTPCore
import HTTPTypes
#if canImport(Glibc)
import Glibc
#endif

/// The loop of one pre-forked worker: wait for a connection, accept it, read the request,
/// call the handler, write the response, finish; exit after `maxRequests` or on a stop signal.
///
/// A stop signal (QUIT/TERM) is acted on only while the worker waits for a connection. From
/// accept to the end of the response it stays blocked, pending: libfcgi reads the request's
/// records inside `FCGX_Accept_r`, and a signal there used to make it close a connection it
/// had already accepted (nginx answered 502).
///
/// A connection holds a worker only as long as it sends its request promptly: the worker
/// accepts it itself, waits `firstRecordTimeout` for the first bytes, and then gives the
/// whole request (params, body and the record that ends the body) `readTimeoutSeconds`,
/// after which the connection is cut and the worker goes back to waiting. nginx sends the
/// whole request as soon as it connects; only a client that connects and then stalls ever
/// meets these bounds. Only a request read to its end reaches the handler, whose own time
/// (`requestTimeoutSeconds`) starts then.
struct Worker {
    let listenFD: Int32
    let configuration: PoolConfiguration
    let handler: (Request) -> Response

    /// Runs in the child right after fork, never returns.
    static func start(listenFD: Int32, masterPID: pid_t, configuration: PoolConfiguration,
                      makeHandler: () -> (Request) -> Response) -> Never {
        installSignalHandlers(masterPID: masterPID)
        Worker(listenFD: listenFD, configuration: configuration, handler: makeHandler()).run()
    }

    /// Stop signals set the flag and are blocked outside the wait; SIGINT and SIGCHLD get
    /// their defaults back. SIGALRM is the worker's own timer: while a request is being read
    /// it cuts that connection (see `onAlarm`), otherwise it ends the process (the per-request
    /// time limit).
    private static func installSignalHandlers(masterPID: pid_t) {
        Signals.install(SIGQUIT) { _ in Signals.stop = 1 }
        Signals.install(SIGTERM) { _ in Signals.stop = 1 }
        Signals.ignore(SIGHUP)
        Signals.ignore(SIGPIPE)
        Signals.reset(SIGINT)
        Signals.reset(SIGCHLD)
        Signals.install(SIGALRM, onAlarm)
        Signals.readingFD = -1
        Signals.stop = 0                    // the master's copy, not ours
        Signals.blockOnly([SIGQUIT, SIGTERM])
        // Die with the master (gracefully: SIGTERM waits for the request in hand). If the master
        // died before this line, nobody would send it: leave now.
        _ = pinglass_set_parent_death_signal(SIGTERM)
        if getppid() != masterPID { exit(0) }
    }

    /// The timer ran out. Reading a request: shut the connection's receiving side, which ends
    /// the read libfcgi is blocked in, and every later one, with end-of-file (no race with a
    /// read about to start), so the request is dropped or its body comes out short. Serving
    /// one: the request time limit, the process dies of SIGALRM as if there were no handler
    /// (the master logs it and forks a replacement).
    private static let onAlarm: @convention(c) (Int32) -> Void = { sig in
        let fd = Signals.readingFD
        if fd >= 0 {
            _ = shutdown(fd, Int32(SHUT_RD))
            Signals.readTimedOut = 1
            return
        }
        Signals.reset(sig)
        raise(sig)     // pending until this handler returns, then fatal
    }

    func run() -> Never {
        // libfcgi keeps pointers into the request: it must not move. Its listening socket is
        // -1: the worker accepts connections itself (`accept`), and libfcgi, which tries to
        // accept another one whenever it drops a connection it could not read, gets EBADF
        // and returns instead.
        let req = UnsafeMutablePointer<FCGX_Request>.allocate(capacity: 1)
        req.initialize(to: FCGX_Request())
        FCGX_InitRequest(req, -1, 0)

        let waiter = ConnectionWaiter(listenFD: listenFD)
        var served = 0
        while waiter.next() {
            guard let fd = Self.accept(listenFD) else { continue }
            guard Self.waitForFirstBytes(fd, seconds: configuration.firstRecordTimeout) else {
                close(fd)
                Self.report("closed a connection that sent nothing within \(configuration.firstRecordTimeout)s")
                continue
            }
            guard let incoming = readIncoming(fd, into: req) else { continue }
            serve(req, incoming)
            served += 1
            if configuration.maxRequests > 0 && served >= configuration.maxRequests { break }
        }
        exit(0)
    }

    /// One connection from the shared non-blocking socket, or nil: EAGAIN when another worker
    /// took it, ECONNABORTED when the client left. Any other error (EMFILE, ENOBUFS, …) would
    /// keep the level-triggered wait ready and spin: pause briefly instead.
    static func accept(_ listenFD: Int32) -> Int32? {
        let fd = Glibc.accept(listenFD, nil, nil)
        if fd >= 0 { return fd }
        let e = errno
        if e != EAGAIN && e != EWOULDBLOCK && e != EINTR && e != ECONNABORTED {
            report("accept failed: \(String(cString: strerror(e)))")
            var pause = timespec(tv_sec: 0, tv_nsec: 100_000_000)
            nanosleep(&pause, nil)
        }
        return nil
    }

    /// True once the connection has something to read (data, or its end) within `seconds`.
    /// A plain poll: the stop signals stay pending, as everywhere outside the wait.
    static func waitForFirstBytes(_ fd: Int32, seconds: Double) -> Bool {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&pfd, 1, Int32(seconds * 1000)) > 0
    }

    /// Reads the request on `fd` (params through libfcgi, then the body up to the end of
    /// stdin) within the read timeout. nil when the connection was dropped (and closed): it
    /// timed out or ended before the params were complete, or was not FastCGI. A body cut
    /// short comes back `.truncated`, one whose stdin never ended `.unfinished` (both 400).
    private func readIncoming(_ fd: Int32, into req: UnsafeMutablePointer<FCGX_Request>) -> Incoming? {
        Signals.readTimedOut = 0
        Signals.readingFD = fd
        alarm(UInt32(configuration.readTimeoutSeconds))
        defer {
            alarm(0)                 // first: no SIGALRM can then find the fd still set
            Signals.readingFD = -1
            if Signals.readTimedOut != 0 {
                Self.report("cut a connection that had not sent its whole request within \(configuration.readTimeoutSeconds)s")
            }
        }
        req.pointee.ipcFd = fd
        // FCGX_Accept_r first finishes the previous request, closing its connection unless
        // it is kept: this one must be kept. (The BEGIN_REQUEST record then sets the flag.)
        req.pointee.keepConnection = 1
        // A connection libfcgi drops while reading is closed at once; "attached", it would
        // wait for the client to close first, and a silent client would hold the worker.
        req.pointee.detached = 1
        guard FCGX_Accept_r(req) >= 0 else { return nil }
        // Input that ends between two params (the client hung up, or the timer shut it)
        // looks to libfcgi like the end of the params: it returns the request as whole and
        // only records the error (end of file or errno) on the input stream. Never serve
        // that: freed without a word (no empty answer) and closed at once.
        if FCGX_GetError(req.pointee.in) != 0 {
            FCGX_Free(req, 1)
            if Signals.readTimedOut == 0 { Self.report("dropped a connection that ended in the middle of its params") }
            return nil
        }
        req.pointee.detached = 0     // the end of stdin decides (skipLingeringClose)
        let incoming = Self.readRequest(req, bodyLimit: configuration.maxBodyBytes)
        Self.skipLingeringClose(req)  // a body too large to read: what is left, on the same clock
        return incoming
    }

    /// Tells the operator once per second at most (a stream of bad connections must not
    /// flood the log).
    static func report(_ message: String) {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        guard now.tv_sec != lastReport else { return }
        lastReport = now.tv_sec
        let line = "pinglass-fcgi worker \(getpid()): \(message)\n"
        _ = line.withCString { Glibc.write(2, $0, strlen($0)) }
    }
    nonisolated(unsafe) static var lastReport = 0

    private func serve(_ req: UnsafeMutablePointer<FCGX_Request>, _ incoming: Incoming) {
        if configuration.requestTimeoutSeconds > 0 { alarm(UInt32(configuration.requestTimeoutSeconds)) }
        let response: Response
        switch incoming {
        case .request(let request):
            response = handler(request)
        case .tooLarge:
            response = Self.error(413, "PAYLOAD_TOO_LARGE", "request body too large")
        case .truncated(let expected, let received):
            response = Self.error(400, "VALIDATION_ERROR", "request body ended after \(received) of its \(expected) bytes (Content-Length)")
        case .unfinished:
            response = Self.error(400, "VALIDATION_ERROR", "request did not end: its body was never closed")
        }
        Self.write(response, to: req)
        // One request per connection, whatever the client asked for: a kept connection would
        // tie this worker to one client (nginx is configured without fastcgi_keep_conn).
        req.pointee.keepConnection = 0
        FCGX_Finish_r(req)
        alarm(0)
    }

    /// The API's error shape, for the answers the worker gives without the handler.
    static func error(_ status: Int, _ code: String, _ message: String) -> Response {
        Response(status: status, contentType: "application/json; charset=utf-8",
                 body: #"{"success":false,"error":{"code":""# + code + #"","message":""# + message + #""}}"#)
    }

    static func param(_ req: UnsafeMutablePointer<FCGX_Request>, _ name: String) -> String? {
        FCGX_GetParam(name, req.pointee.envp).map { String(cString: $0) }
    }

    /// What came in: a request for the handler, or one the worker answers itself.
    enum Incoming {
        case request(Request)
        case tooLarge
        /// Fewer body bytes arrived than CONTENT_LENGTH promised (stdin ended, or the
        /// connection closed): never hand a truncated body to the handler.
        case truncated(expected: Int, received: Int)
        /// The whole body arrived but not the empty record that ends stdin (the connection
        /// closed, or the read time ran out, first): the request is not whole either.
        case unfinished
    }

    static func readRequest(_ req: UnsafeMutablePointer<FCGX_Request>, bodyLimit: Int) -> Incoming {
        let headers = Self.headers(req)
        let length = max(Int(param(req, "CONTENT_LENGTH") ?? "") ?? 0, 0)
        if length > bodyLimit { return .tooLarge }
        let (body, ended) = readBody(req, length: length)
        if body.count < length { return .truncated(expected: length, received: body.count) }
        if !ended { return .unfinished }
        let uri = param(req, "DOCUMENT_URI") ?? param(req, "SCRIPT_NAME") ?? "/"
        return .request(Request(method: param(req, "REQUEST_METHOD") ?? "GET",
                                path: uri,
                                queryString: param(req, "QUERY_STRING") ?? "",
                                headers: headers,
                                body: body,
                                requestID: param(req, "REQUEST_ID") ?? "",
                                remoteAddress: param(req, "REMOTE_ADDR") ?? ""))
    }

    /// The request's header fields from its params, in the order they came: each `HTTP_*`
    /// param is one field (`HTTP_X_FORWARDED_FOR` → `x-forwarded-for`), so a name sent twice
    /// keeps both values; `CONTENT_TYPE` is the `content-type` field. A param whose name is
    /// not a valid field name is skipped.
    static func headers(_ req: UnsafeMutablePointer<FCGX_Request>) -> HTTPFields {
        var headers = HTTPFields()
        var p = req.pointee.envp
        while let kv = p?.pointee {
            let s = String(cString: kv)
            if s.hasPrefix("HTTP_"), let eq = s.firstIndex(of: "=") {
                let name = s[s.index(s.startIndex, offsetBy: 5)..<eq].lowercased().replacingOccurrences(of: "_", with: "-")
                if let name = HTTPField.Name(name) { headers.append(HTTPField(name: name, value: String(s[s.index(after: eq)...]))) }
            }
            p = p! + 1
        }
        if let ct = param(req, "CONTENT_TYPE"), !ct.isEmpty { headers[.contentType] = ct }
        return headers
    }

    /// Up to `length` bytes of stdin (fewer if it ends first), then on to the end of stdin,
    /// dropping anything past `length`. `ended`: stdin ended with its closing record, not
    /// with an error (the connection closed, or the read timer shut it).
    static func readBody(_ req: UnsafeMutablePointer<FCGX_Request>, length: Int) -> (body: [UInt8], ended: Bool) {
        let input = req.pointee.in
        var body = [UInt8](repeating: 0, count: length)
        var got = 0
        while got < length {
            let n = body.withUnsafeMutableBytes { b in
                FCGX_GetStr(b.baseAddress!.assumingMemoryBound(to: CChar.self) + got, Int32(length - got), input)
            }
            if n <= 0 { break }
            got += Int(n)
        }
        if got < length { body.removeLast(length - got) }
        // libfcgi notices the end of stdin only when asked for more than the body.
        var scratch = [CChar](repeating: 0, count: 4096)
        while FCGX_HasSeenEOF(input) == 0 {
            if FCGX_GetStr(&scratch, Int32(scratch.count), input) <= 0 { break }
        }
        return (body, FCGX_HasSeenEOF(input) != 0 && FCGX_GetError(input) == 0)
    }

    /// libfcgi closes a connection "lingering": shutdown, then wait for nginx to close
    /// first, which costs a round trip per request. Once the request's stdin has reached
    /// EOF nginx sends nothing more, so a plain close is safe (no unread data, no reset).
    /// Runs while the request is read (on the read timer): only the stdin of a body too
    /// large to read is still open here.
    static func skipLingeringClose(_ req: UnsafeMutablePointer<FCGX_Request>) {
        var scratch = [CChar](repeating: 0, count: 4096)
        var rounds = 0
        while FCGX_HasSeenEOF(req.pointee.in) == 0 && rounds < 64 {
            if FCGX_GetStr(&scratch, Int32(scratch.count), req.pointee.in) <= 0 { break }
            rounds += 1
        }
        if FCGX_HasSeenEOF(req.pointee.in) != 0 { req.pointee.detached = 1 }
    }

    static func write(_ response: Response, to req: UnsafeMutablePointer<FCGX_Request>) {
        var head = response.cgiHead()
        head.withUTF8 { u in
            u.withMemoryRebound(to: CChar.self) { c in _ = FCGX_PutStr(c.baseAddress, Int32(c.count), req.pointee.out) }
        }
        if !response.body.isEmpty {
            response.body.withUnsafeBytes { b in
                _ = FCGX_PutStr(b.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(b.count), req.pointee.out)
            }
        }
    }
}

extension String {
    func replacingOccurrences(of target: Character, with replacement: Character) -> String {
        String(map { $0 == target ? replacement : $0 })
    }
}

/// Waits for a connection on the listening socket all workers share, with the stop signals
/// deliverable during the wait and only then. Through epoll with EPOLLEXCLUSIVE the kernel
/// wakes one idle worker per connection (ppoll woke every idle worker, and the losers' failed
/// accepts cost about a third of the throughput at 16 connections); ppoll is the fallback.
struct ConnectionWaiter {
    let listenFD: Int32
    let epollFD: Int32

    init(listenFD: Int32) {
        self.listenFD = listenFD
        epollFD = pinglass_listen_epoll(listenFD)
    }

    /// True when a connection may be waiting, false once a stop signal has arrived. A
    /// connection seen together with a stop is left to the other workers.
    func next() -> Bool {
        while Signals.stop == 0 {
            let ready = epollFD >= 0 ? pinglass_epoll_wait_with_signals(epollFD) > 0 : Signals.wait(readable: listenFD)
            if ready { return Signals.stop == 0 }
        }
        return false
    }
}

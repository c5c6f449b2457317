import CFastCGI
import HTTPCore
#if canImport(Glibc)
import Glibc
#endif

/// The accept loop of one pre-forked worker: accept, read the request, call the handler,
/// write the response, finish; exit after `maxRequests` or on a stop signal.
struct Worker {
    let listenFD: Int32
    let configuration: PoolConfiguration
    let handler: (Request) -> Response

    func run() -> Never {
        Signals.install(SIGQUIT) { _ in Signals.stop = 1 }
        Signals.install(SIGTERM) { _ in Signals.stop = 1 }
        Signals.ignore(SIGHUP)
        Signals.ignore(SIGPIPE)
        Signals.reset(SIGINT)
        Signals.reset(SIGCHLD)
        Signals.reset(SIGALRM)              // the per-request time limit ends the process
        _ = pinglass_set_parent_death_signal(SIGTERM)
        Signals.stop = 0

        // libfcgi keeps pointers into the request: it must not move.
        let req = UnsafeMutablePointer<FCGX_Request>.allocate(capacity: 1)
        req.initialize(to: FCGX_Request())
        FCGX_InitRequest(req, listenFD, FCGI_FAIL_ACCEPT_ON_INTR)

        var served = 0
        while Signals.stop == 0 {
            Signals.setStopSignalsBlocked(false)
            if Signals.stop != 0 { break }
            let rc = FCGX_Accept_r(req)
            Signals.setStopSignalsBlocked(true)
            if rc < 0 {
                if Signals.stop != 0 { break }
                continue                       // EINTR from another signal, or a dropped connection
            }
            if configuration.requestTimeoutSeconds > 0 { alarm(UInt32(configuration.requestTimeoutSeconds)) }
            let request = Self.readRequest(req, bodyLimit: configuration.maxBodyBytes)
            let response: Response
            if let request {
                response = handler(request)
            } else {
                response = Response(status: 413, contentType: "application/json; charset=utf-8",
                                     body: #"{"success":false,"error":{"code":"PAYLOAD_TOO_LARGE","message":"request body too large"}}"#)
            }
            Self.write(response, to: req)
            Self.skipLingeringClose(req)
            FCGX_Finish_r(req)
            alarm(0)
            served += 1
            if configuration.maxRequests > 0 && served >= configuration.maxRequests { break }
        }
        exit(0)
    }

    static func param(_ req: UnsafeMutablePointer<FCGX_Request>, _ name: String) -> String? {
        FCGX_GetParam(name, req.pointee.envp).map { String(cString: $0) }
    }

    static func readRequest(_ req: UnsafeMutablePointer<FCGX_Request>, bodyLimit: Int) -> Request? {
        var headers: [String: String] = [:]
        var p = req.pointee.envp
        while let kv = p?.pointee {
            let s = String(cString: kv)
            if s.hasPrefix("HTTP_"), let eq = s.firstIndex(of: "=") {
                let name = s[s.index(s.startIndex, offsetBy: 5)..<eq].lowercased().replacingOccurrences(of: "_", with: "-")
                headers[name] = String(s[s.index(after: eq)...])
            }
            p = p! + 1
        }
        if let ct = param(req, "CONTENT_TYPE"), !ct.isEmpty { headers["content-type"] = ct }
        let length = Int(param(req, "CONTENT_LENGTH") ?? "") ?? 0
        if length > bodyLimit { return nil }
        var body = [UInt8](repeating: 0, count: max(length, 0))
        var got = 0
        while got < length {
            let n = body.withUnsafeMutableBytes { b in
                FCGX_GetStr(b.baseAddress!.assumingMemoryBound(to: CChar.self) + got, Int32(length - got), req.pointee.in)
            }
            if n <= 0 { break }
            got += Int(n)
        }
        if got < length { body.removeLast(length - got) }
        let uri = param(req, "DOCUMENT_URI") ?? param(req, "SCRIPT_NAME") ?? "/"
        return Request(method: param(req, "REQUEST_METHOD") ?? "GET",
                       path: uri,
                       queryString: param(req, "QUERY_STRING") ?? "",
                       headers: headers,
                       body: body,
                       requestID: param(req, "REQUEST_ID") ?? "",
                       remoteAddress: param(req, "REMOTE_ADDR") ?? "")
    }

    /// libfcgi closes a connection "lingering": shutdown, then wait for nginx to close
    /// first, which costs a round trip per request. Once the request's stdin has reached
    /// EOF nginx sends nothing more, so a plain close is safe (no unread data, no reset).
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

import Foundation

/// A FastCGI connection straight to a worker socket, without nginx, so a test can send what
/// nginx never would: a body shorter than its `CONTENT_LENGTH`, or a request whose records
/// arrive only after something else has happened (a stop signal, say).
///
/// ```swift
/// let c = try FastCGIConnection(socketPath: stack.socket)
/// let res = try c.request(params: FastCGIConnection.params("GET", "/api/pricing"))
/// XCTAssertEqual(res.status, 200)
/// ```
public final class FastCGIConnection {
    /// What the worker answered: the CGI `Status:` line, the headers (lower-case names; the
    /// last of a repeated name), every header line in order (`fields`), the body.
    public struct Answer {
        public let status: Int
        public let headers: [String: String]
        public let fields: [(name: String, value: String)]
        public let body: [UInt8]
        public var bodyText: String { String(decoding: body, as: UTF8.self) }
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    enum RecordType: UInt8 {
        case beginRequest = 1, endRequest = 3, params = 4, stdin = 5, stdout = 6, stderr = 7
    }

    let fd: Int32
    let requestID: UInt16 = 1

    public init(socketPath: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let path = Array(socketPath.utf8)
        guard path.count < MemoryLayout.size(ofValue: addr.sun_path) else { throw Failure(description: "socket path too long") }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: path)
            raw[path.count] = 0
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            let why = String(cString: strerror(errno))
            close(fd)
            throw Failure(description: "connect \(socketPath): \(why)")
        }
    }

    deinit { close(fd) }

    /// The params nginx's `fastcgi_params` would send for `method path` (no query string).
    public static func params(_ method: String, _ path: String, contentLength: Int? = nil,
                              contentType: String? = nil) -> [(String, String)] {
        var p = [("REQUEST_METHOD", method), ("DOCUMENT_URI", path), ("SCRIPT_NAME", path),
                 ("REQUEST_URI", path), ("QUERY_STRING", ""), ("SERVER_PROTOCOL", "HTTP/1.1"),
                 ("REMOTE_ADDR", "127.0.0.1"), ("REQUEST_ID", "fcgi-test")]
        if let contentLength { p.append(("CONTENT_LENGTH", String(contentLength))) }
        if let contentType { p.append(("CONTENT_TYPE", contentType)) }
        return p
    }

    /// Sends a whole request (begin, params, `body` on stdin, end of stdin) and reads the answer.
    public func request(params: [(String, String)], body: [UInt8] = [], timeout: Double = 10) throws -> Answer {
        try sendBegin()
        try sendParams(params)
        try sendStdin(body)
        return try readAnswer(timeout: timeout)
    }

    /// FCGI_BEGIN_REQUEST, role responder, connection closed after the request.
    public func sendBegin() throws {
        try sendRecord(.beginRequest, [0, 1, 0, 0, 0, 0, 0, 0])
    }

    /// The params records, then the empty one that ends them.
    public func sendParams(_ params: [(String, String)]) throws {
        try sendStream(.params, Self.encode(params))
    }

    /// One params record holding whole name-value pairs, and no empty record ending the
    /// params: what a client that hangs up between two params has sent.
    public func sendParamsRecord(_ params: [(String, String)]) throws {
        try sendRecord(.params, Self.encode(params))
    }

    static func encode(_ params: [(String, String)]) -> [UInt8] {
        var content: [UInt8] = []
        for (name, value) in params {
            appendLength(Array(name.utf8).count, to: &content)
            appendLength(Array(value.utf8).count, to: &content)
            content += Array(name.utf8) + Array(value.utf8)
        }
        return content
    }

    /// `bytes` on stdin, then the empty record that says stdin is over.
    public func sendStdin(_ bytes: [UInt8]) throws {
        try sendStream(.stdin, bytes)
    }

    /// One stdin record and no end-of-stdin: the start of a body whose rest never comes.
    public func sendStdinRecord(_ bytes: [UInt8]) throws {
        try sendRecord(.stdin, bytes)
    }

    /// Shuts our sending side: the worker reads end-of-file mid-request but can still answer.
    public func closeSending() {
        shutdown(fd, Int32(SHUT_WR))
    }

    /// Reads stdout records until FCGI_END_REQUEST; fails if the worker closes first.
    public func readAnswer(timeout: Double = 10) throws -> Answer {
        var stdout: [UInt8] = []
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let header = try readExactly(8, deadline: deadline)
            let length = Int(header[4]) << 8 | Int(header[5])
            let content = try readExactly(length + Int(header[6]), deadline: deadline).prefix(length)
            switch RecordType(rawValue: header[1]) {
            case .stdout: stdout += content
            case .endRequest: return try Self.parse(stdout)
            default: continue
            }
        }
    }

    /// True when the worker has closed its end (the connection was dropped).
    public func isClosedByPeer() -> Bool {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, 0) > 0 else { return false }
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, Int32(MSG_PEEK) | Int32(MSG_DONTWAIT)) <= 0
    }

    // MARK: records

    func sendStream(_ type: RecordType, _ bytes: [UInt8]) throws {
        var rest = bytes[...]
        while !rest.isEmpty {
            let chunk = rest.prefix(65535)
            try sendRecord(type, Array(chunk))
            rest = rest.dropFirst(chunk.count)
        }
        try sendRecord(type, [])
    }

    func sendRecord(_ type: RecordType, _ content: [UInt8]) throws {
        let padding = (8 - content.count % 8) % 8
        let header: [UInt8] = [1, type.rawValue, UInt8(requestID >> 8), UInt8(requestID & 0xff),
                               UInt8(content.count >> 8), UInt8(content.count & 0xff), UInt8(padding), 0]
        try sendAll(header + content + [UInt8](repeating: 0, count: padding))
    }

    static func appendLength(_ n: Int, to out: inout [UInt8]) {
        if n < 128 {
            out.append(UInt8(n))
        } else {
            out += [UInt8((n >> 24) & 0x7f) | 0x80, UInt8((n >> 16) & 0xff), UInt8((n >> 8) & 0xff), UInt8(n & 0xff)]
        }
    }

    func sendAll(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw Failure(description: "send: \(String(cString: strerror(errno))) (the worker closed the connection)") }
            sent += n
        }
    }

    func readExactly(_ count: Int, deadline: Date) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ms = Int32(max(0, deadline.timeIntervalSinceNow * 1000))
            guard poll(&pfd, 1, ms) > 0 else { throw Failure(description: "no answer from the worker in time") }
            let n = out.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, count - got, 0) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw Failure(description: "the worker closed the connection without an answer") }
            got += n
        }
        return out
    }

    /// Splits the CGI answer (`Status: 400 Bad Request`, headers, blank line, body).
    static func parse(_ stdout: [UInt8]) throws -> Answer {
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        guard let end = (0...max(0, stdout.count - 4)).first(where: { Array(stdout[$0..<min($0 + 4, stdout.count)]) == separator }) else {
            throw Failure(description: "no CGI head in the answer")
        }
        var headers: [String: String] = [:]
        var fields: [(name: String, value: String)] = []
        for line in String(decoding: stdout[..<end], as: UTF8.self).components(separatedBy: "\r\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased(), value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            headers[name] = value
            fields.append((name, value))
        }
        let status = Int(headers["status"]?.prefix(3) ?? "200") ?? 0
        return Answer(status: status, headers: headers, fields: fields, body: Array(stdout[(end + 4)...]))
    }
}

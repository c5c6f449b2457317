import Foundation
import HTTPClient

/// A tiny HTTP/1.1 server on 127.0.0.1 for tests of outbound calls: one thread per
/// connection, `Connection: close`, answers from a handler (with an optional delay), and a
/// record of every request with its arrival time on the monotonic clock (`HTTPPacer.now()`),
/// so a test measures rates and ordering where the server sees them.
///
/// ```swift
/// let server = try LoopbackHTTPServer { req in .init(status: 200, body: Array("ok".utf8), delay: req.path == "/slow" ? 1 : 0) }
/// defer { server.stop() }
/// _ = try HTTPClient().send(HTTPRequest(url: server.url + "/fast"))
/// server.received.map(\.path)      // ["/fast"]
/// ```
public final class LoopbackHTTPServer: @unchecked Sendable {
    public struct Received: Sendable {
        public let method: String
        /// The request target: path and query.
        public let path: String
        /// Header names in lower case.
        public let headers: [String: String]
        public let body: [UInt8]
        /// Monotonic seconds when the request head had arrived.
        public let arrivedAt: Double
        /// Monotonic seconds when the answer had been written (nil until then).
        public var answeredAt: Double?
    }

    public struct Reply: Sendable {
        public var status: Int
        public var headers: [(String, String)]
        public var body: [UInt8]
        /// Seconds to wait before answering.
        public var delay: Double
        public init(status: Int = 200, headers: [(String, String)] = [], body: [UInt8] = [], delay: Double = 0) {
            self.status = status; self.headers = headers; self.body = body; self.delay = delay
        }
    }

    public let port: Int
    public var url: String { "http://127.0.0.1:\(port)" }
    private let fd: Int32
    private let handler: @Sendable (Received) -> Reply
    private let lock = NSLock()
    private var log: [Received] = []
    private var connections = 0
    private var stopped = false

    public init(handler: @escaping @Sendable (Received) -> Reply) throws {
        self.handler = handler
        (fd, port) = try LoopbackListener.open(backlog: 128, reuseAddress: true)
        Thread { [self] in acceptLoop() }.start()
    }

    /// Connections accepted so far (a request or not).
    public var accepted: Int { lock.lock(); defer { lock.unlock() }; return connections }

    /// Every request so far, in arrival order.
    public var received: [Received] { lock.lock(); defer { lock.unlock() }; return log }

    /// Stops accepting. The accept loop closes the socket itself once its `accept` fails:
    /// closing it here could let the next server of the test reuse the descriptor's number
    /// while this loop is about to call `accept` on it again.
    public func stop() {
        lock.lock(); stopped = true; lock.unlock()
        shutdown(fd, Int32(SHUT_RDWR))
    }

    private func acceptLoop() {
        while true {
            let conn = accept(fd, nil, nil)
            if conn < 0 {
                if errno == EINTR { continue }
                close(fd)
                return
            }
            lock.lock(); connections += 1; lock.unlock()
            Thread { [self] in serve(conn) }.start()
        }
    }

    private func serve(_ conn: Int32) {
        defer { close(conn) }
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        func readMore() -> Bool {
            let n = chunk.withUnsafeMutableBytes { recv(conn, $0.baseAddress, $0.count, 0) }
            if n > 0 { buffer.append(contentsOf: chunk[0..<n]) }
            return n > 0
        }
        var headEnd: Int?
        while headEnd == nil {
            guard readMore() else { return }
            headEnd = buffer.firstRange(of: Array("\r\n\r\n".utf8))?.upperBound
        }
        let arrived = HTTPPacer.now()
        let head = String(decoding: buffer[..<headEnd!], as: UTF8.self).split(separator: "\r\n")
        let requestLine = head.first?.split(separator: " ") ?? []
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let length = Int(headers["content-length"] ?? "") ?? 0
        while buffer.count - headEnd! < length { guard readMore() else { return } }
        var received = Received(method: requestLine.first.map(String.init) ?? "", path: requestLine.dropFirst().first.map(String.init) ?? "",
                                headers: headers, body: Array(buffer[headEnd!..<(headEnd! + length)]), arrivedAt: arrived)
        lock.lock(); let index = log.count; log.append(received); lock.unlock()

        let reply = handler(received)
        if reply.delay > 0 { Thread.sleep(forTimeInterval: reply.delay) }
        var out = "HTTP/1.1 \(reply.status) X\r\nContent-Length: \(reply.body.count)\r\nConnection: close\r\n"
        for (k, v) in reply.headers { out += "\(k): \(v)\r\n" }
        let bytes = Array((out + "\r\n").utf8) + reply.body
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { send(conn, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }
            sent += n
        }
        received.answeredAt = HTTPPacer.now()
        lock.lock(); log[index] = received; lock.unlock()
    }
}

import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A listening socket on 127.0.0.1 for client tests: it records each raw request and answers
/// with a fixed response, or (`answer: nil`) never answers, so a client times out.
/// Not a fake of any service: it only shows what a client sent, or how it handles a status.
///
/// ```swift
/// let server = try LoopbackServer(answer: "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
/// defer { server.stop() }
/// _ = try HTTPClient().send(HTTPRequest(url: server.url + "/x"))
/// server.requests.first   // "GET /x HTTP/1.1\r\nHost: …"
/// ```
public final class LoopbackServer: @unchecked Sendable {
    public let port: Int
    private let fd: Int32
    private let lock = NSLock()
    private var recorded: [String] = []
    private var stopped = false
    private var serving = false   // a thread accepts (and closes the socket when stopped)

    public var url: String { "http://127.0.0.1:\(port)" }
    public var requests: [String] { lock.withLock { recorded } }

    public init(answer: String?) throws {
        (fd, port) = try LoopbackListener.open(backlog: 16)
        guard let answer else { return }   // listens, never accepts: requests time out
        serving = true
        Thread.detachNewThread { [self] in serve(Array(answer.utf8)) }
    }

    private func serve(_ answer: [UInt8]) {
        while true {
            let client = accept(fd, nil, nil)
            // Shut down by stop(): the descriptor is closed here, by the only thread that
            // uses it, so a server started next cannot get its number while we still accept.
            guard client >= 0 else { close(fd); return }
            var received: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            while !Self.isComplete(received) {
                let n = read(client, &buffer, buffer.count)
                if n <= 0 { break }
                received += buffer[0..<n]
            }
            lock.withLock { recorded.append(String(decoding: received, as: UTF8.self)) }
            _ = answer.withUnsafeBytes { write(client, $0.baseAddress, $0.count) }
            close(client)
        }
    }

    /// Headers read and as many body bytes as Content-Length says.
    static func isComplete(_ bytes: [UInt8]) -> Bool {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let end = text.range(of: "\r\n\r\n") else { return false }
        let head = text[..<end.lowerBound].lowercased()
        let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
            .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
        return text.utf8.count - text[..<end.upperBound].utf8.count >= length
    }

    public func stop() {
        lock.withLock {
            guard !stopped else { return }
            stopped = true
            shutdown(fd, Int32(SHUT_RDWR))
            if !serving { close(fd) }
        }
    }

    deinit { stop() }
}

/// A listening TCP socket on 127.0.0.1, for the tests' loopback servers: on a port no other
/// server of this run had (a client's kept-alive connection to a server stopped a moment ago
/// must not reach this one), or any free one if that port is taken.
enum LoopbackListener {
    struct ListenFailed: Error, CustomStringConvertible {
        let errno: Int32
        var description: String { "cannot listen on 127.0.0.1 (errno \(errno))" }
    }

    /// The listening descriptor and its port.
    static func open(backlog: Int32, reuseAddress: Bool = false) throws -> (fd: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if reuseAddress {
            var on: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        addr.sin_port = in_port_t(UInt16(Subprocess.freePort()).bigEndian)
        let ok = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                (bind(fd, sa, len) == 0 || { p.pointee.sin_port = 0; return bind(fd, sa, len) == 0 }())
                    && listen(fd, backlog) == 0 && getsockname(fd, sa, &len) == 0
            }
        }
        guard ok else { let e = errno; close(fd); throw ListenFailed(errno: e) }
        return (fd, Int(UInt16(bigEndian: addr.sin_port)))
    }
}

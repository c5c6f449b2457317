import CLibPQ
#if canImport(Glibc)
import Glibc
#endif

/// PostgreSQL `LISTEN` on a connection of its own: a duty sleeps between passes in `wait`,
/// and a committed `pg_notify(channel, …)` ends the sleep at once (a new job reaches
/// `dispatch` within a fraction of a second instead of at the next tick). A broken
/// connection degrades to a plain timed sleep and is re-opened on the next wait.
///
/// ```swift
/// let listener = Listener(conninfo: url, channels: ["dispatch"])
/// let notified = listener.wait(timeout: 10)
/// ```
public final class Listener {
    public let conninfo: String
    public let channels: [String]
    private var connection: Connection?

    public init(conninfo: String, channels: [String]) {
        self.conninfo = conninfo
        self.channels = channels
    }

    /// Waits until one of the channels is notified or `timeout` seconds pass. True when
    /// notified (notifications that arrived since the last wait count at once).
    @discardableResult
    public func wait(timeout: Double) -> Bool {
        let deadline = monotonic() + max(0, timeout)
        guard let listener = try? listening(), let c = listener.conn else {
            sleepUntil(deadline)
            return false
        }
        while true {
            if drain(c) { return true }
            let left = deadline - monotonic()
            if left <= 0 { return false }
            var fds = pollfd(fd: PQsocket(c), events: Int16(POLLIN), revents: 0)
            let ready = poll(&fds, 1, Int32(min(left, 3600) * 1000) + 1)
            if ready < 0 && errno != EINTR { break }
            if ready > 0 && PQconsumeInput(c) == 0 { break }      // the server went away
        }
        connection = nil
        sleepUntil(deadline)
        return false
    }

    /// The listening connection, opened (and LISTEN sent) when needed.
    private func listening() throws -> Connection? {
        if let connection, let c = connection.conn, PQstatus(c) == CONNECTION_OK { return connection }
        let fresh = try Connection(conninfo)
        for channel in channels { try fresh.execute("LISTEN \"\(channel.replacingOccurrences("\"", "\"\""))\"", retry: .never) }
        connection = fresh
        return fresh
    }

    /// Consumes queued notifications; true when there was any.
    private func drain(_ c: OpaquePointer) -> Bool {
        _ = PQconsumeInput(c)
        var any = false
        while let n = PQnotifies(c) {
            any = true
            PQfreemem(n)
        }
        return any
    }

    private func monotonic() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    private func sleepUntil(_ deadline: Double) {
        var left = deadline - monotonic()
        while left > 0 {
            var req = timespec(tv_sec: Int(left), tv_nsec: Int((left - Double(Int(left))) * 1e9))
            var rem = timespec()
            if nanosleep(&req, &rem) == 0 { break }
            left = deadline - monotonic()
        }
    }
}

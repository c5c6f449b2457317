import Foundation
import Logging
import PinGlass

/// Log lines collected in memory: a `Logger` whose lines, written by PinGlass's own log
/// handler, land here instead of on stderr. Give it to the in-process transport to see what
/// a request logged.
///
/// ```swift
/// let capture = LogCapture()
/// let app = try InProcessApp(database: db, log: capture.logger())
/// _ = try app.client.get("/api/pricing")
/// capture.lines            // the request's log lines, JSON, newline included
/// ```
public final class LogCapture: @unchecked Sendable {
    private let lock = NSLock()
    private var collected: [String] = []

    public init() {}

    /// Every line so far, in the order written.
    public var lines: [String] { lock.withLock { collected } }

    public func append(_ line: String) { lock.withLock { collected.append(line) } }

    /// A logger writing JSON lines into this capture (its label is each line's `component`).
    public func logger(label: String = "http", level: Logger.Level = .trace) -> Logger {
        Logger(label: label) { [self] component in
            PinGlassLogHandler(component: component, json: true, level: level, output: { self.append($0) })
        }
    }
}

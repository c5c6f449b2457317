import Logging
#if canImport(Glibc)
import Glibc
#endif

/// One log line per event on stderr: JSON by default (time, level, message, component,
/// pid, request_id and the rest of the metadata), or `text` for people at a terminal.
/// Metadata keys that look like secrets are masked, whatever the caller passed.
///
/// ```swift
/// PinGlassLog.bootstrap(format: "json", level: "info")
/// var log = Logger(label: "payments")
/// log[metadataKey: "request_id"] = "\(request.requestID)"
/// log.info("payment created", metadata: ["order_id": "\(orderID)"])
/// ```
public struct PinGlassLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    let component: String
    let json: Bool

    public init(component: String, json: Bool, level: Logger.Level) {
        self.component = component
        self.json = json
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    static let secretMarkers = ["password", "secret", "token", "authorization", "api_key", "apikey", "init_data", "cookie"]

    static func isSecret(_ key: String) -> Bool {
        let k = key.lowercased()
        return secretMarkers.contains { k.contains($0) }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let m = event.metadata { merged.merge(m) { $1 } }
        if let e = event.error { merged["error"] = "\(e)" }
        let line = json ? jsonLine(event, merged) : textLine(event, merged)
        var bytes = line
        bytes.withUTF8 { buf in _ = write(2, buf.baseAddress, buf.count) }
    }

    func jsonLine(_ event: LogEvent, _ meta: Logger.Metadata) -> String {
        var fields: [(String, JSON)] = [
            ("time", .string(System.iso8601(System.now()))),
            ("level", .string(event.level.rawValue)),
            ("message", .string(event.message.description)),
            ("component", .string(component)),
            ("pid", .int(Int(getpid()))),
        ]
        for key in meta.keys.sorted() {
            fields.append((key, .string(Self.isSecret(key) ? "[redacted]" : "\(meta[key]!)")))
        }
        return JSON.object(fields).serialized + "\n"
    }

    func textLine(_ event: LogEvent, _ meta: Logger.Metadata) -> String {
        var s = "\(System.iso8601(System.now())) \(event.level.rawValue.uppercased()) [\(component):\(getpid())] \(event.message)"
        for key in meta.keys.sorted() {
            s += " \(key)=\(Self.isSecret(key) ? "[redacted]" : "\(meta[key]!)")"
        }
        return s + "\n"
    }
}

public enum PinGlassLog {
    /// Installs the handler for the whole process; call once, first thing in `main`.
    public static func bootstrap(format: String = "json", level: String = "info") {
        let lvl = Logger.Level(rawValue: level) ?? .info
        LoggingSystem.bootstrap { label in PinGlassLogHandler(component: label, json: format != "text", level: lvl) }
    }
}

import WebURL
import Logging
import JSON
import Platform
import PinGlassConfig
#if canImport(Glibc)
import Glibc
#endif

/// One log line per event on stderr: JSON by default (time, level, message, component,
/// pid, request_id and the rest of the metadata), or `text` for people at a terminal.
/// Metadata keys that look like secrets are masked and URLs are redacted, whatever the
/// caller passed; in both formats outside text can never break or forge a line.
///
/// ```swift
/// PinGlassLog.bootstrap(format: .json, level: .info)
/// var log = Logger(label: "payments")
/// log[metadataKey: "request_id"] = "\(request.requestID)"
/// log.info("payment created", metadata: ["order_id": "\(orderID)"])
/// ```
public struct PinGlassLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    let component: String
    let json: Bool
    let output: @Sendable (String) -> Void

    /// `output` receives each finished line (newline included); stderr unless a test captures.
    public init(component: String, json: Bool, level: Logger.Level,
                output: @escaping @Sendable (String) -> Void = PinGlassLogHandler.writeToStderr) {
        self.component = component
        self.json = json
        self.logLevel = level
        self.output = output
    }

    public static let writeToStderr: @Sendable (String) -> Void = { line in
        var bytes = line
        bytes.withUTF8 { buf in _ = write(2, buf.baseAddress, buf.count) }
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
        output(json ? jsonLine(event, merged) : textLine(event, merged))
    }

    /// What a line may show, whatever the format: the message and metadata values with every
    /// URL redacted (`HTTPURL.redactingURLs`), secret-looking keys masked, keys sorted.
    func safeFields(_ event: LogEvent, _ meta: Logger.Metadata) -> (message: String, fields: [(String, String)]) {
        let fields = meta.keys.sorted().map { key in
            (key, Self.isSecret(key) ? "[redacted]" : HTTPURL.redactingURLs(in: "\(meta[key]!)"))
        }
        return (HTTPURL.redactingURLs(in: event.message.description), fields)
    }

    func jsonLine(_ event: LogEvent, _ meta: Logger.Metadata) -> String {
        let safe = safeFields(event, meta)
        // Log lines carry the machine's real time, whatever clock a test gives the domain.
        let fields: [(String, JSON)] = [
            ("time", .string(System.iso8601(Clock.system.now()))),
            ("level", .string(event.level.rawValue)),
            ("message", .string(safe.message)),
            ("component", .string(component)),
            ("pid", .int(Int(getpid()))),
        ] + safe.fields.map { ($0.0, .string($0.1)) }
        return JSON.object(fields).serialized + "\n"
    }

    /// `time LEVEL [component:pid] message key=value key="quoted value"`. Control characters
    /// are escaped, so no input can start a line of its own; values with spaces, `=` or
    /// quotes are quoted, so no input can pose as another field.
    func textLine(_ event: LogEvent, _ meta: Logger.Metadata) -> String {
        let safe = safeFields(event, meta)
        var s = "\(System.iso8601(Clock.system.now())) \(event.level.rawValue.uppercased()) [\(Self.escaped(component)):\(getpid())] \(Self.escaped(safe.message))"
        for (key, value) in safe.fields {
            s += " \(Self.escaped(key))=\(Self.quotedIfNeeded(value))"
        }
        return s + "\n"
    }

    /// Backslashes and control characters escaped (`\n`, `\u{1b}`); everything else as is.
    static func escaped(_ s: String) -> String {
        guard s.unicodeScalars.contains(where: { $0 == "\\" || $0.isControlOrLineSeparator }) else { return s }
        var out = ""
        for u in s.unicodeScalars {
            switch u {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.isControlOrLineSeparator: out += "\\u{\(String(u.value, radix: 16))}"
            default: out.unicodeScalars.append(u)
            }
        }
        return out
    }

    /// A value as is when it is one plain word, else as a JSON string literal.
    static func quotedIfNeeded(_ s: String) -> String {
        let plain = !s.isEmpty && !s.unicodeScalars.contains { $0 == " " || $0 == "=" || $0 == "\"" || $0 == "\\" || $0.isControlOrLineSeparator }
        return plain ? s : JSON.string(s).serialized
    }
}

public enum PinGlassLog {
    /// Installs the handler for the whole process; call once, first thing in `main`.
    public static func bootstrap(format: LogFormat = .json, level: LogLevel = .info) {
        let lvl = Logger.Level(rawValue: level.rawValue) ?? .info
        LoggingSystem.bootstrap { label in PinGlassLogHandler(component: label, json: format == .json, level: lvl) }
    }
}

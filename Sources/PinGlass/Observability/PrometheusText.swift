/// The Prometheus text exposition format, version 0.0.4: families declared once (one HELP
/// and one TYPE line each), their samples grouped under them whatever order they were added
/// in, label values escaped (`\\`, `\"`, `\n`), families in declaration order.
///
/// ```swift
/// var text = PrometheusText()
/// text.declare("pinglass_jobs", .gauge, "Generation jobs by status.")
/// text.add("pinglass_jobs", ["status": "queued"], 3)
/// let body = text.render()
/// // # HELP pinglass_jobs Generation jobs by status.
/// // # TYPE pinglass_jobs gauge
/// // pinglass_jobs{status="queued"} 3
/// ```
public struct PrometheusText: Sendable {
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    public enum Kind: String, Sendable {
        case counter, gauge, histogram
    }

    struct Family: Sendable {
        let name: String
        let kind: Kind
        let help: String
        var samples: [String] = []
    }

    private var families: [Family] = []
    private var index: [String: Int] = [:]

    public init() {}

    /// Declares a family; declaring it again with the same kind changes nothing.
    public mutating func declare(_ name: String, _ kind: Kind, _ help: String) {
        precondition(Self.isValidName(name, colons: true), "invalid metric name \(name)")
        if let i = index[name] {
            precondition(families[i].kind == kind, "\(name) declared as \(families[i].kind) and \(kind)")
            return
        }
        index[name] = families.count
        families.append(Family(name: name, kind: kind, help: help))
    }

    /// One sample of a declared family. Labels keep the order given (`KeyValuePairs`).
    public mutating func add(_ name: String, _ labels: KeyValuePairs<String, String> = [:], _ value: Double) {
        add(name, labels.map { ($0.key, $0.value) }, value)
    }

    public mutating func add(_ name: String, _ labels: [(String, String)], _ value: Double) {
        guard let i = index[name] else { preconditionFailure("sample of undeclared family \(name)") }
        var line = name
        if !labels.isEmpty {
            line += "{" + labels.map { k, v in
                precondition(Self.isValidName(k, colons: false) && !k.hasPrefix("__"), "invalid label name \(k)")
                return k + "=\"" + Self.escapeLabelValue(v) + "\""
            }.joined(separator: ",") + "}"
        }
        families[i].samples.append(line + " " + Self.format(value))
    }

    /// One histogram series of a declared `.histogram` family: `name_bucket{…,le="…"}` per
    /// cumulative bucket (the last bound `+Inf`), then `name_sum` and `name_count`.
    public mutating func addHistogram(_ name: String, _ labels: [(String, String)], buckets: [(le: Double, count: UInt64)],
                                      sum: Double) {
        guard let i = index[name] else { preconditionFailure("sample of undeclared family \(name)") }
        precondition(families[i].kind == .histogram, "\(name) is not a histogram")
        precondition(buckets.last?.le == .infinity, "a histogram's last bucket is +Inf")
        func line(_ suffix: String, _ extra: [(String, String)], _ value: Double) -> String {
            let all = labels + extra
            precondition(all.allSatisfy { Self.isValidName($0.0, colons: false) && !$0.0.hasPrefix("__") }, "invalid label name")
            let body = all.isEmpty ? "" : "{" + all.map { $0.0 + "=\"" + Self.escapeLabelValue($0.1) + "\"" }.joined(separator: ",") + "}"
            return name + suffix + body + " " + Self.format(value)
        }
        for b in buckets { families[i].samples.append(line("_bucket", [("le", Self.format(b.le))], Double(b.count))) }
        families[i].samples.append(line("_sum", [], sum))
        families[i].samples.append(line("_count", [], Double(buckets.last?.count ?? 0)))
    }

    public func render() -> String {
        var out = ""
        for f in families {
            out += "# HELP \(f.name) \(Self.escapeHelp(f.help))\n# TYPE \(f.name) \(f.kind.rawValue)\n"
            for s in f.samples { out += s + "\n" }
        }
        return out
    }

    /// Label values may hold anything: backslash, double quote and line feed are escaped.
    static func escapeLabelValue(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// HELP text escapes backslash and line feed only.
    static func escapeHelp(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// Whole numbers without a fraction (counts, unix seconds), others as Swift prints them
    /// (shortest round-trip form, which Prometheus parses), and the special values by name.
    static func format(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return String(v)
    }

    /// `[a-zA-Z_:][a-zA-Z0-9_:]*` for metric names, without `:` for label names.
    static func isValidName(_ s: String, colons: Bool) -> Bool {
        guard let first = s.utf8.first else { return false }
        func letter(_ b: UInt8) -> Bool { (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b == 95 || (colons && b == 58) }
        return letter(first) && s.utf8.allSatisfy { letter($0) || ($0 >= 48 && $0 <= 57) }
    }
}

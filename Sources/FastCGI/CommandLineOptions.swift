#if canImport(Glibc)
import Glibc
#endif

/// The command line of a pool executable (`pinglass-fcgi`, `pinglass-sim`): `--name value`
/// or `--name=value`, `-h/--help`, one clear message and exit 2 for anything wrong. The pool
/// options are read in one place for both.
///
/// ```swift
/// let options = CommandLineOptions(program: "pinglass-fcgi", usage: usage, extra: ["--env-file"])
/// let pool = options.poolConfiguration()
/// ```
public struct CommandLineOptions {
    public static let poolOptions = ["--socket", "--workers", "--max-requests", "--request-timeout", "--read-timeout", "--stop-timeout", "--socket-mode"]

    public let program: String
    public private(set) var values: [String: String] = [:]

    /// Parses `CommandLine.arguments`; prints `usage` and exits 0 on `--help`.
    public init(program: String, usage: String, extra: [String] = [], arguments: [String] = Array(CommandLine.arguments.dropFirst())) {
        self.program = program
        let known = Self.poolOptions + extra
        var args = arguments[...]
        while let a = args.popFirst() {
            if a == "-h" || a == "--help" { print(usage); exit(0) }
            var name = a, value: String?
            if a.hasPrefix("--"), let eq = a.firstIndex(of: "=") {
                name = String(a[..<eq])
                value = String(a[a.index(after: eq)...])
            }
            guard known.contains(name) else { fail("unknown option \(a) (see --help)") }
            if value == nil {
                guard let next = args.popFirst() else { fail("\(name) needs a value") }
                value = next
            }
            values[name] = value
        }
    }

    public subscript(_ name: String) -> String? { values[name] }

    public func fail(_ message: String) -> Never {
        writeStderr("\(program): \(message)")
        exit(2)
    }

    /// A time as the `pinglass` duties write it: `90s`, `15m`, `1h`, `500ms`, `1d`, or plain
    /// seconds. nil for anything else (negative, not finite, ten years or more).
    public static func duration(_ text: String) -> Double? {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400)]
        var number = Substring(text), factor = 1.0
        if let (suffix, f) = units.first(where: { text.hasSuffix($0.0) }) {
            number = text.dropLast(suffix.count)
            factor = f
        }
        guard let v = Double(number), v >= 0, v * factor < 10 * 365 * 86_400 else { return nil }
        return v * factor
    }

    /// A duration option kept in whole seconds (`60`, `60s` and `1m` are the same).
    public func seconds(_ name: String, default def: Int, range: ClosedRange<Int>) -> Int {
        guard let v = values[name] else { return def }
        guard let s = Self.duration(v), s == s.rounded(), (Double(range.lowerBound)...Double(range.upperBound)).contains(s) else {
            fail("\(name) must be a duration in whole seconds from \(range.lowerBound)s to \(range.upperBound)s, like 90s or 2m")
        }
        return Int(s)
    }

    public func int(_ name: String, default def: Int, range: ClosedRange<Int>) -> Int {
        guard let v = values[name] else { return def }
        guard let n = Int(v), range.contains(n) else {
            fail("\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return n
    }

    /// The pool options: `--socket` is required, the rest have defaults.
    public func poolConfiguration(defaultWorkers: Int = 4) -> PoolConfiguration {
        guard let socket = values["--socket"] else { fail("--socket PATH is required (see --help)") }
        var c = PoolConfiguration(socketPath: socket)
        c.workers = int("--workers", default: defaultWorkers, range: 1...256)
        c.maxRequests = int("--max-requests", default: 0, range: 0...10_000_000)
        c.requestTimeoutSeconds = seconds("--request-timeout", default: 60, range: 0...3600)
        c.readTimeoutSeconds = seconds("--read-timeout", default: 10, range: 1...3600)
        c.stopTimeoutSeconds = seconds("--stop-timeout", default: 30, range: 1...3600)
        if let mode = values["--socket-mode"] {
            guard let m = UInt32(mode, radix: 8), m <= 0o777 else { fail("--socket-mode must be octal, like 0660") }
            c.socketMode = m
        } else {
            c.socketMode = 0o660
        }
        return c
    }
}

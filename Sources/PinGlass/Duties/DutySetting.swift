/// One setting of a duty, declared once: its command-line name, what it means, how it is
/// written (a count, or a duration such as `30s`, `15m`, `2h`, `1d`), where it lives in the
/// duty's `Config` and the range it must lie in. Each `Config` lists its settings in
/// `settings`; the `pinglass` command builds the duty's options, their defaults (the values
/// of `Config()`) and `--help` from that list, and `validate()` checks the same list.
///
/// ```swift
/// extension Pruner.Config {
///     public static var settings: [DutySetting<Self>] {
///         [.days("deliveries", \.deliverySeconds, in: 7...3650, "Keep sent and failed Telegram deliveries this long."),
///          .count("batch-size", \.batchSize, in: 100...100_000, "Rows deleted per statement.")]
///     }
/// }
/// try Pruner.Config().validate()        // every setting within its range
/// ```
public struct DutySetting<Config> {
    /// Where the value lives and how it is written on the command line.
    public enum Field {
        /// A plain number (`--batch-size 20`).
        case count(WritableKeyPath<Config, Int>)
        /// A duration kept in whole seconds (`--lease 2m`; a fraction is dropped).
        case wholeSeconds(WritableKeyPath<Config, Int>)
        /// A duration kept in seconds with a fraction (`--chat-interval 500ms`).
        case seconds(WritableKeyPath<Config, Double>)
    }

    /// The name on the command line without its dashes, and in the refusal (`--lease must be …`).
    public let name: String
    public let field: Field
    /// The `--help` line.
    public let help: String
    /// False for a setting tuned in code only: checked with the others, not offered as a flag.
    public let onCommandLine: Bool
    /// Throws `DutyConfigError` when the value in `config` is out of range.
    public let check: (Config) throws -> Void

    /// Whether the value is a time (shown and read as a duration).
    public var isDuration: Bool {
        if case .count = field { return false }
        return true
    }

    public static func count(_ name: String, _ path: WritableKeyPath<Config, Int>, in range: ClosedRange<Int>,
                             _ help: String, onCommandLine: Bool = true) -> Self {
        Self(name: name, field: .count(path), help: help, onCommandLine: onCommandLine) {
            try DutyConfigError.require(name, $0[keyPath: path], in: range)
        }
    }

    /// A duration in whole seconds, refused with its range in seconds.
    public static func seconds(_ name: String, _ path: WritableKeyPath<Config, Int>, in range: ClosedRange<Int>,
                               _ help: String, onCommandLine: Bool = true) -> Self {
        Self(name: name, field: .wholeSeconds(path), help: help, onCommandLine: onCommandLine) {
            try DutyConfigError.require(name, $0[keyPath: path], in: range, unit: "s")
        }
    }

    /// A duration in seconds with a fraction, refused with its range in seconds.
    public static func seconds(_ name: String, _ path: WritableKeyPath<Config, Double>, in range: ClosedRange<Double>,
                               _ help: String, onCommandLine: Bool = true) -> Self {
        Self(name: name, field: .seconds(path), help: help, onCommandLine: onCommandLine) {
            try DutyConfigError.require(name, $0[keyPath: path], in: range, unit: "s")
        }
    }

    /// A duration in whole seconds whose range depends on other settings (a lease that must
    /// outlast the calls made under it).
    public static func seconds(_ name: String, _ path: WritableKeyPath<Config, Int>, in range: @escaping (Config) -> ClosedRange<Int>,
                               _ help: String) -> Self {
        Self(name: name, field: .wholeSeconds(path), help: help, onCommandLine: true) {
            try DutyConfigError.require(name, $0[keyPath: path], in: range($0), unit: "s")
        }
    }

    /// A duration in seconds with a fraction whose range depends on other settings.
    public static func seconds(_ name: String, _ path: WritableKeyPath<Config, Double>, in range: @escaping (Config) -> ClosedRange<Double>,
                               _ help: String) -> Self {
        Self(name: name, field: .seconds(path), help: help, onCommandLine: true) {
            try DutyConfigError.require(name, $0[keyPath: path], in: range($0), unit: "s")
        }
    }

    /// A duration kept in whole seconds whose range is in whole days (retention periods):
    /// refused with the range and the value in days.
    public static func days(_ name: String, _ path: WritableKeyPath<Config, Int>, in days: ClosedRange<Int>,
                            _ help: String) -> Self {
        Self(name: name, field: .wholeSeconds(path), help: help, onCommandLine: true) {
            try DutyConfigError.require(name, $0[keyPath: path] / 86_400, in: days, unit: "d")
        }
    }

    /// The same setting kept in a part of a larger configuration (a shared policy inside a
    /// duty's `Config`).
    public func within<Outer>(_ part: WritableKeyPath<Outer, Config>) -> DutySetting<Outer> {
        let field: DutySetting<Outer>.Field
        switch self.field {
        case .count(let p): field = .count(part.appending(path: p))
        case .wholeSeconds(let p): field = .wholeSeconds(part.appending(path: p))
        case .seconds(let p): field = .seconds(part.appending(path: p))
        }
        let check = self.check
        return DutySetting<Outer>(name: name, field: field, help: help, onCommandLine: onCommandLine) { try check($0[keyPath: part]) }
    }
}

/// A duty's settings: plain values with named defaults, declared once in `settings` and
/// checked before any work starts.
public protocol DutyConfig: Sendable {
    /// A configuration with every default.
    init()
    /// Every setting, in the order `--help` lists them.
    static var settings: [DutySetting<Self>] { get }
    /// Throws `DutyConfigError` naming the setting (as its command-line flag) and the rule.
    /// The default checks each of `settings`; a duty with a rule across settings adds it.
    func validate() throws
}

extension DutyConfig {
    public func validate() throws { try validateSettings() }

    /// Each of `settings` within its range, in their order.
    public func validateSettings() throws {
        for setting in Self.settings { try setting.check(self) }
    }
}

import JSON
import PinGlassConfig

// Where duties live. `Duties/` holds only the framework every cron duty shares: the `Duty`
// protocol and its settings and report (this file), `DutyRunner` (loop, deadline, log line,
// exit code) and `DutyHeartbeats` (one row per duty and host, read by health). Each duty
// lives with the capability whose rows it moves: `Dispatcher` and `KiePoller` in
// `Generation/`, `Deliverer` in `Delivery/`, `RefundSender` in `Refunds/`, `Reconciler` in
// `Payments/`. Why: a duty is the other half of its capability, not a kind of its own. It
// moves the same rows through the same guarded transitions as the requests do, so whoever
// changes refunds finds the code that sends them beside the code that books them, and a
// change to a state machine cannot miss the duty that drives it. The duties that look
// across every capability live in `Maintenance/`: the sweep (stale leases, overdue rows,
// and the alerts it raises), the prune of old rows and the hourly invariant audit; the
// operators' audit trail (`AdminAudit`) sits there too. Operator alerts themselves
// (`Alerts`) are raised by requests and duties alike and live in `Observability/`.

/// A background duty run by cron (`pinglass <duty> --for 55s --every 10s`): one small type
/// per duty, River style. Its `Config` documents every setting with a named default and
/// lists them once (`DutyConfig.settings`: flag, help, range, in `DutySetting.swift`), checked
/// when the duty is made; `runOnce` does one bounded pass and says what it did.
/// `DutyRunner` owns everything around a pass (looping, deadline, heartbeat, log, exit code).
///
/// ```swift
/// struct Pruner: Duty {
///     static let name = DutyName.prune
///     let config: Config
///     init(config: Config) throws { try config.validate(); self.config = config }
///     func runOnce(now: Double, deadline: Double) throws -> PruneReport { … }
/// }
/// let outcome = DutyRunner(database: db, schedule: try DutySchedule(runFor: 55, every: 10)).run(try Pruner(config: .init()))
/// ```
public protocol Duty {
    associatedtype Config: DutyConfig
    associatedtype Report: DutyReport
    /// The duty's entry in the registry (health lists every registered name).
    static var name: DutyName { get }
    var config: Config { get }
    /// One pass. `now` is the pass's start and `deadline` the time by which it must be done,
    /// both read from the runner's clock (`Dependencies.clock` in the CLI): the duty stops
    /// taking new work once that clock reaches `deadline` and reports what it did so far.
    /// Throwing means the pass failed as a whole (the database is gone, …); a failure of one
    /// item is counted in the report instead.
    func runOnce(now: Double, deadline: Double) throws -> Report
}

/// What one pass did (counts), for the log line and the heartbeat's `summary`.
public protocol DutyReport: Sendable {
    var json: JSON { get }
}

/// A setting a duty refuses, named like its command-line flag.
public struct DutyConfigError: Error, Equatable, CustomStringConvertible {
    public let setting: String
    public let rule: String
    public let value: String

    public init<V>(setting: String, value: V, rule: String) {
        self.setting = setting
        self.rule = rule
        self.value = Self.show(value)
    }

    public var description: String { "--\(setting) \(rule) (got \(value))" }

    /// Checks `range.contains(value)`, or throws an error that names the setting and the range.
    public static func require<T: Comparable>(_ setting: String, _ value: T, in range: ClosedRange<T>, unit: String = "") throws {
        guard range.contains(value) else {
            throw DutyConfigError(setting: setting, value: value,
                                  rule: "must be between \(show(range.lowerBound))\(unit) and \(show(range.upperBound))\(unit)")
        }
    }

    /// `10` rather than `10.0`: the way an operator writes it.
    public static func show<V>(_ value: V) -> String {
        if let d = value as? Double, d == d.rounded(), abs(d) < 1e15 { return String(Int(d)) }
        return "\(value)"
    }
}

/// The registry of cron duties: the one list health (`checks.workers`) and the heartbeat
/// use. Every duty of the architecture is here, implemented or not yet, so health shows a
/// duty that never ran as `lastRunAt: null` instead of hiding it.
public enum DutyName: String, CaseIterable, Sendable {
    case dispatch
    case pollKie = "poll-kie"
    case sweep
    case deliver
    case refund
    case reconcile
    case prune
    /// Hourly `pinglass audit` (not a looping duty): its heartbeat says the invariants were
    /// checked, `ok` when none was broken.
    case audit
}

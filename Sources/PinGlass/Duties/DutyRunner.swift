import Logging
import JSON
import Platform
import Postgres

/// How long one cron invocation keeps a duty going (`--for`) and how often it starts a pass
/// (`--every`). Cron starts a command every minute, so `--for 55s` leaves each run done
/// before the next one begins; overlapping runs are still safe (claims, guarded updates).
public struct DutySchedule: Sendable, Equatable {
    /// Seconds to keep starting passes; 0 runs a single pass.
    public let runFor: Double
    /// Seconds from the start of one pass to the start of the next. A pass slower than this
    /// is followed by the next one at once, never by a second pass in parallel.
    public let every: Double

    public static let runForDefault = 0.0
    public static let everyDefault = 10.0
    /// The deadline of a lone pass (no `--for`): done before cron's next minute.
    public static let singlePassLimit = 55.0
    /// Longer runs would pile up under cron's one-minute cadence for no gain.
    public static let runForRange = 0.0...3600.0
    public static let everyRange = 0.1...3600.0

    public init(runFor: Double = runForDefault, every: Double = everyDefault) throws {
        try DutyConfigError.require("for", runFor, in: Self.runForRange, unit: "s")
        try DutyConfigError.require("every", every, in: Self.everyRange, unit: "s")
        self.runFor = runFor
        self.every = every
    }
}

/// What a run did: the exit code of the cron command follows from it.
public struct DutyRunOutcome: Equatable, Sendable {
    public var passes = 0
    public var failedPasses = 0
    /// Non-zero when any pass failed, so cron mail and `systemctl` see it.
    public var exitCode: Int32 { failedPasses == 0 ? 0 : 1 }
}

/// Runs a duty's passes for a cron invocation: one pass, or passes every `--every` until
/// `--for` is over. Each pass gets the run's end as its deadline, so a slow pass never runs
/// past `--for`; the next pass starts only if, judged by the last one, it can finish in
/// time, and the loop never sleeps past the end. Every pass writes its heartbeat
/// (`worker_runs`, one row per duty and host) and one log line with its report.
///
/// ```swift
/// let runner = DutyRunner(database: deps.database, schedule: try DutySchedule(runFor: 55, every: 10), clock: deps.clock)
/// let outcome = runner.run(try Reconciler(deps: deps, config: config))
/// exit(outcome.exitCode)
/// ```
public struct DutyRunner {
    public let database: Database
    public let schedule: DutySchedule
    /// The heartbeat's host column: several VMs run the same duties side by side.
    public var host: String
    /// The same clock the duty compares with its deadline (`Dependencies.clock`). Tests move it.
    public var clock: Clock
    /// Waits between passes instead of `clock.sleep` when set (the CLI waits on a
    /// PostgreSQL channel, so a NOTIFY ends the wait early). Unset, the wait is the clock's,
    /// read when the runner waits, so a clock replaced after `init` is the one used.
    public var sleep: ((Double) -> Void)?

    public init(database: Database, schedule: DutySchedule, host: String = System.hostname(), clock: Clock = .system) {
        self.database = database
        self.schedule = schedule
        self.host = host
        self.clock = clock
    }

    /// Every count in the report is zero.
    static func didNothing(_ report: JSON) -> Bool {
        guard case .object(let fields) = report else { return false }
        return fields.allSatisfy { field in
            switch field.1 {
            case .number(let n): return Double(n) == 0
            case .bool(let b): return !b
            default: return false
            }
        }
    }

    public func run<D: Duty>(_ duty: D) -> DutyRunOutcome {
        let log = Logger(label: D.name.rawValue)
        let start = clock()
        let end = start + (schedule.runFor > 0 ? schedule.runFor : DutySchedule.singlePassLimit)
        var outcome = DutyRunOutcome()
        var passStart = start
        while true {
            outcome.passes += 1
            if !pass(duty, number: outcome.passes, now: passStart, deadline: end, log: log) { outcome.failedPasses += 1 }
            guard schedule.runFor > 0 else { break }
            let finished = clock()
            let next = max(passStart + schedule.every, finished)
            if next + (finished - passStart) >= end { break }
            (sleep ?? clock.sleep)(next - finished)
            passStart = clock()
        }
        return outcome
    }

    /// One pass with its heartbeat; false when it failed (logged, and recorded as `ok = false`).
    func pass<D: Duty>(_ duty: D, number: Int, now: Double, deadline: Double, log: Logger) -> Bool {
        let meta: Logger.Metadata = ["duty": "\(D.name.rawValue)", "host": "\(host)", "pass": "\(number)"]
        defer { database.finishRequest() }
        do {
            let db = try database.connection()
            try DutyHeartbeats.started(db, duty: D.name, host: host)
            let report = try duty.runOnce(now: now, deadline: deadline)
            try DutyHeartbeats.finished(db, duty: D.name, host: host, ok: true, summary: report.json)
            // A pass that found nothing to do is a debug line: a duty looping every 2 s would
            // otherwise bury the lines that matter.
            log.log(level: Self.didNothing(report.json) ? .debug : .info, "pass done",
                    metadata: meta.merging(["ms": "\(milliseconds(since: now))", "report": "\(report.json.serialized)"]) { $1 })
            return true
        } catch {
            // Whatever the failure left open is rolled back before the heartbeat says so.
            database.finishRequest()
            log.error("pass failed", metadata: meta.merging(["ms": "\(milliseconds(since: now))", "error": "\(error)"]) { $1 })
            if let db = try? database.connection() {
                _ = try? DutyHeartbeats.finished(db, duty: D.name, host: host, ok: false,
                                             summary: ["error": .string(String("\(error)".prefix(500)))])
            }
            return false
        }
    }

    func milliseconds(since t: Double) -> Int { Int(((clock() - t) * 1000).rounded()) }
}

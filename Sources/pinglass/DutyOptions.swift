import ArgumentParser
import PinGlass
import Postgres
import PinGlassConfig
import Platform
import Providers

/// `--for` and `--every`, shared by every cron duty command; the loop itself, the deadline,
/// the heartbeat, the log and the exit code are `DutyRunner`'s.
struct DutyOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Keep running passes for this long, e.g. 55s (default: one pass).", valueName: "duration"))
    var `for`: Duration?

    @Option(help: ArgumentHelp("Start a pass this often.", valueName: "duration"))
    var every = Duration(seconds: DutySchedule.everyDefault)

    /// The duty's settings and the schedule, checked right after parsing (a command's
    /// `validate()`): a refused value is a usage error naming its flag, before any configuration is read.
    func schedule(validating config: some DutyConfig) throws -> DutySchedule {
        try Self.validated {
            try config.validate()
            return try DutySchedule(runFor: self.for?.seconds ?? 0, every: every.seconds)
        }
    }

    /// Loads the configuration, makes the duty and runs it; exits non-zero when a pass failed.
    /// `wakeOn`: PostgreSQL channels whose `pg_notify` ends the wait between passes at once
    /// (a committed generate notifies `dispatch`); `--every` stays the longest wait.
    /// `nextDue`: seconds until the duty's next work comes due by itself (nil: none waits),
    /// asked before each wait, which then ends at that moment instead (never sooner than
    /// `minimumWait`, so work that is due but held back cannot spin the loop).
    func run<D: Duty>(global: GlobalOptions, config: D.Config, wakeOn channels: [String] = [],
                      nextDue: ((D) throws -> Double?)? = nil,
                      makeDuty: (Dependencies, D.Config) throws -> D) throws {
        let schedule = try schedule(validating: config)
        let settings = try global.loadConfig()
        let deps = Dependencies.live(config: settings, database: Database.forCLI(settings))
        let duty = try Self.validated { try makeDuty(deps, config) }
        var runner = DutyRunner(database: deps.database, schedule: schedule, clock: deps.clock)
        let wait: (Double) -> Double = { longest in
            guard let nextDue, let due = (try? nextDue(duty)) ?? nil else { return longest }
            return min(longest, max(due, Self.minimumWait))
        }
        if !channels.isEmpty {
            let listener = Listener(conninfo: deps.database.conninfo, channels: channels)
            runner.sleep = { listener.wait(timeout: wait($0)) }
        } else if nextDue != nil {
            runner.sleep = { deps.clock.sleep(wait($0)) }
        }
        let outcome = runner.run(duty)
        if outcome.exitCode != 0 { throw ExitCode(outcome.exitCode) }
    }

    /// The shortest wait between passes when work is due now but was held back (a budget
    /// spent by other processes).
    static let minimumWait = 0.2

    /// A refused setting becomes a usage error naming the flag: `--pending-after must be …`;
    /// a configuration the duty needs but lacks (`MEDIA_KEY_SECRET`) a configuration refusal.
    static func validated<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as DutyConfigError {
            throw ValidationError(e.description)
        } catch let e as ConfigError {
            throw Refusal.configuration("\(e)")   // a setting the duty needs is missing: exit 78
        }
    }
}

/// `55s`, `2m`, `500ms`, `1h`, `30d`, or plain seconds (the form older scripts use); shown the
/// same way in `--help` (`10s`). Every option of a duty that is a time is one of these.
struct Duration: ExpressibleByArgument, CustomStringConvertible {
    let seconds: Double
    init(seconds: Double) { self.seconds = seconds }
    init?(argument: String) {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400)]
        var number = Substring(argument), factor = 1.0
        if let (suffix, f) = units.first(where: { argument.hasSuffix($0.0) }) {
            number = argument.dropLast(suffix.count)
            factor = f
        }
        // Finite and below ten years, so that `wholeSeconds` always fits an Int.
        guard let v = Double(number), v >= 0, v * factor < Self.longest else { return nil }
        seconds = v * factor
    }
    static let longest = 10 * 365 * 86_400.0

    /// For the settings kept in whole seconds (a fraction is dropped: `1.5s` is 1).
    var wholeSeconds: Int { Int(seconds) }

    var description: String {
        func whole(_ v: Double) -> String? { v == v.rounded() ? String(Int(v)) : nil }
        if seconds >= 86_400, let d = whole(seconds / 86_400) { return d + "d" }
        if seconds >= 3600, let h = whole(seconds / 3600) { return h + "h" }
        if seconds >= 60, let m = whole(seconds / 60) { return m + "m" }
        if let s = whole(seconds) { return s + "s" }
        if let ms = whole(seconds * 1000) { return ms + "ms" }
        return "\(seconds)s"
    }

    var defaultValueDescription: String { description }
}

import ArgumentParser
import Logging
import PinGlass

/// Runs a cron duty once, or in a loop for `--for` seconds with `--every` between passes,
/// recording its heartbeat in worker_runs.
struct DutyLoop: ParsableArguments {
    @Option(help: ArgumentHelp("Keep running passes for this long, e.g. 55s (default: one pass).", valueName: "duration"))
    var `for`: Duration?

    @Option(help: ArgumentHelp("Pause between passes.", valueName: "duration"))
    var every: Duration = Duration(seconds: 10)

    func run(name: String, database: Database, pass: () throws -> JSON) throws {
        let log = Logger(label: name)
        let db = try database.connection()
        let deadline = System.monotonic() + (self.for?.seconds ?? 0)
        var failed = false
        repeat {
            try WorkerRuns.started(db, name: name)
            do {
                let summary = try pass()
                try WorkerRuns.finished(db, name: name, ok: true, summary: summary)
                log.info("pass done", metadata: ["summary": "\(summary.serialized)"])
            } catch {
                failed = true
                log.error("pass failed", metadata: ["error": "\(error)"])
                try? WorkerRuns.finished(db, name: name, ok: false, summary: ["error": .string("\(error)")])
            }
            database.finishRequest()
            if System.monotonic() + every.seconds >= deadline { break }
            System.sleep(seconds: every.seconds)
        } while true
        if failed { throw ExitCode(1) }
    }
}

/// `55s`, `2m`, `500ms`, or plain seconds; shown the same way in `--help`.
struct Duration: ExpressibleByArgument, CustomStringConvertible {
    let seconds: Double
    init(seconds: Double) { self.seconds = seconds }

    /// The largest unit that states it exactly: `10s`, `2m`, `1h`, `500ms`.
    var description: String {
        func whole(_ v: Double) -> String? { v == v.rounded() && v < 1e15 ? String(Int(v)) : nil }
        for (suffix, factor) in [("h", 3600.0), ("m", 60), ("s", 1)] where seconds >= factor || (suffix == "s" && seconds == 0) {
            if let n = whole(seconds / factor) { return n + suffix }
        }
        return whole(seconds * 1000).map { $0 + "ms" } ?? "\(seconds)s"
    }

    var defaultValueDescription: String { description }
    init?(argument: String) {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, factor) in units where argument.hasSuffix(suffix) {
            guard let v = Double(argument.dropLast(suffix.count)), v >= 0 else { return nil }
            seconds = v * factor
            return
        }
        guard let v = Double(argument), v >= 0 else { return nil }
        seconds = v
    }
}

struct Reconcile: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask T-Bank about payments whose notification never came; expire stale payment links.",
        discussion: """
            Checks payments pending longer than 2 minutes with GetState (oldest-checked first, \
            \(ReconcilerDefaults.batchSize) per pass), applies the same forward-only transitions as the \
            webhook, and expires payments past their RedirectDueDate. Safe to run on several machines \
            at once. Cron: * * * * * pinglass reconcile --for 55s --every 10s
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var loop: DutyLoop

    @Option(help: "Check payments pending longer than this many seconds.")
    var pendingAfter: Int = ReconcilerDefaults.pendingAfterSeconds

    func run() throws {
        let config = try global.loadConfig()
        let deps = Dependencies(config: config, database: Database.forCLI(config))
        var rc = Reconciler.Config()
        rc.pendingAfterSeconds = pendingAfter
        let reconciler = Reconciler(deps: deps, config: rc)
        try loop.run(name: "reconcile", database: deps.database) { try reconciler.runOnce().json }
    }
}

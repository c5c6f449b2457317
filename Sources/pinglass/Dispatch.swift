import ArgumentParser
import PinGlass
import PinGlassConfig

struct Dispatch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Submit queued generation tasks to Kie, fairly across jobs, under the shared rate budget.",
        discussion: """
            Claims queued tasks round-robin across jobs (every job's next photo before any job's \
            one after), at most KIE_RATE_LIMIT new Kie tasks per 10 s across every dispatcher on \
            every machine (a sliding window kept in PostgreSQL). A committed generate wakes a \
            waiting dispatcher at once (PostgreSQL NOTIFY); --every is the longest wait. \
            429 waits a full window; 5xx and timeouts retry with backoff; 401/402/422 fail the task. \
            Cron: * * * * * pinglass dispatch --for 55s --every 2s
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var loop: DutyOptions

    @Option(parsing: .unconditional, help: "At most this many tasks claimed per round.")
    var batchSize: Int = DispatcherDefaults.batchSize

    @Option(parsing: .unconditional, help: "Transient submit failures retried this many times, then the task fails.")
    var maxAttempts: Int = DispatcherDefaults.maxAttempts

    @Option(parsing: .unconditional, help: ArgumentHelp("How long the reference-photo links given to Kie stay valid (at least 1h).", valueName: "duration"))
    var referenceLinkTtl = Duration(seconds: Double(DispatcherDefaults.referenceLinkSeconds))

    var config: Dispatcher.Config {
        var config = Dispatcher.Config()
        config.batchSize = batchSize
        config.maxAttempts = maxAttempts
        config.referenceLinkSeconds = referenceLinkTtl.wholeSeconds
        return config
    }

    func validate() throws { _ = try loop.schedule(validating: config) }

    func run() throws {
        try loop.run(global: global, config: config, wakeOn: ["dispatch"]) { try Dispatcher(deps: $0, config: $1) }
    }
}

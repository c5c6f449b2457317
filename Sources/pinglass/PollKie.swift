import ArgumentParser
import PinGlass
import PinGlassConfig

struct PollKie: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "poll-kie",
        abstract: "Ask Kie about running generation tasks; download and store finished photos; finish jobs.",
        discussion: """
            Claims due running tasks (--batch-size at a time, at most KIE_POLL_RPS recordInfo calls \
            per second) and moves each one --poll-interval ahead, so a task still generating is asked \
            again later. The round's finished images are downloaded at once, in parallel (hosts on \
            KIE_RESULT_HOSTS only, exact or *.domain, a refused host alerted; https unless loopback; public addresses only \
            unless KIE_API_URL is loopback on a non-public install; at most --max-download-bytes), each stored under its MEDIA_KEY_SECRET-derived \
            name, and committed with its task; a job whose tasks all ended is finished (delivery rows, \
            refund row). Downloads and uploads that fail are retried at the next poll and counted. A \
            task past its deadline fails. A Kie callback (or a new submission) wakes a waiting poller at \
            once (PostgreSQL NOTIFY); --every is the longest wait. Safe to run on several machines at once. \
            Cron: * * * * * pinglass poll-kie --for 55s --every 10s
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var loop: DutyOptions

    @Option(parsing: .unconditional, help: "Tasks claimed per round.")
    var batchSize: Int = KiePollerDefaults.batchSize

    @Option(parsing: .unconditional, help: ArgumentHelp("Time until a task that is not finished is polled again.", valueName: "duration"))
    var pollInterval = Duration(seconds: Double(KiePollerDefaults.pollIntervalSeconds))

    @Option(parsing: .unconditional, help: ArgumentHelp("How long after submission a task without a recorded deadline fails.", valueName: "duration"))
    var taskDeadline = Duration(seconds: Double(KiePollerDefaults.taskDeadlineSeconds))

    @Option(parsing: .unconditional, help: "Largest result image accepted, in bytes.")
    var maxDownloadBytes: Int = KiePollerDefaults.maxDownloadBytes

    @Option(parsing: .unconditional, help: ArgumentHelp("How long one result download may take.", valueName: "duration"))
    var downloadTimeout = Duration(seconds: KiePollerDefaults.downloadTimeout)

    var config: KiePoller.Config {
        var config = KiePoller.Config()
        config.batchSize = batchSize
        config.pollIntervalSeconds = pollInterval.wholeSeconds
        config.taskDeadlineSeconds = taskDeadline.wholeSeconds
        config.maxDownloadBytes = maxDownloadBytes
        config.downloadTimeout = downloadTimeout.seconds
        return config
    }

    func validate() throws { _ = try loop.schedule(validating: config) }

    func run() throws {
        try loop.run(global: global, config: config, wakeOn: ["poll-kie"]) { try KiePoller(deps: $0, config: $1) }
    }
}

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
            task past its deadline fails: the one dispatch recorded when it submitted the task (its \
            --task-deadline: give both the same), or --task-deadline after submission for a task without one. A Kie callback (or a new submission) wakes a waiting poller at \
            once (PostgreSQL NOTIFY); --every is the longest wait. Safe to run on several machines at once. \
            Cron: * * * * * pinglass poll-kie --for 55s --every 10s
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var loop: DutyOptions
    @OptionGroup var settings: DutySettingOptions<KiePoller.Config>

    var config: KiePoller.Config { settings.config }

    func validate() throws { _ = try loop.schedule(validating: config) }

    func run() throws {
        try loop.run(global: global, config: config, wakeOn: ["poll-kie"]) { try KiePoller(deps: $0, config: $1) }
    }
}

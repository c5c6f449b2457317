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
            --max-attempts and --task-deadline are the generation policy's, shared with sweep (both) \
            and poll-kie (--task-deadline): give each the same value everywhere. Each submitted task \
            records its deadline, --task-deadline after its submission; poll-kie and sweep hold the \
            task to it. \
            Cron: * * * * * pinglass dispatch --for 55s --every 2s
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var loop: DutyOptions
    @OptionGroup var settings: DutySettingOptions<Dispatcher.Config>

    var config: Dispatcher.Config { settings.config }

    func validate() throws { _ = try loop.schedule(validating: config) }

    func run() throws {
        try loop.run(global: global, config: config, wakeOn: ["dispatch"]) { try Dispatcher(deps: $0, config: $1) }
    }
}

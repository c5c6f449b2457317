import ArgumentParser
import PinGlass
import PinGlassConfig

struct Sweep: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Take back work whose worker died, end work past its deadline, and raise the operator alerts.",
        discussion: """
            Each step is one guarded statement that only moves rows still in the state it expects \
            (never a finished one), in batches of --batch-size: tasks whose submit lease ran out go back \
            to the queue (or fail on their --max-attempts-th attempt); running tasks more than \
            --deadline-grace past their deadline fail, queued tasks of jobs past the job's deadline fail \
            (running ones are left to their own deadline), and their jobs finish through the same finish \
            as poll-kie (delivery rows, refund row once); jobs whose tasks all ended are finished (a job \
            whose finish fails is alerted and skipped, never holding back the others, and tried again \
            next pass); \
            deliveries whose send lease ran out are pending again; refunds whose lease ran out are due \
            again (still requested: the refund duty asks the bank before sending again). \
            Alerts (to ADMIN_TELEGRAM_CHAT_ID through the delivery queue, at most once per alert an hour; \
            logged always): a duty with no successful pass for --worker-silence (prune: 26 h, audit: 2 h 10 min), due work \
            older than --queue-alert, refunds owed (failed, or requested for over a day; hourly until \
            none is left), T-Bank test mode on a public PUBLIC_BASE_URL (hourly while it lasts), at least \
            --5xx-alert server errors within --5xx-window. \
            Safe to run on several machines at once. \
            Cron: * * * * * pinglass sweep
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var loop: DutyOptions
    @OptionGroup var settings: DutySettingOptions<Sweeper.Config>

    var config: Sweeper.Config { settings.config }

    func validate() throws { _ = try loop.schedule(validating: config) }

    func run() throws {
        try loop.run(global: global, config: config) { try Sweeper(deps: $0, config: $1) }
    }
}

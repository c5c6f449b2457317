import ArgumentParser
import PinGlass
import PinGlassConfig

struct Prune: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Delete finished queue rows, logs and customers' photos past their retention (payments, refunds, jobs and audit rows are kept).",
        discussion: """
            Deletes, in batches of --batch-size rows (each its own short statement): sent and failed \
            Telegram deliveries older than --deliveries (at least 7d), webhook logs older than \
            --webhook-logs, rate-budget events older than --rate-events, expired admin sessions, failed \
            admin logins older than a day, the \
            heartbeat rows of hosts with no pass for --worker-hosts, 5xx counts older than \
            --server-errors, and stored photos (references/, generated/) that no row names and that were \
            last written longer than --orphan-grace ago (what a crash between storing and committing \
            leaves; younger ones may be uploads on their way to their row; keys that are not media keys and \
            objects whose delete fails are logged and skipped), selfies older than MEDIA_RETENTION_DAYS (default 90; not while \
            their avatar's generation runs), and the stored objects of generated photos whose job ended longer ago than that \
            (their rows stay, marked removed). Never deleted: payments, refunds, generation jobs, tasks and photo rows, users, \
            avatars, admin_audit, counters. Logs what it deleted per kind; a backlog larger \
            than one run allows (--for) is continued by the next run. \
            Cron: 23 3 * * * pinglass prune --for 10m --every 10m
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var loop: DutyOptions
    @OptionGroup var settings: DutySettingOptions<Pruner.Config>

    var config: Pruner.Config { settings.config }

    func validate() throws { _ = try loop.schedule(validating: config) }

    func run() throws {
        try loop.run(global: global, config: config) { try Pruner(deps: $0, config: $1) }
    }
}

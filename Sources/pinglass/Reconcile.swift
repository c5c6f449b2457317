import ArgumentParser
import PinGlass

struct Reconcile: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask T-Bank about payments whose notification never came; expire stale payment links.",
        discussion: """
            Checks payments pending longer than --pending-after with GetState (oldest-checked first, \
            --batch-size per pass), applies the same forward-only transitions as the webhook, and \
            expires payments past their RedirectDueDate. Safe to run on several machines at once. \
            Cron: * * * * * pinglass reconcile --for 55s --every 10s
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var loop: DutyOptions

    @Option(parsing: .unconditional, help: "Check payments waiting longer than this many seconds.")
    var pendingAfter: Int = ReconcilerDefaults.pendingAfterSeconds

    @Option(parsing: .unconditional, help: "At most this many payments asked about per step and pass.")
    var batchSize: Int = ReconcilerDefaults.batchSize

    var config: Reconciler.Config {
        var config = Reconciler.Config()
        config.pendingAfterSeconds = pendingAfter
        config.batchSize = batchSize
        return config
    }

    func validate() throws { _ = try loop.schedule(validating: config) }

    func run() throws {
        try loop.run(global: global, config: config) { try Reconciler(deps: $0, config: $1) }
    }
}

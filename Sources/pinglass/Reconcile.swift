import ArgumentParser
import PinGlass
import PinGlassConfig

struct Reconcile: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask T-Bank about payments whose notification never came; expire stale payment links after a last look.",
        discussion: """
            Asks GetState about payments waiting longer than --pending-after (least recently checked \
            first, --batch-size per pass) and applies the same forward-only transitions as the webhook. \
            A payment past its RedirectDueDate is expired only when GetState says it was never paid \
            (NEW, FORM_SHOWED); without an answer it stays pending. Expired, rejected and canceled \
            payments are asked again every \(ReconcilerDefaults.settledRecheckSeconds / 3600) h for \
            \(ReconcilerDefaults.settledRecheckWindowSeconds / 86_400) days, so a lost CONFIRMED still \
            revives an expired payment. Safe to run on several machines at once. \
            Cron: * * * * * pinglass reconcile --for 55s --every 10s
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var loop: DutyOptions
    @OptionGroup var settings: DutySettingOptions<Reconciler.Config>

    var config: Reconciler.Config { settings.config }

    func validate() throws { _ = try loop.schedule(validating: config) }

    func run() throws {
        try loop.run(global: global, config: config) { try Reconciler(deps: $0, config: $1) }
    }
}

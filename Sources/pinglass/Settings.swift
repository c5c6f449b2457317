import ArgumentParser
import PinGlass
import PinGlassConfig
import Postgres
#if canImport(Glibc)
import Glibc
#endif

struct Settings: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the settings kept in the database (change one with its subcommand).",
        subcommands: [TBankMode.self]
    )

    @OptionGroup var global: GlobalOptions

    /// Every setting, one `name: value` line each (the names of the subcommands that change them).
    func run() throws {
        let config = try global.loadConfig()
        let db = try Database.forCLI(config).connection()
        print("tbank-mode: \(try PaymentSettings.terminalMode(db).rawValue)")
    }

    struct TBankMode: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "tbank-mode",
            abstract: "Show the T-Bank terminal new payments use, or switch it (test|production).",
            discussion: """
                Payments keep the terminal they were created with: GetState, Cancel and notification \
                checks always use the payment's own terminal. Switching is recorded in admin_audit. \
                Production mode is refused unless TBANK_TERMINAL_KEY and TBANK_PASSWORD are configured.
                """
        )

        @OptionGroup var global: GlobalOptions

        @Argument(help: "New mode: test or production (omit to show the current one).")
        var mode: String?

        func run() throws {
            let config = try global.loadConfig()
            let db = try Database.forCLI(config).connection()
            guard let mode else {
                print(try PaymentSettings.terminalMode(db).rawValue)
                return
            }
            guard let target = TerminalMode(rawValue: mode) else {
                throw ValidationError("mode must be 'test' or 'production'")
            }
            let actor = Operator.actor
            do {
                let old = try PaymentSettings.setTerminalMode(db, config: config, mode: target, actor: actor)
                print(old == target ? "T-Bank mode is already \(target.rawValue)" : "T-Bank mode: \(old.rawValue) → \(target.rawValue)")
            } catch let e as PaymentSettings.ChangeError {
                throw Refusal.refused(e.description)
            }
        }
    }
}

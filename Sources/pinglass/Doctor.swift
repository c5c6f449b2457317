import ArgumentParser
import PinGlass
import Postgres
#if canImport(Glibc)
import Glibc
#endif

struct Doctor: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the configuration, the database, migrations and storage; print what is wrong.",
        discussion: "Shows which variables are set (never their values). Exits 1 when something needs fixing."
    )

    @OptionGroup var global: GlobalOptions

    func run() throws {
        let config: Config
        do { config = try global.loadConfig() } catch {
            print("FAIL  \(error)")
            throw ExitCode(1)
        }
        var failures = 0
        func report(_ ok: Bool, _ what: String, warnOnly: Bool = false) {
            print("\(ok ? "ok  " : (warnOnly ? "warn" : "FAIL"))  \(what)")
            if !ok && !warnOnly { failures += 1 }
        }
        report(true, "configuration parsed (LOG_FORMAT=\(config.logFormat), LOG_LEVEL=\(config.logLevel))")
        report(config.publicBaseURL != nil, "PUBLIC_BASE_URL set (needed for payments)", warnOnly: true)
        func configured(_ ok: Bool, _ what: String, missing: String) {
            report(ok, ok ? what : missing, warnOnly: true)
        }
        configured(config.tbankTest != nil, "T-Bank test terminal configured",
                   missing: "T-Bank test terminal not configured (TBANK_TEST_TERMINAL_KEY, TBANK_TEST_PASSWORD)")
        configured(config.tbankProduction != nil, "T-Bank production terminal configured",
                   missing: "T-Bank production terminal not configured (TBANK_TERMINAL_KEY, TBANK_PASSWORD): production mode unavailable")
        configured(config.kieAPIKey != nil, "KIE_API_KEY set", missing: "KIE_API_KEY not set: generation cannot be dispatched")
        configured(config.telegramBotToken != nil, "TELEGRAM_BOT_TOKEN set",
                   missing: "TELEGRAM_BOT_TOKEN not set: users cannot sign in, nothing can be delivered")
        do {
            let db = try Database.forCLI(config).connection()
            let version = try db.query("SHOW server_version", retry: .idempotent).first?.string("server_version") ?? "?"
            report(true, "database reachable (PostgreSQL \(version))")
            let dir = Migrator.defaultDirectory(environment: System.environment())
            let pending = Migrator.pendingCount(db: db, directory: dir)
            report(pending == 0, pending.map { "migrations: \($0) pending (in \(dir))" } ?? "migrations: cannot read \(dir)")
            if pending == 0 {
                let mode = try PaymentSettings.terminalMode(db)
                report(config.terminal(for: mode) != nil, "T-Bank mode '\(mode.rawValue)' has credentials")
            }
        } catch {
            report(false, "database: \(error)")
        }
        if config.storage == "fs" {
            report(access(config.storageDir, W_OK) == 0, "STORAGE_DIR \(config.storageDir) writable")
        }
        if failures > 0 { print("\(failures) problem(s) found"); throw ExitCode(1) }
        print("all checks passed")
    }
}

import ArgumentParser
import PinGlass
import Postgres
import LibCrypto
import PinGlassConfig
import Platform
#if canImport(Glibc)
import Glibc
#endif
import Providers

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
        report(true, "configuration parsed (LOG_FORMAT=\(config.logFormat.rawValue), LOG_LEVEL=\(config.logLevel.rawValue))")
        report(config.publicBaseURL != nil, "PUBLIC_BASE_URL set (needed for payments)", warnOnly: true)
        func configured(_ ok: Bool, _ what: String, missing: String) {
            report(ok, ok ? what : missing, warnOnly: true)
        }
        configured(config.tbankTest != nil, "T-Bank test terminal configured",
                   missing: "T-Bank test terminal not configured (TBANK_TEST_TERMINAL_KEY, TBANK_TEST_PASSWORD)")
        configured(config.tbankProduction != nil, "T-Bank production terminal configured",
                   missing: "T-Bank production terminal not configured (TBANK_TERMINAL_KEY, TBANK_PASSWORD): production mode unavailable")
        configured(config.kieAPIKey != nil, "KIE_API_KEY set", missing: "KIE_API_KEY not set: generation cannot be dispatched")
        configured(!config.kieResultHosts.isEmpty, "KIE_RESULT_HOSTS set (\(config.kieResultHosts.joined(separator: ", ")))",
                   missing: "KIE_RESULT_HOSTS not set: poll-kie refuses to run (Kie's result images could not be downloaded)")
        configured(config.kieWebhookHMACKey != nil, "KIE_WEBHOOK_HMAC_KEY set (Kie's callbacks are checked)",
                   missing: "KIE_WEBHOOK_HMAC_KEY not set: /api/kie/callback answers 404 and Kie gets no callback URL (results found by polling only)")
        kieResultHosts(config, report)
        configured(config.telegramBotToken != nil, "TELEGRAM_BOT_TOKEN set",
                   missing: "TELEGRAM_BOT_TOKEN not set: users cannot sign in, nothing can be delivered")
        configured(config.telegramWebhookSecret != nil, "TELEGRAM_WEBHOOK_SECRET set (the bot's webhook takes updates)",
                   missing: "TELEGRAM_WEBHOOK_SECRET not set: /api/telegram/webhook answers 404 and the bot does not answer /start "
                       + "(openssl rand -hex 32 for the workers, then pinglass telegram setup)")
        configured(config.adminTelegramChatID != nil, "ADMIN_TELEGRAM_CHAT_ID set (alerts go there)",
                   missing: "ADMIN_TELEGRAM_CHAT_ID not set: alerts are only logged")
        telegram(config, report)
        do {
            let db = try Database.forCLI(config).connection()
            let version = try db.query("SHOW server_version", retry: .idempotent).first?.string("server_version") ?? "?"
            report(true, "database reachable (PostgreSQL \(version))")
            let rights = try DatabaseRoles.schemaRights(db)
            report(!rights.canChangeSchema, rights.canChangeSchema
                ? "database role \(rights.role) (DATABASE_URL) can change the schema (\(rights.reasons.joined(separator: ", "))): "
                    + "it could drop the triggers that keep the money rules; use a role with row rights only, and the owner "
                    + "in MIGRATION_DATABASE_URL (see pinglass migrate --help)"
                : "database role \(rights.role) (DATABASE_URL) has row rights only (cannot alter or drop tables and triggers)",
                   warnOnly: true)
            let dir = Migrator.defaultDirectory(environment: System.environment())
            let pending = Migrator.pendingCount(db: db, directory: dir)
            report(pending == 0, pending.map { "migrations: \($0) pending (in \(dir))" } ?? "migrations: cannot read \(dir)")
            if pending == 0 {
                let mode = try PaymentSettings.terminalMode(db)
                report(config.terminal(for: mode) != nil, "T-Bank mode '\(mode.rawValue)' has credentials")
                if mode == .test && config.isPublicInstall {
                    report(false, "T-Bank mode 'test' on a public PUBLIC_BASE_URL: test payments buy nothing here except for "
                        + "TEST_TELEGRAM_IDS (pinglass settings tbank-mode production to go live)", warnOnly: true)
                }
            }
        } catch {
            report(false, "database: \(error)")
        }
        storage(config, report)
        if failures > 0 { print("\(failures) problem(s) found"); throw ExitCode(1) }
        print("all checks passed")
    }

    /// Entries that once matched their subdomains too and now match only themselves, and
    /// whether result downloads may reach internal addresses (only with a local simulator).
    func kieResultHosts(_ config: Config, _ report: (Bool, String, Bool) -> Void) {
        let parents = ResultDownload.parentDomainEntries(config.kieResultHosts)
        for (entry, host) in parents {
            report(false, "KIE_RESULT_HOSTS entry \(entry) matches that exact host only, not Kie's \(host): poll-kie refuses to "
                   + "start; write *.\(entry) (any subdomain) or \(host)", false)
        }
        for entry in ResultDownload.entriesMatchingOnlyThemselves(config.kieResultHosts) where !parents.contains(where: { $0.entry == entry }) {
            report(false, "KIE_RESULT_HOSTS entry \(entry) matches that exact host only, and Kie is not known to serve results "
                   + "from it (\(ResultDownload.knownKieHosts.joined(separator: ", ")) are): write *.\(entry) for its subdomains", true)
        }
        if ResultDownload.internalAddressesAllowed(config) {
            report(false, "KIE_API_URL is loopback (a local simulator): result downloads may connect to loopback and private addresses", true)
        } else if ResultDownload.kieURLIsLoopback(config) {
            report(true, "KIE_API_URL is loopback on a public install (a local proxy): result downloads still refuse loopback "
                   + "and private addresses", false)
        }
    }

    /// The backend STORAGE names, and the key that signs links. S3 gets a real round trip
    /// (write, read, delete of a small probe object), so wrong keys or a missing bucket show
    /// here rather than at the first upload.
    func storage(_ config: Config, _ report: (Bool, String, Bool) -> Void) {
        report(config.mediaKeySecret != nil, config.mediaKeySecret != nil ? "MEDIA_KEY_SECRET set"
            : "MEDIA_KEY_SECRET not set (signs media links and names generated photos: openssl rand -hex 32)", false)
        if config.storage == .s3 {
            let store = Dependencies.makeMediaStore(config)
            let what = "storage: s3, " + ((store as? S3MediaStore)?.location ?? "?")
            let key = "doctor/probe-" + Crypto.hex(Crypto.randomBytes(8)) + ".txt"
            let probe = Array("pinglass doctor".utf8)
            do {
                try store.put(key: key, bytes: probe, contentType: "text/plain")
                let back = try store.get(key: key)
                try store.delete(key: key)
                report(back == probe, what + (back == probe ? " (write, read, delete ok)" : ": read back other bytes"), false)
            } catch {
                report(false, "\(what): \(error)", false)
            }
        } else {
            report(access(config.storageDir, W_OK) == 0, "storage: fs, STORAGE_DIR \(config.storageDir) writable", false)
            report(config.publicMediaURL != nil || config.publicBaseURL != nil,
                   "media links at \(config.publicMediaURL ?? (config.publicBaseURL.map { $0 + "/media" } ?? "(PUBLIC_MEDIA_URL not set)"))"
                   + " (nginx checks them with the same secret in /etc/nginx/pinglass-media.conf)", true)
        }
    }
}

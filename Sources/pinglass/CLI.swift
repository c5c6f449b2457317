// pinglass: the operator and cron command line of PinGlass.
import ArgumentParser
import PinGlass

@main
struct PinGlassCLI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pinglass",
        abstract: "PinGlass operations: database migrations, background duties run by cron, checks and settings.",
        discussion: """
            Configuration is read from the environment and from an env file (--env-file, \
            $PINGLASS_ENV_FILE, or /etc/pinglass/pinglass.env); the environment wins. \
            DATABASE_URL is always required. Every command logs JSON lines on stderr \
            (LOG_FORMAT=text for people) and exits non-zero when it fails.
            """,
        subcommands: [Migrate.self, Doctor.self, Settings.self, Reconcile.self, PollKie.self, SignInitData.self]
    )
}

/// Options every command shares.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Env file with the configuration.", valueName: "path"))
    var envFile: String?

    func loadConfig() throws -> Config {
        do {
            let config = try Config.load(environment: System.environment(), envFile: envFile)
            PinGlassLog.bootstrap(format: config.logFormat, level: config.logLevel)
            Dependencies.initializeProcess()
            return config
        } catch let e as ConfigError {
            throw ValidationError("configuration: \(e)")
        }
    }
}

extension Database {
    static func forCLI(_ config: Config) -> Database {
        Database(url: config.databaseURL, applicationName: "pinglass-cli")
    }
}

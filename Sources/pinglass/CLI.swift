// pinglass: the operator and cron command line of PinGlass.
import ArgumentParser
import PinGlass
import JSON
import PinGlassConfig
import Platform
import Postgres
#if canImport(Glibc)
import Glibc
#endif
import Providers

@main
struct PinGlassCLI: ParsableCommand {
    /// Refusals end with one line and their own exit code; usage errors keep ArgumentParser's help.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let refusal as Refusal {
            exit(withError: refusal.exit())
        } catch {
            exit(withError: error)
        }
    }

    static let configuration = CommandConfiguration(
        commandName: "pinglass",
        abstract: "PinGlass operations: database migrations, background duties run by cron, checks and settings.",
        discussion: """
            Configuration is read from the environment and from an env file (--env-file, \
            $PINGLASS_ENV_FILE, or /etc/pinglass/pinglass.env); the environment wins. \
            DATABASE_URL is always required. Every command logs JSON lines on stderr \
            (LOG_FORMAT=text for people) and exits non-zero when it fails.
            """,
        subcommands: [Migrate.self, Doctor.self, Settings.self, Reconcile.self, Dispatch.self, PollKie.self, Deliver.self,
                      Refund.self, Sweep.self, Prune.self, AuditCommand.self, RequeueDelivery.self, ManualRefund.self,
                      RequeueRefund.self, ResolveRefund.self, AckAlert.self, SignInitData.self, TelegramCommand.self, AdminCommand.self]
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
            throw Refusal.configuration("\(e)")
        }
    }
}

/// A command that cannot do its work for a reason that is not a typo on the command line:
/// one line on stderr, no usage text, and the sysexits code for it (78, EX_CONFIG, for the
/// configuration; 1 otherwise).
enum Refusal: Error, CustomStringConvertible {
    case configuration(String)
    case refused(String)

    var description: String {
        switch self {
        case .configuration(let why): return "configuration: \(why)"
        case .refused(let why): return why
        }
    }

    /// Prints the refusal and ends the command with its exit code.
    func exit() -> ExitCode {
        FileHandleStderr.write("pinglass: \(description)\n")
        switch self {
        case .configuration: return ExitCode(78)
        case .refused: return ExitCode(1)
        }
    }
}

/// Who runs an operator command, for audit rows: `cli:<unix user>` (the sudo caller when run
/// through sudo).
enum Operator {
    static var actor: String {
        if let sudo = getenv("SUDO_USER") { return "cli:" + String(cString: sudo) }
        if let pw = getpwuid(geteuid()), let name = pw.pointee.pw_name { return "cli:" + String(cString: name) }
        if let user = getenv("USER") { return "cli:" + String(cString: user) }
        return "cli:uid-\(geteuid())"
    }
}

enum FileHandleStderr {
    static func write(_ s: String) {
        var line = s
        line.withUTF8 { buf in _ = Glibc.write(2, buf.baseAddress, buf.count) }
    }
}

extension Database {
    static func forCLI(_ config: Config) -> Database {
        Database(url: config.databaseURL, applicationName: "pinglass-cli")
    }
}

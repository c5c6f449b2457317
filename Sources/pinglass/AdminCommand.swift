import ArgumentParser
import PinGlass
import Postgres
#if canImport(Glibc)
import Glibc
#endif

/// `pinglass admin …`: operator accounts for the admin pages (docs/admin.md#accounts).
/// Passwords come from standard input (one line) or, on a terminal, a prompt without echo;
/// never from the command line, where `ps` and shell history would keep them.
struct AdminCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin",
        abstract: "Operator accounts of the admin pages: create-user, set-password, disable, list, logout-everywhere.",
        discussion: """
            Every change is written to admin_audit with actor cli:<your unix user>. Passwords are \
            read from standard input (the first line) or prompted for on a terminal; at least \
            \(AdminAccounts.minimumPasswordLength) characters. Example: \
            printf '%s\\n' "$PW" | pinglass admin create-user ops --role admin
            """,
        subcommands: [CreateUser.self, SetPassword.self, Disable.self, List.self, LogoutEverywhere.self]
    )

    /// Refuses a password given as an option, before anything else happens.
    struct NoPasswordInArgv: ParsableArguments {
        @Option(name: .long, help: .hidden) var password: String?

        func refuseIfGiven() throws {
            if password != nil {
                throw Refusal.refused("passwords are never taken from the command line (ps and shell history keep them): send it on standard input")
            }
        }
    }

    static func readPassword() throws -> String {
        if isatty(0) == 1 {
            guard let first = getpass("Password: ").map({ String(cString: $0) }),
                  let second = getpass("Again: ").map({ String(cString: $0) }) else { throw Refusal.refused("no password read") }
            guard first == second else { throw Refusal.refused("the two passwords differ") }
            return first
        }
        guard let line = readLine(strippingNewline: true), !line.isEmpty else {
            throw Refusal.refused("no password on standard input")
        }
        return line.hasSuffix("\r") ? String(line.dropLast()) : line
    }

    @discardableResult static func run<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let f as AdminAccounts.Failure { throw Refusal.refused(f.description) }
    }

    struct CreateUser: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "create-user", abstract: "Create an account (password from standard input).")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var argv: NoPasswordInArgv
        @Argument(help: "The account name (3 to 64 of a-z A-Z 0-9 _ . @ -).") var name: String
        @Option(help: ArgumentHelp("admin (acts) or viewer (sees everything, changes nothing).", valueName: "role")) var role: String

        func run() throws {
            try argv.refuseIfGiven()
            guard let r = AdminAccounts.Role(rawValue: role) else { throw Refusal.refused("--role must be admin or viewer") }
            let config = try global.loadConfig()
            let password = try AdminCommand.readPassword()
            let db = try Database.forCLI(config).connection()
            try AdminCommand.run { try AdminAccounts.create(db, login: name, role: r, password: password, actor: Operator.actor) }
            print("created \(r.rawValue) \(name)")
        }
    }

    struct SetPassword: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "set-password",
                                                        abstract: "Set an account's password (from standard input); its sessions end.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var argv: NoPasswordInArgv
        @Argument(help: "The account name.") var name: String

        func run() throws {
            try argv.refuseIfGiven()
            let config = try global.loadConfig()
            let password = try AdminCommand.readPassword()
            let db = try Database.forCLI(config).connection()
            try AdminCommand.run { try AdminAccounts.setPassword(db, login: name, password: password, actor: Operator.actor) }
            print("password set for \(name); its sessions ended")
        }
    }

    struct Disable: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "disable", abstract: "Disable an account; its sessions end.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The account name.") var name: String

        func run() throws {
            let db = try Database.forCLI(try global.loadConfig()).connection()
            let changed = try AdminCommand.run { try AdminAccounts.disable(db, login: name, actor: Operator.actor) }
            print(changed ? "disabled \(name)" : "\(name) was already disabled")
        }
    }

    struct LogoutEverywhere: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "logout-everywhere", abstract: "End every session of an account.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The account name.") var name: String

        func run() throws {
            let db = try Database.forCLI(try global.loadConfig()).connection()
            let ended = try AdminCommand.run { try AdminAccounts.logoutEverywhere(db, login: name, actor: Operator.actor) }
            print("ended \(ended) session(s) of \(name)")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List the accounts.")
        @OptionGroup var global: GlobalOptions

        func run() throws {
            let db = try Database.forCLI(try global.loadConfig()).connection()
            for a in try AdminAccounts.list(db) {
                print("\(a.login)\t\(a.role.rawValue)\t\(a.disabled ? "disabled" : "active")\tsessions \(a.sessions)\tcreated \(a.createdAt)")
            }
        }
    }
}

import ArgumentParser
import PinGlass

struct Migrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply pending database migrations (or list them with --status).",
        discussion: """
            Applies migrations/NNNN_name.sql files in order, each in its own transaction, under an \
            advisory lock so concurrent runs are safe. Applied files are recorded with a checksum; \
            if an applied file changed on disk, nothing runs and the command fails. Safe to run on \
            every deploy: with nothing pending it does nothing.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Flag(help: "List every migration with its state instead of applying.")
    var status = false

    @Option(help: ArgumentHelp("Directory of the migration files (default: $PINGLASS_MIGRATIONS_DIR, the installed share folder, or ./migrations).", valueName: "dir"))
    var dir: String?

    func run() throws {
        let config = try global.loadConfig()
        let db = try Database.forCLI(config).connection()
        let migrator = Migrator(db: db, directory: dir ?? Migrator.defaultDirectory(environment: System.environment()))
        if status {
            var problems = false
            for (name, state) in try migrator.status() {
                switch state {
                case .applied(let at): print("applied   \(name)  (\(at))")
                case .pending: print("pending   \(name)")
                case .changed(let at): print("CHANGED   \(name)  (applied \(at); the file differs)"); problems = true
                case .missingFile: print("MISSING   \(name)  (applied, file not found)"); problems = true
                }
            }
            if problems { throw ExitCode(1) }
            return
        }
        let applied = try migrator.migrate { print($0) }
        print(applied.isEmpty ? "database is up to date" : "applied \(applied.count) migration(s)")
    }
}

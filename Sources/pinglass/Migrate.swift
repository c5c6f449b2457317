import ArgumentParser
import PinGlass
import Postgres
import PinGlassConfig
import Platform

struct Migrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply pending database migrations (or list them with --status).",
        discussion: """
            Applies migrations/NNNN_name.sql files in order, each in its own transaction, under an \
            advisory lock so concurrent runs are safe. Applied files are recorded with a checksum; \
            if an applied file changed on disk, nothing runs and the command fails. Safe to run on \
            every deploy: with nothing pending it does nothing.

            Connects as the schema owner: MIGRATION_DATABASE_URL, or DATABASE_URL when that is not \
            set. When the two name different roles, it then grants the role DATABASE_URL logs in \
            as its row rights (USAGE on the schema; SELECT, INSERT, UPDATE, DELETE on the tables; \
            USAGE, SELECT on the sequences; the same by default for tables created later), on every \
            run, except DELETE on the rows kept forever (payments, refunds, generation_jobs, \
            generation_tasks, generated_photos) and UPDATE, DELETE on admin_audit; and revokes \
            CREATE on the schema from PUBLIC and that role. That role can read and write rows but \
            cannot drop or alter a table or a trigger, nor create anything in the schema.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Flag(help: "List every migration with its state instead of applying.")
    var status = false

    @Option(help: ArgumentHelp("Directory of the migration files (default: $PINGLASS_MIGRATIONS_DIR, the installed share folder, or ./migrations).", valueName: "dir"))
    var dir: String?

    func run() throws {
        let config = try global.loadConfig()
        let db = try Database(url: config.migrationDatabaseURL, applicationName: "pinglass-migrate").connection()
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
        try grantRuntimeRole(config, owner: db)
    }

    /// With a separate owner, the runtime role (the one DATABASE_URL logs in as, asked by
    /// connecting) gets its row rights: it must be able to log in already.
    func grantRuntimeRole(_ config: Config, owner: Connection) throws {
        guard config.migrationDatabaseURL != config.databaseURL else { return }
        let runtime = Database(url: config.databaseURL, applicationName: "pinglass-migrate")
        defer { runtime.close() }
        let role: String
        do { role = try DatabaseRoles.currentRole(runtime.connection()) } catch {
            throw Refusal.refused("cannot connect with DATABASE_URL to grant its role the row rights: \(error)")
        }
        guard role != (try DatabaseRoles.currentRole(owner)) else { return }
        try DatabaseRoles.grantRowRights(owner, to: role)
        print("granted row rights (no DDL) to role \(role), the role of DATABASE_URL")
    }
}

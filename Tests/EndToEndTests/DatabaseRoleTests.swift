import XCTest
import Foundation
import PinGlassTesting
import Postgres
import JSON
import PinGlassConfig
@testable import PinGlass

/// Two database roles: `pinglass migrate` connects as the owner (`MIGRATION_DATABASE_URL`) and
/// grants the runtime role of `DATABASE_URL` row rights only; the pool and the duties work with
/// that role, which cannot drop or alter the tables and the triggers that keep the money rules.
final class DatabaseRoleTests: XCTestCase {
    /// A login role with no rights of its own, on the test cluster (trust authentication); the
    /// database is dropped first, taking the role's grants with it, then the role.
    struct RuntimeRole {
        let name: String
        let url: String

        init(_ db: TestDatabase) throws {
            name = "app_" + db.name.dropFirst(2)
            try Connection(TestEnvironment.adminURL()).execute("CREATE ROLE \(name) LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE")
            url = "host=\(try TestEnvironment.pgSocket()) port=55432 user=\(name) dbname=\(db.name)"
        }

        func drop(after db: TestDatabase) {
            db.drop()
            _ = try? Connection(TestEnvironment.adminURL()).execute("DROP ROLE IF EXISTS \(name)")
        }
    }

    /// A fresh database and a runtime role on it; `role.drop(after: db)` removes both.
    func databaseWithRuntimeRole() throws -> (TestDatabase, RuntimeRole) {
        let db = try TestDatabase()
        do { return (db, try RuntimeRole(db)) } catch { db.drop(); throw error }
    }

    func pinglass(_ args: [String], _ env: [String: String]) throws -> (Int32, String, String) {
        var e = ["PATH": "/usr/bin:/bin", "PINGLASS_ENV_FILE": "/dev/null", "PINGLASS_MIGRATIONS_DIR": try TestDatabase.migrationsDir()]
        e.merge(env) { $1 }
        return try Subprocess.capture(TestEnvironment.binDir() + "/pinglass", args, environment: e)
    }

    func sqlState(_ error: Error) -> String? {
        if case PostgresError.server(let state, _) = error { return state }
        return nil
    }

    /// Without MIGRATION_DATABASE_URL one role does both, as before.
    func testTheMigrationConnectionDefaultsToDatabaseURL() throws {
        XCTAssertEqual(try Config(variables: ["DATABASE_URL": "dbname=a"]).migrationDatabaseURL, "dbname=a")
        let both = try Config(variables: ["DATABASE_URL": "dbname=a user=app", "MIGRATION_DATABASE_URL": "dbname=a user=owner"])
        XCTAssertEqual([both.databaseURL, both.migrationDatabaseURL], ["dbname=a user=app", "dbname=a user=owner"])
        XCTAssertEqual(try Config(variables: ["DATABASE_URL": "dbname=a", "MIGRATION_DATABASE_URL": "  "]).migrationDatabaseURL, "dbname=a")
    }

    func testMigrateGrantsTheRuntimeRoleRowsButNoSchemaChange() throws {
        let (db, role) = try databaseWithRuntimeRole()
        defer { role.drop(after: db) }
        let runtime = try Connection(role.url)
        defer { runtime.close() }
        XCTAssertThrowsError(try runtime.query("SELECT count(*) FROM payments"), "no rights before migrate grants them") {
            XCTAssertEqual(sqlState($0), "42501", "\($0)")
        }

        let env = ["MIGRATION_DATABASE_URL": db.url, "DATABASE_URL": role.url]
        let (status, out, err) = try pinglass(["migrate"], env)
        XCTAssertEqual(status, 0, out + err)
        XCTAssertTrue(out.contains("granted row rights (no DDL) to role \(role.name), the role of DATABASE_URL"), out)
        XCTAssertEqual(try pinglass(["migrate"], env).0, 0, "granting again changes nothing")

        XCTAssertThrowsError(try runtime.execute("DELETE FROM schema_migrations")) { XCTAssertEqual(sqlState($0), "42501") }

        // Rows: read and written, sequences included.
        XCTAssertEqual(try runtime.query("SELECT count(*)::int AS n FROM payments")[0].int("n"), 0)
        let user = try runtime.query("INSERT INTO users (telegram_user_id) VALUES (4242) RETURNING id")[0].requiredInt("id")
        XCTAssertEqual(try runtime.execute("DELETE FROM users WHERE id = $1", [user]), 1)

        // LISTEN/NOTIFY (the duties' wake-ups) and advisory locks (shared budgets) need no grant.
        let listener = Listener(conninfo: role.url, channels: ["refund"])
        XCTAssertFalse(listener.wait(timeout: 0), "listening now, nothing sent yet")
        try runtime.execute("SELECT pg_notify('refund', 'x')")
        XCTAssertTrue(listener.wait(timeout: 10), "the runtime role's LISTEN hears its NOTIFY")
        try runtime.withTransaction { try $0.execute("SELECT pg_advisory_xact_lock(hashtext('rate:kie'))") }

        // The schema: every way around the money triggers is refused.
        for ddl in ["DROP TRIGGER refunds_guard ON refunds",
                    "ALTER TABLE refunds DISABLE TRIGGER refunds_guard",
                    "CREATE OR REPLACE FUNCTION refunds_guard() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
                    "ALTER TABLE payments ADD COLUMN note text",
                    "ALTER TABLE payments DROP CONSTRAINT payments_pkey CASCADE",
                    "DROP TABLE payments CASCADE",
                    "TRUNCATE payments CASCADE",
                    "CREATE TABLE payments_copy (id int)"] {
            XCTAssertThrowsError(try runtime.execute(ddl), ddl) { XCTAssertEqual(sqlState($0), "42501", "\(ddl): \($0)") }
        }
        let owner = try db.connect()
        defer { owner.close() }
        XCTAssertEqual(try owner.query("""
            SELECT tgenabled::text AS e FROM pg_trigger WHERE tgname = 'refunds_guard' AND tgrelid = 'refunds'::regclass
            """).map { $0.requiredString("e") }, ["O"], "the trigger is still there, enabled")

        // A table a later migration creates is covered by the default privileges.
        try owner.execute("CREATE TABLE later_rows (id bigserial PRIMARY KEY, note text)")
        XCTAssertEqual(try runtime.query("INSERT INTO later_rows (note) VALUES ('x') RETURNING id")[0].int("id"), 1)
        XCTAssertThrowsError(try runtime.execute("DROP TABLE later_rows")) { XCTAssertEqual(sqlState($0), "42501") }
        try owner.execute("DROP TABLE later_rows")

        // doctor tells the two apart.
        let (_, fine, _) = try pinglass(["doctor"], env)
        XCTAssertTrue(fine.contains("ok    database role \(role.name) (DATABASE_URL) has row rights only"), fine)
        let (_, warned, _) = try pinglass(["doctor"], ["DATABASE_URL": db.url])
        XCTAssertTrue(warned.contains("warn  database role pinglass (DATABASE_URL) can change the schema (superuser"), warned)
    }

    /// The rows kept forever stay: the runtime role cannot delete a payment, a refund, a job,
    /// a task or a generated photo, may only read and add to the audit trail, and cannot create
    /// anything in the schema even where PUBLIC could (an older cluster's default, planted
    /// here before migrate). What the application does delete (reference photos, prune's
    /// tables, rate events, sessions) it still can. The schema's functions run with a fixed
    /// search_path.
    func testTheRuntimeRoleCannotDeleteMoneyOrRewriteTheAuditTrail() throws {
        let (db, role) = try databaseWithRuntimeRole()
        defer { role.drop(after: db) }
        let owner = try db.connect()
        defer { owner.close() }
        try owner.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")
        let env = ["MIGRATION_DATABASE_URL": db.url, "DATABASE_URL": role.url]
        let (status, out, err) = try pinglass(["migrate"], env)
        XCTAssertEqual(status, 0, out + err)
        let runtime = try Connection(role.url)
        defer { runtime.close() }

        let p = try Fixtures.pendingPayment(owner, telegramID: 64_101, status: "succeeded")
        try runtime.execute("INSERT INTO refunds (payment_id, amount_kopecks, reason, requested_by) VALUES ($1, 100, 'test', 'test')", [p.id])
        try runtime.execute("INSERT INTO admin_audit (actor, action, target, details) VALUES ('test', 'test', 'x', '{}')")
        for sql in ["DELETE FROM payments", "DELETE FROM refunds", "DELETE FROM generation_jobs", "DELETE FROM generation_tasks",
                    "DELETE FROM generated_photos", "DELETE FROM admin_audit", "UPDATE admin_audit SET actor = 'someone else'",
                    "CREATE TABLE payments_copy (id int)", "CREATE VIEW v AS SELECT 1 AS one", "CREATE SEQUENCE s"] {
            XCTAssertThrowsError(try runtime.execute(sql), sql) { XCTAssertEqual(sqlState($0), "42501", "\(sql): \($0)") }
        }
        XCTAssertEqual(try owner.query("SELECT count(*)::int AS n FROM payments")[0].int("n"), 1)
        XCTAssertEqual(try owner.query("SELECT count(*)::int AS n FROM refunds")[0].int("n"), 1)
        XCTAssertEqual(try owner.query("SELECT actor FROM admin_audit").map { $0.string("actor") }, ["test"])
        XCTAssertEqual(try runtime.query("SELECT count(*)::int AS n FROM admin_audit")[0].int("n"), 1, "read")
        XCTAssertFalse(try DatabaseRoles.schemaRights(runtime).createOnSchema)

        // What the application deletes, it still can.
        for table in ["reference_photos", "telegram_deliveries", "webhook_logs", "rate_events", "admin_sessions", "admin_login_failures",
                      "worker_runs", "http_5xx_minutes", "users"] {
            XCTAssertNoThrow(try runtime.execute("DELETE FROM \(table) WHERE false"), table)
        }

        let pinned = try owner.query("""
            SELECT proname::text AS f, array_to_string(proconfig, ',') AS c FROM pg_proc
            WHERE pronamespace = 'public'::regnamespace AND proname IN ('refunds_guard', 'refund_headroom', 'payments_consume_only_succeeded')
            ORDER BY proname
            """)
        XCTAssertEqual(pinned.map { $0.string("f") }, ["payments_consume_only_succeeded", "refund_headroom", "refunds_guard"])
        for f in pinned { XCTAssertEqual(f.string("c"), "search_path=public, pg_temp", f.string("f") ?? "") }
    }

    /// The whole paid story with the runtime role: the pool takes the payment and its
    /// notification and starts the job; dispatch, poll-kie, deliver and refund (its refund row
    /// passes refunds_guard) run as cron runs them; LISTEN/NOTIFY and advisory locks included.
    /// The simulator keeps its own schema with the owner's connection.
    func testThePoolAndTheDutiesRunAsTheRuntimeRole() throws {
        let (db, role) = try databaseWithRuntimeRole()
        defer { role.drop(after: db) }
        let env = ["MIGRATION_DATABASE_URL": db.url, "DATABASE_URL": role.url]
        let (status, out, err) = try pinglass(["migrate"], env)
        XCTAssertEqual(status, 0, out + err)

        let story = try PaidStory(database: db, telegramID: 64_001, environment: env)
        defer { story.stop() }
        XCTAssertEqual(story.cliEnvironment["DATABASE_URL"], role.url)
        try story.kie.set(["failNext": 2])
        try story.prepareAvatar()
        try story.pay()
        let job = try story.startJob()
        _ = try Quiesce(environment: story.cliEnvironment).run()
        try assertSettled(story, job: job, outcome: .partial, "runtime role story")
        let facts = try story.facts(job: job)
        XCTAssertEqual(facts.refunds.map(\.state), ["succeeded"], "refunded through refunds_guard by the runtime role")
        XCTAssertEqual(try story.db.query("""
            SELECT DISTINCT usename::text AS u FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'pinglass-fcgi'
            """).map { $0.requiredString("u") }, [role.name], "the pool's connections are the runtime role's")

        // The customer's photos end as the runtime role ends them: prune's retention pass (the
        // job ended 91 days ago), then the customer's own deletion through nginx and the pool.
        let photos = try story.db.query("SELECT storage_key FROM generated_photos WHERE job_id = $1", [job]).map { $0.requiredString("storage_key") }
        XCTAssertFalse(photos.isEmpty)
        try story.db.execute("UPDATE generation_jobs SET finished_at = now() - interval '91 days' WHERE id = $1", [job])
        let pruned = try story.cli(["prune"])
        XCTAssertEqual(pruned.status, 0, pruned.output)
        XCTAssertEqual(try story.db.query("SELECT count(*)::int AS n FROM generated_photos WHERE media_removed_at IS NULL")[0].int("n"), 0,
                       "the photos past MEDIA_RETENTION_DAYS are removed, their rows kept: \(pruned.output)")
        let deleted = try story.stack.client.execute("DELETE", "/api/me/data", headers: [Fixtures.auth(telegramID: story.telegramID)])
        XCTAssertEqual(deleted.status, 200, deleted.text)
        XCTAssertEqual(try JSON.parse(deleted.body)["deleted"], ["avatars": 1, "references": 1, "photos": 0])
        XCTAssertEqual(try story.db.query("SELECT count(*)::int AS n FROM reference_photos")[0].int("n"), 0)
        let audit = try story.cli(["audit"])
        XCTAssertEqual(audit.status, 0, audit.output)
    }
}

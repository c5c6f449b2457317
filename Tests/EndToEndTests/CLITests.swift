import XCTest
import Foundation
import PinGlassTesting
@testable import PinGlass

/// The `pinglass` and `pinglass-fcgi` executables as an operator runs them.
final class CLITests: XCTestCase {
    func cli(_ args: [String], env: [String: String] = [:]) throws -> (Int32, String, String) {
        try Self.run(args, env: env)
    }

    static func run(_ args: [String], env: [String: String]) throws -> (Int32, String, String) {
        var e = ["PATH": "/usr/bin:/bin", "PINGLASS_ENV_FILE": "/dev/null"]
        e.merge(env) { $1 }
        return try Subprocess.capture(TestEnvironment.binDir() + "/pinglass", args, environment: e)
    }

    func testHelpExplainsEveryCommand() throws {
        let (status, out, _) = try cli(["--help"])
        XCTAssertEqual(status, 0)
        for command in ["migrate", "doctor", "settings", "reconcile", "deliver", "requeue-delivery"] {
            XCTAssertTrue(out.contains(command), command)
        }
        let (s2, migrateHelp, _) = try cli(["migrate", "--help"])
        XCTAssertEqual(s2, 0)
        XCTAssertTrue(migrateHelp.contains("--status"))
        XCTAssertTrue(migrateHelp.contains("advisory lock"))
        let (s3, poolHelp, _) = try Subprocess.capture(TestEnvironment.binDir() + "/pinglass-fcgi", ["--help"])
        XCTAssertEqual(s3, 0)
        XCTAssertTrue(poolHelp.contains("--max-requests"))
        XCTAssertTrue(poolHelp.contains("SIGHUP"))
    }

    /// Defaults read as an operator types them (`10s`), never as a Swift value.
    func testHelpShowsDurationsAsTyped() throws {
        let (status, help, _) = try cli(["reconcile", "--help"])
        XCTAssertEqual(status, 0)
        XCTAssertTrue(help.contains("(default: 10s)"), help)
        for command in [["migrate"], ["doctor"], ["settings"], ["settings", "tbank-mode"], ["reconcile"], ["sign-init-data"]] {
            let (s, out, err) = try cli(command + ["--help"])
            XCTAssertEqual(s, 0, command.joined(separator: " "))
            XCTAssertFalse((out + err).contains("Duration("), "\(command): \(out)")
            XCTAssertFalse((out + err).contains("seconds:"), "\(command): \(out)")
        }
    }

    /// Duty flags: durations shown as written, refused settings named before any configuration is read.
    func testReconcileFlags() throws {
        let (status, help, _) = try cli(["reconcile", "--help"])
        XCTAssertEqual(status, 0)
        XCTAssertTrue(help.contains("(default: 10s)"), help)
        XCTAssertFalse(help.contains("Duration("), help)
        XCTAssertTrue(help.contains("--for <duration>"), help)
        let (s2, o2, e2) = try cli(["reconcile", "--pending-after", "2d"])
        XCTAssertEqual(s2, 64, o2 + e2)
        XCTAssertTrue(e2.contains("--pending-after must be between 0s and 86400s (got 172800)"), e2)
        let (s3, _, e3) = try cli(["reconcile", "--for", "55s", "--every", "0s"])
        XCTAssertEqual(s3, 64)
        XCTAssertTrue(e3.contains("--every must be between"), e3)
    }

    /// `--for/--every` with real sleeps (no synchronisation rests on them): several passes,
    /// one log line each; a run whose passes fail exits 1.
    func testDutyRunLoopsAndExitCodes() throws {
        let db = try makeDatabase()
        let (s1, _, e1) = try cli(["reconcile", "--for", "1s", "--every", "400ms"], env: ["DATABASE_URL": db.url, "LOG_LEVEL": "debug"])
        XCTAssertEqual(s1, 0, e1)
        XCTAssertTrue((2...3).contains(e1.components(separatedBy: "pass done").count - 1), e1)
        XCTAssertEqual(try db.connect().query("SELECT ok FROM worker_runs WHERE name = 'reconcile'").map { $0.bool("ok") }, [true])
        let (s2, _, e2) = try cli(["reconcile"], env: ["DATABASE_URL": "host=/nonexistent port=1 dbname=x connect_timeout=1"])
        XCTAssertEqual(s2, 1, e2)
        XCTAssertTrue(e2.contains("pass failed"), e2)
    }

    /// `deliver`: its help, its settings refused by flag name, and no Telegram without a token.
    func testDeliverFlags() throws {
        let (status, help, _) = try cli(["deliver", "--help"])
        XCTAssertEqual(status, 0)
        for text in ["--chat-interval <duration>", "(default: 1s)", "--global-rate", "retry_after", "requeue-delivery",
                     "Cron: * * * * * pinglass deliver", "(at least 70"] {
            XCTAssertTrue(help.contains(text), "\(text): \(help)")
        }
        let (s2, o2, e2) = try cli(["deliver", "--global-rate", "5"])
        XCTAssertEqual(s2, 64, o2 + e2)
        XCTAssertTrue(e2.contains("--global-rate must be between 10 and 1000 (got 5)"), e2)
        let (s3, _, e3) = try cli(["deliver", "--chat-interval", "0s"])
        XCTAssertEqual(s3, 64)
        XCTAssertTrue(e3.contains("--chat-interval must be between"), e3)
        let (s5, _, e5) = try cli(["deliver", "--lease", "60"])
        XCTAssertEqual(s5, 64)
        XCTAssertTrue(e5.contains("--lease must be between 70s and 3600s (got 60)"), e5)
        let db = try makeDatabase()
        let (s4, o4, e4) = try cli(["deliver"], env: ["DATABASE_URL": db.url])
        XCTAssertEqual(s4, 78, o4 + e4)
        XCTAssertTrue(e4.contains("TELEGRAM_BOT_TOKEN is not set"), e4)
    }

    /// The generation duties refuse to start without the Kie key they call with (exit 78,
    /// naming it), rather than failing every pass.
    func testGenerationDutiesRefuseToStartWithoutTheKieKey() throws {
        let db = try makeDatabase()
        for command in ["dispatch", "poll-kie"] {
            let (status, out, err) = try cli([command, "--for", "2s", "--every", "1s"], env: ["DATABASE_URL": db.url])
            XCTAssertEqual(status, 78, "\(command): \(out + err)")
            XCTAssertTrue(err.contains("KIE_API_KEY is not set"), "\(command): \(err)")
            XCTAssertFalse(err.contains("pass failed"), "\(command): no pass ran: \(err)")
        }
        XCTAssertEqual(try db.connect().query("SELECT count(*)::int AS n FROM worker_runs")[0].int("n"), 0, "no heartbeat: nothing ran")
    }

    /// `requeue-delivery`: failed rows go back with an audit row; unknown and not-failed ids
    /// are named on stderr and make the exit code 1.
    func testRequeueDelivery() throws {
        let db = try makeDatabase()
        let c = try db.connect()
        func row(_ state: String) throws -> Int {
            try c.query("""
                INSERT INTO telegram_deliveries (chat_id, kind, payload, state, attempts, give_up_at, last_error, sent_at)
                VALUES (42, 'alert', '{"key":"k","text":"t"}', $1, 3, now() - interval '1 hour', 'HTTP 502',
                        CASE WHEN $1 = 'sent' THEN now() END)
                RETURNING id
                """, [state])[0].requiredInt("id")
        }
        let failed = try row("failed"), sent = try row("sent")
        let (status, out, err) = try cli(["requeue-delivery", String(failed), String(sent), "999999"],
                                         env: ["DATABASE_URL": db.url, "USER": "operator7"])
        XCTAssertEqual(status, 1, out + err)
        XCTAssertTrue(out.contains("delivery \(failed): failed → pending (attempts so far: 3; gives up at "), out)
        XCTAssertTrue(err.contains("delivery \(sent): is sent, not failed; left alone"), err)
        XCTAssertTrue(err.contains("delivery 999999: no such delivery"), err)
        let states = try c.query("SELECT id, state, give_up_at > now() + interval '23 hours' AS later FROM telegram_deliveries ORDER BY id")
        XCTAssertEqual(states.map { $0.requiredString("state") }, ["pending", "sent"])
        XCTAssertEqual(states[0].bool("later"), true)
        let audit = try c.query("SELECT actor, action, target FROM admin_audit")
        XCTAssertEqual(audit.map { "\($0.requiredString("actor")) \($0.requiredString("action")) \($0.requiredString("target"))" },
                       ["cli:operator7 delivery.requeue telegram_delivery:\(failed)"])
        let (s2, _, e2) = try cli(["requeue-delivery"], env: ["DATABASE_URL": db.url])
        XCTAssertEqual(s2, 64, e2)
    }

    /// `requeue-delivery` refuses a delivery whose photos were removed (the customer deleted
    /// them, or the retention): exit 1, why on stderr, the row left failed, nothing recorded.
    func testRequeueDeliveryRefusesOneWhosePhotosWereRemoved() throws {
        let db = try makeDatabase()
        let c = try db.connect()
        let job = try DeliveryFixtures.finishedJob(try PollFixtures.deps(db), telegramID: 7851, photos: 3, succeeded: 3)
        let album = try XCTUnwrap(try DeliveryFixtures.rows(c, jobID: job.id).first)
        try c.execute("UPDATE telegram_deliveries SET state = 'failed', last_error = 'withdrawn: the customer deleted their data' WHERE id = $1",
                      [album.id])
        try c.execute("UPDATE generated_photos SET media_removed_at = now() WHERE job_id = $1", [job.id])
        let (status, out, err) = try cli(["requeue-delivery", String(album.id)], env: ["DATABASE_URL": db.url, "USER": "operator7"])
        XCTAssertEqual(status, 1, out + err)
        XCTAssertEqual(out, "")
        XCTAssertTrue(err.contains("delivery \(album.id): 3 of its photos were removed"), err)
        XCTAssertTrue(err.contains("MEDIA_RETENTION_DAYS"), err)
        XCTAssertTrue(err.contains("nothing to send, left failed"), err)
        XCTAssertEqual(try DeliveryFixtures.rows(c, jobID: job.id).first?.state, "failed")
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM admin_audit")[0].requiredInt("n"), 0)
    }

    /// The audit's line of cron.d/pinglass, run as cron runs it (`/bin/sh -c`, no pipefail):
    /// a violation alerts the admin chat once per rule and hour, the report reaches both syslog
    /// (`logger`, recorded here by a stand-in on PATH) and the line's stdout (cron's mail), and
    /// the line exits with audit's own status.
    func testAuditCronLineAlertsAndReachesSyslogAndMail() throws {
        let cron = try String(contentsOfFile: TestEnvironment.root() + "/cron.d/pinglass", encoding: .utf8)
        let line = try XCTUnwrap(cron.split(separator: "\n").first { !$0.hasPrefix("#") && $0.contains("pinglass audit") })
        // Five schedule fields and the user, then the command as cron hands it to the shell.
        var rest = Substring(line)
        for _ in 0..<6 { rest = rest.drop { $0 != " " }.drop { $0 == " " } }
        let command = String(rest)
        XCTAssertTrue(command.contains("logger -t pinglass-audit"), command)

        let dir = try TestEnvironment.makeTempDir("audit-cron")
        let syslog = dir + "/syslog"
        try "#!/bin/sh\necho \"logger $*\" >> \(syslog)\ncat >> \(syslog)\n".write(toFile: dir + "/logger", atomically: true, encoding: .utf8)
        XCTAssertEqual(chmod(dir + "/logger", 0o755), 0)
        let db = try makeDatabase()
        let c = try db.connect()
        let stuck = try c.query("""
            INSERT INTO telegram_deliveries (chat_id, kind, payload, state, lease_token, lease_until, give_up_at)
            VALUES (42, 'alert', '{"key":"k","text":"t"}', 'sending', gen_random_uuid(), now() - interval '1 hour', now() + interval '1 day')
            RETURNING id
            """)[0].requiredInt("id")
        let env = ["PATH": "\(dir):\(try TestEnvironment.binDir()):/usr/bin:/bin", "PINGLASS_ENV_FILE": "/dev/null",
                   "DATABASE_URL": db.url, "ADMIN_TELEGRAM_CHAT_ID": "-1007", "LOG_FORMAT": "text"]
        func runLine() throws -> (Int32, String) {
            let (status, out, err) = try Subprocess.capture("/bin/sh", ["-c", command], environment: env)
            XCTAssertEqual(err, "", "nothing but the report, on stdout")
            return (status, out)
        }
        let rule = "no delivery or refund lease expired long ago is left behind (delivery ids, then refund ids)"
        let (status, mail) = try runLine()
        XCTAssertEqual(status, 1, mail)
        XCTAssertTrue(mail.contains("VIOLATION  \(rule): \(stuck)"), mail)
        XCTAssertTrue(mail.contains("1 violated"), mail)
        XCTAssertTrue(mail.contains("1 new alert(s) for the admin chat"), mail)
        let logged = try String(contentsOfFile: syslog, encoding: .utf8)
        XCTAssertTrue(logged.hasPrefix("logger -t pinglass-audit\n"), logged)
        XCTAssertTrue(logged.contains("VIOLATION  \(rule): \(stuck)"), logged)
        func alerts() throws -> [String] {
            try c.query("SELECT chat_id::text || ' ' || (payload ->> 'key') AS a FROM telegram_deliveries WHERE kind = 'alert' AND chat_id = -1007")
                .map { $0.requiredString("a") }
        }
        XCTAssertEqual(try alerts(), ["-1007 audit:no-delivery-or-refund-lease-expired-long-ago-is-left-behind"])

        let (again, mail2) = try runLine()
        XCTAssertEqual(again, 1, mail2)
        XCTAssertTrue(mail2.contains("0 new alert(s)"), mail2)
        XCTAssertEqual(try alerts().count, 1, "once per rule and hour")

        try c.execute("UPDATE telegram_deliveries SET state = 'failed', lease_token = NULL, lease_until = NULL WHERE id = $1", [stuck])
        let before = try String(contentsOfFile: syslog, encoding: .utf8)
        let (clean, mail3) = try runLine()
        XCTAssertEqual(clean, 0, mail3)
        XCTAssertEqual(mail3, "", "every rule holds: nothing for cron to mail")
        XCTAssertEqual(try String(contentsOfFile: syslog, encoding: .utf8), before + "logger -t pinglass-audit\n", "and nothing logged")
        XCTAssertEqual(try c.query("SELECT ok FROM worker_runs WHERE name = 'audit'").map { $0.bool("ok") }, [true], "the pass is recorded")
    }

    func testMissingConfigurationIsOneClearMessage() throws {
        let (status, out, err) = try cli(["migrate"])
        XCTAssertEqual(status, 78, "EX_CONFIG, not a usage error")
        XCTAssertTrue((out + err).contains("DATABASE_URL is not set"), out + err)
        XCTAssertFalse((out + err).contains("Fatal error"))
        XCTAssertFalse((out + err).contains("Usage:"), "a configuration problem is not a typo: \(out + err)")
        XCTAssertFalse((out + err).contains("configuration: configuration:"), out + err)
        let (sd, od, _) = try cli(["doctor"])
        XCTAssertEqual(sd, 1)
        XCTAssertTrue(od.contains("FAIL  configuration: DATABASE_URL is not set"), od)
        let (s2, o2, e2) = try cli(["migrate"], env: ["DATABASE_URL": "x", "KIE_RATE_LIMIT": "many"])
        XCTAssertNotEqual(s2, 0)
        XCTAssertTrue((o2 + e2).contains("KIE_RATE_LIMIT is invalid"), o2 + e2)
        let (s3, _, e3) = try Subprocess.capture(TestEnvironment.binDir() + "/pinglass-fcgi", ["--socket", "/tmp/x.sock"],
                                                 environment: ["PINGLASS_ENV_FILE": "/dev/null"])
        XCTAssertEqual(s3, 2)
        XCTAssertTrue(e3.contains("DATABASE_URL is not set"), e3)
        let (s4, _, e4) = try Subprocess.capture(TestEnvironment.binDir() + "/pinglass-fcgi", ["--socket", "/tmp/x.sock", "--workers", "0"])
        XCTAssertEqual(s4, 2)
        XCTAssertTrue(e4.contains("--workers must be a whole number"), e4)
    }

    func testMigrateStatusAndConcurrentRuns() throws {
        let db = try makeDatabase(migrated: false)
        let env = ["DATABASE_URL": db.url, "PINGLASS_MIGRATIONS_DIR": try TestDatabase.migrationsDir()]
        let (s0, pending, _) = try cli(["migrate", "--status"], env: env)
        XCTAssertEqual(s0, 0)
        XCTAssertTrue(pending.contains("pending   0001_schema.sql"), pending)
        // Two migrate processes at once: the advisory lock makes one wait; both succeed.
        let runs = (0..<2).map { _ in InFlightCommand { try CLITests.run(["migrate"], env: env) } }
        let results = runs.map { $0.wait() }
        XCTAssertEqual(results.map(\.0), [0, 0], results.map { $0.1 + $0.2 }.joined())
        let files = try FileManager.default.contentsOfDirectory(atPath: try TestDatabase.migrationsDir())
            .filter { $0.hasSuffix(".sql") }.count
        XCTAssertGreaterThanOrEqual(files, 3)
        let applied = results.filter { $0.1.contains("applied \(files) migration(s)") }.count
        let upToDate = results.filter { $0.1.contains("database is up to date") }.count
        XCTAssertEqual(applied, 1)
        XCTAssertEqual(upToDate, 1)
        let (s1, status, _) = try cli(["migrate", "--status"], env: env)
        XCTAssertEqual(s1, 0)
        XCTAssertTrue(status.contains("applied   0002_catalogue.sql"), status)
        XCTAssertEqual(try db.connect().query("SELECT count(*)::int AS n FROM schema_migrations")[0].int("n"), files)
    }

    func testDoctorReportsProblemsWithoutSecrets() throws {
        let db = try makeDatabase()
        let dir = try TestEnvironment.makeTempDir("doctor")
        let env = ["DATABASE_URL": db.url, "PINGLASS_MIGRATIONS_DIR": try TestDatabase.migrationsDir(), "STORAGE_DIR": dir,
                   "TBANK_TEST_TERMINAL_KEY": "DEMO", "TBANK_TEST_PASSWORD": "very-secret", "MEDIA_KEY_SECRET": "media-secret-0123456789"]
        let (status, out, _) = try cli(["doctor"], env: env)
        XCTAssertEqual(status, 0, out)
        XCTAssertTrue(out.contains("database reachable"))
        XCTAssertTrue(out.contains("ok    MEDIA_KEY_SECRET set"), out)
        XCTAssertTrue(out.contains("ok    storage: fs, STORAGE_DIR \(dir) writable"), out)
        XCTAssertTrue(out.contains("all checks passed"))
        XCTAssertFalse(out.contains("very-secret"))
        XCTAssertFalse(out.contains("media-secret"))
        var noKey = env
        noKey["MEDIA_KEY_SECRET"] = nil
        let (s1, o1, _) = try cli(["doctor"], env: noKey)
        XCTAssertEqual(s1, 1)
        XCTAssertTrue(o1.contains("FAIL  MEDIA_KEY_SECRET not set"), o1)
        let (s2, o2, _) = try cli(["doctor"], env: ["DATABASE_URL": "host=/nonexistent dbname=x connect_timeout=1", "STORAGE_DIR": dir])
        XCTAssertEqual(s2, 1)
        XCTAssertTrue(o2.contains("FAIL  database"), o2)
    }

    /// With STORAGE=s3 doctor writes, reads and deletes a probe object on the real server
    /// (moto, checking signatures): right keys pass; a wrong secret fails, unnamed.
    func testDoctorChecksTheS3Bucket() throws {
        let moto = try MotoS3.shared()
        try moto.requireSignatures(true)
        let db = try makeDatabase()
        var env = ["DATABASE_URL": db.url, "PINGLASS_MIGRATIONS_DIR": try TestDatabase.migrationsDir(), "STORAGE": "s3",
                   "S3_ENDPOINT": moto.url, "S3_BUCKET": moto.bucket, "S3_REGION": moto.region, "S3_ACCESS_KEY_ID": moto.accessKeyID,
                   "S3_SECRET_ACCESS_KEY": moto.secretAccessKey, "MEDIA_KEY_SECRET": "media-secret-0123456789",
                   "TBANK_TEST_TERMINAL_KEY": "DEMO", "TBANK_TEST_PASSWORD": "pw"]
        let (status, out, _) = try cli(["doctor"], env: env)
        XCTAssertEqual(status, 0, out)
        XCTAssertTrue(out.contains("ok    storage: s3, bucket \(moto.bucket) at \(moto.url) (write, read, delete ok)"), out)
        XCTAssertFalse(out.contains(moto.secretAccessKey))
        env["S3_SECRET_ACCESS_KEY"] = "wrong-secret-wrong-secret"
        let (s2, o2, _) = try cli(["doctor"], env: env)
        XCTAssertEqual(s2, 1)
        XCTAssertTrue(o2.contains("FAIL  storage: s3, bucket \(moto.bucket) at \(moto.url): media storage unavailable: S3 PUT answered 403 SignatureDoesNotMatch"), o2)
        XCTAssertFalse(o2.contains("wrong-secret"))
    }
}

final class InFlightCommand: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var result: (Int32, String, String) = (-1, "", "")
    init(_ body: @escaping @Sendable () throws -> (Int32, String, String)) {
        Thread.detachNewThread { [self] in
            result = (try? body()) ?? (-1, "", "spawn failed")
            done.signal()
        }
    }
    func wait() -> (Int32, String, String) { done.wait(); return result }
}

import XCTest
import Foundation
import PinGlass
import PinGlassTesting
import JSON
import ProviderWire
#if canImport(Glibc)
import Glibc
#endif

/// The edges an attacker uses, through the real parts: path variants against the production
/// nginx block with a real pool behind it, `/api/health` through nginx from an address that is
/// not loopback, and the executables that must refuse to run beside real money.
final class EdgeRefusalTests: DatabaseTestCase {
    var stack: Stack?
    override func tearDown() {
        stack?.stop()
        super.tearDown()
    }

    /// curl with the path sent exactly as written (no dot-segment or slash clean-up by curl).
    func curl(_ url: String, method: String = "GET", body: String? = nil, from source: String? = nil,
              headers: [String] = []) throws -> (status: String, body: String) {
        var args = ["-sk", "--path-as-is", "-X", method, "-w", "\n%{http_code}"]
        if let source { args += ["--interface", source] }
        if let body { args += ["-H", "Content-Type: application/json", "--data-binary", body] }
        for h in headers { args += ["-H", h] }
        let out = try Subprocess.capture("/usr/bin/curl", args + [url]).1
        let split = out.lastIndex(of: "\n").map { (String(out[..<$0]), String(out[out.index(after: $0)...])) } ?? ("", out)
        return (split.1, split.0)
    }

    func webhookLogs() throws -> Int {
        try db.connect().query("SELECT count(*)::int AS n FROM webhook_logs")[0].requiredInt("n")
    }

    /// nginx normalises the URI (slashes merged, %XX decoded, dot segments resolved) before it
    /// picks a location and passes that same URI on as DOCUMENT_URI; the router takes only
    /// exact paths. So every variant of the guarded paths either lands in the guarded location
    /// (403 outside the bank's networks or the metrics allow-list, 413 over 64 KB) or is a 404
    /// from the app: none reaches the webhook, the callback or the metrics past the guards.
    func testPathVariantsNeverGetPastNginxsGuards() throws {
        let stack = try Stack(database: db, workers: 1, env: ["KIE_WEBHOOK_HMAC_KEY": "edge-test-webhook-key"])
        self.stack = stack
        let site = try String(contentsOfFile: TestEnvironment.root() + "/nginx/pinglass.conf", encoding: .utf8)
            .replacingOccurrences(of: "unix:/run/pinglass/fcgi.sock", with: "unix:" + stack.socket)
        let (dir, port) = try NginxConfigTests.startProductionBlock(site)
        defer { _ = try? Subprocess.run("/usr/sbin/nginx", ["-p", dir, "-c", dir + "/nginx.conf", "-s", "stop"]) }
        let base = "https://127.0.0.1:\(port)"
        let stranger = "127.0.0.2"   // neither a bank network nor on the /metrics allow-list

        for path in ["/api/payment/webhook", "//api/payment/webhook", "/api//payment/webhook", "/api/payment/%77ebhook",
                     "/api/payment/./webhook", "/api/payment/x/../webhook", "/api/%70ayment/webhook"] {
            XCTAssertEqual(try curl(base + path, method: "POST", body: "{}", from: stranger).status, "403", path)
        }
        // nginx refuses a NUL outright (it would end the path in a C string further on).
        XCTAssertEqual(try curl(base + "/api/payment/webhook%00", method: "POST", body: "{}", from: stranger).status, "400")
        for path in ["/api/payment/webhook/", "/api/payment/webhook%2F", "/api/payment/webhook/.", "/api/payment/webhook//",
                     "/api/payment/%77ebhook/", "/api/payment/webhook%20", "/api/payment/webhook;x", "/api/payment/WEBHOOK"] {
            let r = try curl(base + path, method: "POST", body: "{}", from: stranger)
            XCTAssertEqual(r.status, "404", path)
            XCTAssertTrue(r.body.contains("NOT_FOUND"), "\(path): \(r.body)")
        }

        let big = #"{"data":{"taskId":"t1","pad":""# + String(repeating: "x", count: 100_000) + #""}}"#
        for path in ["/api/kie/callback", "//api/kie/callback", "/api/kie/%63allback", "/api/./kie/callback"] {
            XCTAssertEqual(try curl(base + path, method: "POST", body: big, from: stranger).status, "413", path)
        }
        for path in ["/api/kie/callback/", "/api/kie/callback%2F", "/api/kie//callback/"] {
            XCTAssertEqual(try curl(base + path, method: "POST", body: big, from: stranger).status, "404", path)
        }

        for path in ["/metrics", "//metrics", "/%6Detrics", "/./metrics"] {
            XCTAssertEqual(try curl(base + path, from: stranger).status, "403", path)
        }
        for path in ["/metrics/", "/metrics%2F", "//metrics//"] {
            let r = try curl(base + path, from: stranger)
            XCTAssertEqual(r.status, "404", path)
            XCTAssertFalse(r.body.contains("pinglass_"), path)
        }

        XCTAssertEqual(try webhookLogs(), 0, "no variant reached the webhook or the callback")
        // The guards let the right callers through to the real handlers.
        XCTAssertEqual(try curl(base + "/metrics", from: "127.0.0.1").status, "200")
        XCTAssertEqual(try curl(base + "/api/kie/callback", method: "POST", body: #"{"data":{"taskId":"t1"}}"#, from: stranger).status, "401")
        XCTAssertEqual(try webhookLogs(), 1)
    }

    /// Through the local nginx (local.conf.in) and a real pool: the original client's
    /// generation request with a 10 MB photo inline (~14 MB of JSON) reaches the app, which
    /// answers it (401 here: no init data) instead of nginx's 413.
    func testTheLocalNginxPassesAnInlineReferencePhotoToGenerate() throws {
        let stack = try Stack(database: db, workers: 1)
        self.stack = stack
        let body = try NginxConfigTests.inlineReferenceBody(megabytes: 14)
        let out = try Subprocess.capture("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
                                                           "-H", "Content-Type: application/json", "--data-binary", "@" + body,
                                                           stack.baseURL + "/api/generate"]).1
        XCTAssertEqual(out, "401")
    }

    /// An address of this machine that is not loopback (connections from it to 127.0.0.1
    /// arrive with it as REMOTE_ADDR); nil when the machine has none.
    static func nonLoopbackAddress() -> String? {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { return nil }
        defer { freeifaddrs(list) }
        var p = list
        while let ifa = p?.pointee {
            defer { p = ifa.ifa_next }
            guard let sa = ifa.ifa_addr, sa.pointee.sa_family == sa_family_t(AF_INET) else { continue }
            var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
            var addr = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
            guard inet_ntop(AF_INET, &addr, &text, socklen_t(text.count)) != nil else { continue }
            let s = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if !s.hasPrefix("127.") { return s }
        }
        return nil
    }

    /// Through nginx (local.conf.in) and the pool: a caller from a non-loopback address gets
    /// `{"status": …}` alone, also when it claims to be loopback in X-Forwarded-For or
    /// X-Real-IP; loopback gets every check (the audit duty too); once the caller's network
    /// is in HEALTH_DETAIL_NETWORKS it gets them as well.
    func testHealthShowsItsChecksOnlyToLoopbackAndTheConfiguredNetworks() throws {
        guard let outsider = Self.nonLoopbackAddress() else {
            // CI (PINGLASS_TEST_NO_SKIP, set by .ci/run) counts a skip as a failure.
            let why = "this machine has no non-loopback IPv4 address"
            if ProcessInfo.processInfo.environment["PINGLASS_TEST_NO_SKIP"] != nil { return XCTFail(why) }
            throw XCTSkip(why)
        }
        let stack = try Stack(database: db, workers: 1)
        self.stack = stack
        let url = stack.baseURL + "/api/health"
        func health(from source: String, headers: [String] = []) throws -> JSON {
            let r = try curl(url, from: source, headers: headers)
            XCTAssertEqual(r.status, "200", r.body)
            return try JSON.parse(Array(r.body.utf8))
        }
        let local = try health(from: "127.0.0.1")
        XCTAssertEqual(local["checks"]?["database"]?["ok"], true)
        XCTAssertNotNil(local["checks"]?["workers"]?["audit"])
        let status = try XCTUnwrap(local["status"])
        XCTAssertEqual(try health(from: outsider), ["status": status])
        XCTAssertEqual(try health(from: outsider, headers: ["X-Forwarded-For: 127.0.0.1", "X-Real-IP: 127.0.0.1"]), ["status": status])

        stack.stopPool()
        stack.environment["HEALTH_DETAIL_NETWORKS"] = "\(outsider)/32, 2001:db8::/32"
        try stack.startPool()
        XCTAssertEqual(try health(from: outsider)["checks"]?["database"]?["ok"], true)
    }

    /// `pinglass audit` leaves its heartbeat (ok when nothing is broken), which health lists.
    func testTheAuditsHeartbeatShowsInHealth() throws {
        let (status, out, err) = try CLITests.run(["audit"], env: ["DATABASE_URL": db.url])
        XCTAssertEqual(status, 0, out + err)
        let rows = try db.connect().query("SELECT ok, summary->>'violations' AS v FROM worker_runs WHERE name = 'audit'")
        XCTAssertEqual(rows.map { $0.bool("ok") }, [true])
        XCTAssertEqual(rows.first?.string("v"), "0")
        let health = try JSON.parse(try InProcessApp(database: db).client.get("/api/health").body)
        XCTAssertEqual(health["checks"]?["workers"]?["audit"]?["ok"], true)
        XCTAssertNotNil(health["checks"]?["workers"]?["audit"]?["lastRunAt"]?.stringValue)

        // Hourly: silent only once no audit passed for over two hours (not after 5 minutes).
        let c = try db.connect()
        func silent(hoursAgo: Int) throws -> Bool {
            try c.execute("UPDATE worker_runs SET finished_at = now() - make_interval(hours => $1) WHERE name = 'audit'", [hoursAgo])
            return try SweepAlerts(config: .init(), adminChatID: nil).conditions(c).contains { $0.key == "worker-silent:audit" }
        }
        XCTAssertFalse(try silent(hoursAgo: 1))
        XCTAssertTrue(try silent(hoursAgo: 3))
    }

    /// The simulator starts only when our address and every provider's are loopback; the
    /// check comes before anything else (here the database is unreachable, so a simulator
    /// past the check stops at the database instead).
    func testTheSimulatorRefusesToStartBesideRealProviders() throws {
        let loopback = ["PUBLIC_BASE_URL": "http://127.0.0.1:18080", "TBANK_API_URL": "http://127.0.0.1:18081/v2",
                        "KIE_API_URL": "http://localhost:18081/kie", "TELEGRAM_API_URL": "http://[::1]:18081/telegram"]
        func start(_ env: [String: String]) throws -> (Int32, String) {
            let e = ["PATH": "/usr/bin:/bin", "PINGLASS_ENV_FILE": "/dev/null",
                     "DATABASE_URL": "host=/nonexistent port=1 dbname=x connect_timeout=1"].merging(env) { $1 }
            let (status, out, err) = try Subprocess.capture(TestEnvironment.binDir() + "/pinglass-sim",
                                                            ["--socket", try TestEnvironment.tmp() + "/edge-sim.sock"], environment: e)
            return (status, out + err)
        }
        let (okStatus, okOut) = try start(loopback)
        XCTAssertNotEqual(okStatus, 0)
        XCTAssertTrue(okOut.contains("database:"), okOut)
        for name in loopback.keys.sorted() {
            for value in ["https://api.example.com", nil] {
                var env = loopback
                env[name] = value
                let (status, out) = try start(env)
                XCTAssertEqual(status, 2, "\(name)=\(value ?? "unset"): \(out)")
                XCTAssertTrue(out.contains(name) && out.contains("loopback"), "\(name)=\(value ?? "unset"): \(out)")
                XCTAssertFalse(out.contains("database:"), out)
            }
        }
    }

    /// sign-init-data on a public install: refused without --force; every run that signs is in
    /// admin_audit, forced or not.
    func testSignInitDataRefusesOnAPublicInstallUnlessForcedAndIsAudited() throws {
        let env = ["DATABASE_URL": db.url, "TELEGRAM_BOT_TOKEN": Fixtures.botToken, "USER": "operator9"]
        func audit() throws -> [(String, String, String)] {
            try db.connect().query("SELECT actor, target, details->>'forced' AS forced FROM admin_audit WHERE action = 'sign-init-data' ORDER BY id")
                .map { ($0.requiredString("actor"), $0.requiredString("target"), $0.requiredString("forced")) }
        }
        let publicEnv = env.merging(["PUBLIC_BASE_URL": "https://pinglass.example"]) { $1 }
        let (s1, o1, e1) = try CLITests.run(["sign-init-data", "--telegram-id", "42"], env: publicEnv)
        XCTAssertEqual(s1, 1, o1 + e1)
        XCTAssertEqual(o1, "", "nothing signed")
        XCTAssertTrue(e1.contains("--force"), e1)
        XCTAssertEqual(try audit().count, 0)

        let (s2, o2, e2) = try CLITests.run(["sign-init-data", "--telegram-id", "42", "--force"], env: publicEnv)
        XCTAssertEqual(s2, 0, e2)
        let user = try TelegramInitData.validate(o2.trimmingCharacters(in: .whitespacesAndNewlines), botToken: Fixtures.botToken,
                                                 now: Date().timeIntervalSince1970, maxAge: 60)
        XCTAssertEqual(user.id, 42)
        let (s3, _, e3) = try CLITests.run(["sign-init-data", "--telegram-id", "43"],
                                           env: env.merging(["PUBLIC_BASE_URL": "http://127.0.0.1:8080"]) { $1 })
        XCTAssertEqual(s3, 0, e3)
        let rows = try audit()
        XCTAssertEqual(rows.map(\.1), ["telegram:42", "telegram:43"])
        XCTAssertEqual(rows.map(\.2), ["true", "false"])
        XCTAssertTrue(rows.allSatisfy { $0.0.hasPrefix("cli:") }, "\(rows)")

        let (help, helpOut, _) = try CLITests.run(["sign-init-data", "--help"], env: [:])
        XCTAssertEqual(help, 0)
        XCTAssertTrue(helpOut.contains("--force") && helpOut.contains("admin_audit"), helpOut)
    }

    /// doctor names a missing KIE_WEBHOOK_HMAC_KEY, and test mode on a public base URL.
    func testDoctorNamesTheMissingKieKeyAndTestModeOnAPublicURL() throws {
        let base = ["DATABASE_URL": db.url, "PINGLASS_MIGRATIONS_DIR": try TestDatabase.migrationsDir(),
                    "STORAGE_DIR": try TestEnvironment.makeTempDir("doctor-media")]
        let (_, publicOut, _) = try CLITests.run(["doctor"], env: base.merging(["PUBLIC_BASE_URL": "https://pinglass.example"]) { $1 })
        XCTAssertTrue(publicOut.contains("warn  KIE_WEBHOOK_HMAC_KEY not set: /api/kie/callback answers 404"), publicOut)
        XCTAssertTrue(publicOut.contains("warn  T-Bank mode 'test' on a public PUBLIC_BASE_URL"), publicOut)
        let (_, localOut, _) = try CLITests.run(["doctor"], env: base.merging(["PUBLIC_BASE_URL": "http://127.0.0.1:8080",
                                                                                "KIE_WEBHOOK_HMAC_KEY": "doctor-key"]) { $1 })
        XCTAssertTrue(localOut.contains("ok    KIE_WEBHOOK_HMAC_KEY set"), localOut)
        XCTAssertFalse(localOut.contains("on a public PUBLIC_BASE_URL"), localOut)
    }
}

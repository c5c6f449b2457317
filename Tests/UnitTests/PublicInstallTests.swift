import Foundation
import PinGlassTesting
import Postgres
import XCTest
import JSON
import PinGlassConfig
@testable import PinGlass
@testable import PinGlassWeb

/// What an outsider can reach or learn on a public install (PUBLIC_BASE_URL not loopback),
/// in-process: test money buys nothing there, `/api/health` shows its parts only to the
/// operator's addresses, and the router takes exact paths only.
final class PublicInstallTests: DatabaseTestCase {
    var c: Connection!

    override func setUpWithError() throws {
        try super.setUpWithError()
        c = try db.connect()
    }

    func app(_ extra: [String: String] = [:]) throws -> InProcessApp {
        var env = Fixtures.env(simURL: "http://127.0.0.1:9")
        env["MEDIA_KEY_SECRET"] = GenerationFixtures.mediaSecret
        env["STORAGE_DIR"] = try TestEnvironment.makeTempDir("media")
        return try InProcessApp(database: db, env: env.merging(extra) { $1 })
    }

    func setMode(_ mode: String) throws {
        try c.execute("INSERT INTO settings (key, value) VALUES ('tbank_mode', $1) ON CONFLICT (key) DO UPDATE SET value = $1", [mode])
    }

    func generate(_ app: InProcessApp, _ tg: Int64, avatar: Int) throws -> TestClient.Response {
        try app.client.post("/api/generate", body: #"{"avatarId":\#(avatar)}"#, headers: [Fixtures.auth(telegramID: tg)])
    }

    func usable(_ app: InProcessApp, _ tg: Int64, _ bankID: String) throws -> JSON? {
        let auth = Fixtures.auth(telegramID: tg)
        return try JSON.parse(try app.client.get("/api/payment/status", query: "payment_id=\(bankID)", headers: [auth]).body)["usable"]
    }

    // MARK: test payments

    /// Test mode is in force (no production switch), but the install is public: a stranger's
    /// test-terminal payment starts nothing and the status says it is not usable; staff on
    /// TEST_TELEGRAM_IDS still test the live system. On loopback test mode works as before.
    func testTestPaymentsBuyNothingOnAPublicInstallWhateverTheMode() throws {
        let stranger = try GenerationFixtures.readyToGenerate(c, telegramID: 9801)
        let staff = try GenerationFixtures.readyToGenerate(c, telegramID: 9802)
        let public_ = try app(["PUBLIC_BASE_URL": "https://pinglass.example", "TEST_TELEGRAM_IDS": "9802"])
        XCTAssertEqual(try PaymentSettings.terminalMode(c), .test)

        XCTAssertEqual(try usable(public_, 9801, stranger.bankID), false)
        let refused = try generate(public_, 9801, avatar: stranger.avatarID)
        XCTAssertEqual(refused.status, 402, refused.text)
        XCTAssertEqual(try JSON.parse(refused.body)["error"]?["code"]?.stringValue, "PAYMENT_REQUIRED")
        XCTAssertTrue(refused.text.contains("test payments"), refused.text)
        XCTAssertNil(try c.query("SELECT consumed_by_job FROM payments WHERE id = $1", [stranger.paymentID])[0].int("consumed_by_job"))

        XCTAssertEqual(try usable(public_, 9802, staff.bankID), true)
        XCTAssertEqual(try generate(public_, 9802, avatar: staff.avatarID).status, 202, "staff on TEST_TELEGRAM_IDS")

        // Production in force on the public install: still staff only.
        try setMode("production")
        XCTAssertEqual(try usable(try app(["PUBLIC_BASE_URL": "https://pinglass.example", "TBANK_TERMINAL_KEY": "P", "TBANK_PASSWORD": "p"]),
                                  9801, stranger.bankID), false)
        try setMode("test")

        // A local install in test mode: anyone's test payment is money there.
        let local = try app(["PUBLIC_BASE_URL": "http://127.0.0.1:8080"])
        XCTAssertEqual(try usable(local, 9801, stranger.bankID), true)
        XCTAssertEqual(try generate(local, 9801, avatar: stranger.avatarID).status, 202)
    }

    /// The sweep alerts (at most hourly to the admin chat) while test mode is in force on a
    /// public install; not in production mode, not on a local install.
    func testTheSweepAlertsWhileTestModeIsInForceOnAPublicInstall() throws {
        func alerted(_ env: [String: String]) throws -> Bool {
            let deps = try PollFixtures.deps(db, env: env.merging(["ADMIN_TELEGRAM_CHAT_ID": "4242"]) { $1 })
            _ = try Sweeper(deps: deps).runOnce(now: deps.clock(), deadline: deps.clock() + 30)
            let rows = try c.query("SELECT payload->>'text' AS text FROM telegram_deliveries WHERE payload->>'key' = 'tbank-test-mode-public'")
            try c.execute("DELETE FROM telegram_deliveries")
            if let text = rows.first?.string("text") { XCTAssertTrue(text.contains("test mode on a public install"), text) }
            return rows.count == 1
        }
        XCTAssertTrue(try alerted(["PUBLIC_BASE_URL": "https://pinglass.example"]))
        XCTAssertFalse(try alerted(["PUBLIC_BASE_URL": "http://127.0.0.1:8080"]))
        try setMode("production")
        XCTAssertFalse(try alerted(["PUBLIC_BASE_URL": "https://pinglass.example"]))
    }

    // MARK: health

    func health(_ app: InProcessApp, from address: String) throws -> (Int, JSON) {
        let r = try app.client.from(address).get("/api/health")
        return (r.status, try JSON.parse(r.body))
    }

    /// The public gets the status alone; loopback and HEALTH_DETAIL_NETWORKS (IPv4, IPv6,
    /// IPv4-mapped) get every check, the audit duty's heartbeat among the workers.
    func testHealthDetailsOnlyForLoopbackAndTheConfiguredNetworks() throws {
        let plain = try app()
        for address in ["203.0.113.7", "2001:db8::5", "10.0.0.1", "", "not-an-address", "127.0.0.1.example"] {
            let (status, body) = try health(plain, from: address)
            XCTAssertEqual(status, 200)
            XCTAssertEqual(body, ["status": "ok"], address)
        }
        for address in ["127.0.0.1", "127.3.4.5", "::1", "::ffff:127.0.0.1"] {
            let (_, body) = try health(plain, from: address)
            XCTAssertEqual(body["checks"]?["database"]?["ok"], true, address)
            XCTAssertEqual(body["checks"]?["workers"]?.objectValue?.map(\.0), DutyName.allCases.map(\.rawValue), address)
            XCTAssertNotNil(body["checks"]?["workers"]?["audit"], address)
        }
        let networks = try app(["HEALTH_DETAIL_NETWORKS": "203.0.113.0/24, 2001:db8::/32"])
        for address in ["203.0.113.7", "::ffff:203.0.113.200", "2001:db8::5", "2001:db8:ffff::1"] {
            XCTAssertNotNil(try health(networks, from: address).1["checks"]?["tbank"], address)
        }
        for address in ["203.0.114.1", "2001:db9::1", "198.51.100.1"] {
            XCTAssertNil(try health(networks, from: address).1["checks"], address)
        }
        for bad in ["10.0.0.0/33", "2001:db8::/129", "example.com", "10.0.0.0/8;", "10.0.0/8"] {
            XCTAssertThrowsError(try db.config(["HEALTH_DETAIL_NETWORKS": bad]), bad) { error in
                XCTAssertTrue("\(error)".contains("HEALTH_DETAIL_NETWORKS"), "\(error)")
            }
        }
    }

    func testHealthDownTellsThePublicTheStatusOnly() throws {
        let down = try InProcessApp(config: try Config(variables: ["DATABASE_URL": "host=/nonexistent port=1 dbname=x"]))
        let (status, body) = try health(down, from: "203.0.113.7")
        XCTAssertEqual(status, 503)
        XCTAssertEqual(body, ["status": "down"])
        XCTAssertEqual(try health(down, from: "127.0.0.1").1["checks"]?["database"]?["ok"], false)
    }

    /// Test mode on a public install makes health `degraded` and says why (to the operator).
    func testHealthSaysWhenTestModeIsInForceOnAPublicInstall() throws {
        let (_, publicBody) = try health(try app(["PUBLIC_BASE_URL": "https://pinglass.example"]), from: "127.0.0.1")
        XCTAssertEqual(publicBody["status"]?.stringValue, "degraded")
        XCTAssertEqual(publicBody["checks"]?["tbank"]?["testModeOnPublicURL"], true)
        let (_, localBody) = try health(try app(["PUBLIC_BASE_URL": "http://127.0.0.1:8080"]), from: "127.0.0.1")
        XCTAssertEqual(localBody["status"]?.stringValue, "ok")
        XCTAssertEqual(localBody["checks"]?["tbank"]?["testModeOnPublicURL"], false)
    }

    // MARK: router

    /// Only the exact path reaches a handler: a trailing slash, an empty segment or a path
    /// nginx would not have normalised is a 404, so no variant slips past nginx's exact
    /// locations (the bank's sender list, the callbacks' body limit, the metrics allow-list).
    func testOnlyExactPathsReachAHandler() throws {
        let a = try app(["KIE_WEBHOOK_HMAC_KEY": "public-install-test-key"])
        let before = try c.query("SELECT count(*)::int AS n FROM webhook_logs")[0].requiredInt("n")
        for path in ["/api/payment/webhook/", "//api/payment/webhook", "/api//payment/webhook", "/api/payment/%77ebhook",
                     "/api/kie/callback/", "/api/kie//callback", "/api/kie/callback//", "api/kie/callback"] {
            let r = try a.client.post(path, body: "{}")
            XCTAssertEqual(r.status, 404, path)
            XCTAssertEqual(try JSON.parse(r.body)["error"]?["code"]?.stringValue, "NOT_FOUND", path)
        }
        for path in ["/metrics/", "//metrics", "/api/health/", "/api/pricing//", "/api/avatars/1/", "/api/avatars//references", "/", ""] {
            XCTAssertEqual(try a.client.get(path).status, 404, path)
        }
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM webhook_logs")[0].requiredInt("n"), before, "no handler ran")
        XCTAssertEqual(try a.client.get("/metrics").status, 200)
        XCTAssertEqual(try a.client.get("/api/pricing").status, 200)
        XCTAssertNotEqual(try a.client.post("/api/payment/webhook", body: "{}").status, 404, "the exact path reaches the webhook")
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM webhook_logs")[0].requiredInt("n"), before + 1)
    }
}

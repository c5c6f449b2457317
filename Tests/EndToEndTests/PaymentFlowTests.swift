import XCTest
import Foundation
import HTTPClient
import Postgres
import PinGlassTesting
import JSON
import LibCrypto
import PinGlassConfig
import ProviderWire
@testable import PinGlass
@testable import Providers

/// Payments end to end: real nginx, real pools (PinGlass and the simulator), real CLI. With
/// PostgreSQL down under the webhook: `PaymentOutageTests` (disruptive tier).
final class PaymentFlowTests: DatabaseTestCase {
    var stack: Stack!
    let http = HTTPClient()

    override func setUpWithError() throws {
        try super.setUpWithError()
        let simPort = Subprocess.freePort()
        stack = try Stack(database: db, env: Fixtures.env(simURL: "http://127.0.0.1:\(simPort)"), withSimulator: true, simPort: simPort)
    }
    override func tearDown() {
        stack?.stop()
        super.tearDown()
    }

    func create(_ telegramID: Int64, tier: String = "starter", extra: String = "") throws -> TestClient.Response {
        try stack.client.post("/api/payment/create", body: #"{"tierId":"\#(tier)"\#(extra)}"#,
                       headers: [Fixtures.auth(telegramID: telegramID)])
    }

    func status(_ telegramID: Int64, _ paymentID: String? = nil) throws -> TestClient.Response {
        try stack.client.get("/api/payment/status", query: paymentID.map { "payment_id=\($0)" } ?? "", headers: [Fixtures.auth(telegramID: telegramID)])
    }

    func sim(_ path: String, _ body: JSON) throws -> JSON {
        let r = try http.send(.json("POST", stack.simURL + path, body: body.bytes))
        XCTAssertEqual(r.status, 200, r.text)
        return try JSON.parse(r.body)
    }

    func cli(_ args: [String]) throws -> (Int32, String, String) {
        try Subprocess.capture(TestEnvironment.binDir() + "/pinglass", args, environment: stack.environment)
    }

    /// Create → pay on the simulator's page (an HTTP form POST, as a browser does) →
    /// notification → status `paid`.
    func testFullFlowWithoutABrowser() throws {
        let created = try create(77)
        XCTAssertEqual(created.status, 200, created.text)
        let spec = OpenAPIValidator(document: try JSON.parse(try stack.client.get("/api/openapi.json").body))
        XCTAssertEqual(spec.problems(path: "/api/payment/create", method: "POST", status: 200, body: created.body), [])
        let c = try JSON.parse(created.body)
        XCTAssertEqual(c["amount"]?.intValue, 49900)
        XCTAssertEqual(c["testMode"], true)
        let paymentID = try XCTUnwrap(c["paymentId"]?.stringValue)
        let url = try XCTUnwrap(c["confirmationUrl"]?.stringValue)
        XCTAssertEqual(try status(77, paymentID).text.contains(#""paid":false"#), true)

        let page = try http.send(HTTPRequest(url: url))
        XCTAssertEqual(page.status, 200)
        XCTAssertTrue(page.text.contains("499.00 RUB"))
        let paid = try http.send(HTTPRequest(method: "POST", url: url, headers: [("Content-Type", "application/x-www-form-urlencoded")],
                                             body: Array("action=pay".utf8)))
        XCTAssertEqual(paid.status, 303)
        XCTAssertEqual(paid.header("location"), stack.baseURL + "/payment/success?order=" + (c["orderId"]?.stringValue ?? ""))
        XCTAssertEqual(try stack.http.send(HTTPRequest(url: stack.baseURL + "/payment/success")).status, 200)

        let s = try JSON.parse(try status(77, paymentID).body)
        XCTAssertEqual(s["paid"], true)
        XCTAssertEqual(s["status"]?.stringValue, "succeeded")
        XCTAssertEqual(s["consumed"], false)
        // The Init the bank received: amount, receipt, our URLs from PUBLIC_BASE_URL.
        let inits = try JSON.parse(try http.send(HTTPRequest(url: stack.simURL + "/sim/control/requests?method=Init")).body)["requests"]!
        let sent = try XCTUnwrap(inits.arrayValue?.last)
        XCTAssertEqual(sent["NotificationURL"]?.stringValue, stack.baseURL + "/api/payment/webhook")
        XCTAssertEqual(sent["Receipt"]?["Items"]?.arrayValue?.first?["Amount"]?.intValue, 49900)
        XCTAssertEqual(sent["TerminalKey"]?.stringValue, Fixtures.testTerminal.key)
        // Both notifications were delivered and answered OK.
        let notes = try JSON.parse(try http.send(HTTPRequest(url: stack.simURL + "/sim/control/notifications?payment_id=\(paymentID)")).body)
        XCTAssertEqual(notes["notifications"]?.arrayValue?.map { $0["delivered"] }, [true, true])
    }

    func testDeclinedPaymentIsRejected() throws {
        let c = try JSON.parse(try create(78).body)
        let id = try XCTUnwrap(c["paymentId"]?.stringValue)
        _ = try sim("/sim/control/customer", ["paymentId": .string(id), "action": "decline"])
        let s = try JSON.parse(try status(78, id).body)
        XCTAssertEqual(s["paid"], false)
        XCTAssertEqual(s["status"]?.stringValue, "rejected")
    }

    /// Concurrent replays of a payment's notifications, shuffled, several times each, then
    /// again "days later": one transition applied, every valid one answered OK.
    func testConcurrentShuffledReplaysGiveOneStateAndAllOK() throws {
        let c = try JSON.parse(try create(79).body)
        let id = try XCTUnwrap(c["paymentId"]?.stringValue)
        let order = try XCTUnwrap(c["orderId"]?.stringValue)
        var bodies: [JSON] = []
        for status in ["AUTHORIZED", "CONFIRMED"] {
            for _ in 0..<Int.random(in: 1...5) { bodies.append(Fixtures.notification(paymentID: id, orderID: order, status: status, amount: 49900)) }
        }
        bodies.shuffle()
        let requests = bodies.map { HTTPRequest.json("POST", stack.baseURL + "/api/payment/webhook", body: $0.bytes) }
        let results = http.sendAll(requests, maxConcurrent: 8)
        for r in results { XCTAssertEqual(try r.get().text, "OK") }
        let conn = try db.connect()
        let outcomes = try conn.query("""
            SELECT event_type, outcome FROM webhook_logs WHERE payment_id = (SELECT id FROM payments WHERE tbank_payment_id = $1)
            """, [id]).map { ($0.requiredString("event_type"), $0.requiredString("outcome")) }
        XCTAssertEqual(outcomes.count, bodies.count)
        XCTAssertEqual(outcomes.filter { $0 == ("CONFIRMED", "applied") }.count, 1, "\(outcomes)")
        XCTAssertLessThanOrEqual(outcomes.filter { $0 == ("AUTHORIZED", "applied") }.count, 1, "\(outcomes)")
        XCTAssertTrue(outcomes.allSatisfy { ["applied", "duplicate", "stale"].contains($0.1) }, "\(outcomes)")
        XCTAssertEqual(try JSON.parse(try status(79, id).body)["status"]?.stringValue, "succeeded")
        // Later the payment is refunded; days after that the bank's archive re-sends an old
        // AUTHORIZED and CONFIRMED: the refunded payment stays refunded and is not paid.
        let refunded = try stack.client.post("/api/payment/webhook",
                                             body: Fixtures.notification(paymentID: id, orderID: order, status: "REFUNDED", amount: 0).bytes)
        XCTAssertEqual(refunded.text, "OK")
        for old in ["AUTHORIZED", "CONFIRMED"] {
            let late = try stack.client.post("/api/payment/webhook",
                                             body: Fixtures.notification(paymentID: id, orderID: order, status: old, amount: 49900).bytes)
            XCTAssertEqual(late.text, "OK")
        }
        let after = try JSON.parse(try status(79, id).body)
        XCTAssertEqual(after["status"]?.stringValue, "refunded")
        XCTAssertEqual(after["paid"], false)
        XCTAssertEqual(Array(try conn.query("""
            SELECT outcome FROM webhook_logs WHERE payment_id = (SELECT id FROM payments WHERE tbank_payment_id = $1)
            ORDER BY id DESC LIMIT 2
            """, [id]).map { $0.requiredString("outcome") }), ["stale", "stale"])
    }

    /// The simulator's duplicates, out-of-order delivery and bad Tokens.
    func testSimulatorDuplicatesOutOfOrderAndBadTokens() throws {
        _ = try sim("/sim/control/switches", ["notify_duplicates": 2, "notify_out_of_order": true])
        let c = try JSON.parse(try create(80).body)
        let id = try XCTUnwrap(c["paymentId"]?.stringValue)
        _ = try sim("/sim/control/customer", ["paymentId": .string(id), "action": "pay"])
        let notes = try JSON.parse(try http.send(HTTPRequest(url: stack.simURL + "/sim/control/notifications?payment_id=\(id)")).body)["notifications"]!.arrayValue!
        XCTAssertEqual(notes.count, 6)
        XCTAssertEqual(notes.first?["body"]?["Status"]?.stringValue, "CONFIRMED", "CONFIRMED sent before AUTHORIZED")
        XCTAssertTrue(notes.allSatisfy { $0["delivered"] == true && $0["lastBody"]?.stringValue == "OK" })
        XCTAssertEqual(try JSON.parse(try status(80, id).body)["status"]?.stringValue, "succeeded")
        // A notification with a bad Token is refused and stays undelivered at the bank.
        _ = try sim("/sim/control/switches", ["notify_duplicates": nil])
        let r = try sim("/sim/control/notify", ["paymentId": .string(id), "status": "CONFIRMED", "badToken": true])
        XCTAssertEqual(r["failed"]?.intValue, 1)
        let last = try JSON.parse(try http.send(HTTPRequest(url: stack.simURL + "/sim/control/notifications?payment_id=\(id)")).body)["notifications"]!.arrayValue!.last!
        XCTAssertEqual(last["lastStatus"]?.intValue, 403)
        XCTAssertEqual(last["delivered"], false)
        XCTAssertEqual(try db.connect().query("SELECT count(*)::int AS n FROM webhook_logs WHERE outcome = 'bad_signature'")[0].int("n"), 1)
    }

    /// Notifications that fail (our pool is down) are re-sent by the bank until answered OK.
    func testBankResendsUntilAnsweredOK() throws {
        let c = try JSON.parse(try create(81).body)
        let id = try XCTUnwrap(c["paymentId"]?.stringValue)
        stack.stopPool()
        let first = try sim("/sim/control/customer", ["paymentId": .string(id), "action": "pay"])
        XCTAssertEqual(first["delivered"]?.intValue, 0)
        XCTAssertEqual(first["failed"]?.intValue, 2)
        try stack.startPool()
        let again = try sim("/sim/control/deliver", ["force": true])
        XCTAssertEqual(again["delivered"]?.intValue, 2)
        XCTAssertEqual(try JSON.parse(try status(81, id).body)["status"]?.stringValue, "succeeded")
    }

    func testTwoPaymentsOfOneUserAndSomeoneElsesIs404() throws {
        let a = try JSON.parse(try create(83).body)["paymentId"]!.stringValue!
        let b = try JSON.parse(try create(83, tier: "premium").body)["paymentId"]!.stringValue!
        XCTAssertNotEqual(a, b)
        _ = try sim("/sim/control/customer", ["paymentId": .string(a), "action": "pay"])
        XCTAssertEqual(try JSON.parse(try status(83, a).body)["paid"], true)
        XCTAssertEqual(try JSON.parse(try status(83, b).body)["paid"], false)
        let latest = try JSON.parse(try status(83).body)
        XCTAssertEqual(latest["paymentId"]?.stringValue, b, "no id: the latest own payment")
        XCTAssertEqual(latest["amount"]?.intValue, 149900)
        let foreign = try status(84, a)
        XCTAssertEqual(foreign.status, 404)
        XCTAssertEqual(try JSON.parse(foreign.body)["error"]?["code"]?.stringValue, "NOT_FOUND")
        XCTAssertEqual(try JSON.parse(try status(84).body)["status"]?.stringValue, "no_payment")
    }

    func testAuthenticationAndInputErrors() throws {
        let noAuth = try stack.client.post("/api/payment/create", body: #"{"tierId":"starter"}"#)
        XCTAssertEqual(noAuth.status, 401)
        let stale = try stack.client.post("/api/payment/create", body: #"{"tierId":"starter"}"#,
                                   headers: [Fixtures.auth(telegramID: 85, authDate: Date().timeIntervalSince1970 - 90000)])
        XCTAssertEqual(stale.status, 401)
        XCTAssertTrue(stale.text.contains("expired"))
        let wrongBot = try stack.client.post("/api/payment/create", body: #"{"tierId":"starter"}"#,
                                      headers: [Fixtures.auth(telegramID: 85, token: "1:other")])
        XCTAssertEqual(wrongBot.status, 401)
        let badTier = try create(85, tier: "gold")
        XCTAssertEqual(badTier.status, 400)
        XCTAssertTrue(badTier.text.contains("starter, standard, premium"), badTier.text)
        XCTAssertEqual(try create(85, extra: #","email":"not-an-email""#).status, 400)
        XCTAssertEqual(try stack.client.post("/api/payment/create", body: "{oops",
                                      headers: [Fixtures.auth(telegramID: 85)]).status, 400)
        // Someone else's avatar.
        let conn = try db.connect()
        let owner = try Users.resolve(conn, TelegramUser(id: 86, username: nil, firstName: nil, lastName: nil, languageCode: nil))
        let avatar = try conn.query("INSERT INTO avatars (user_id, name) VALUES ($1, 'mine') RETURNING id", [owner])[0].requiredInt("id")
        let foreign = try create(85, extra: #","avatarId":\#(avatar)"#)
        XCTAssertEqual(foreign.status, 404)
        XCTAssertTrue(foreign.text.contains("AVATAR_NOT_FOUND"))
        XCTAssertEqual(try create(86, extra: #","avatarId":\#(avatar)"#).status, 200)
        XCTAssertEqual(try conn.query("SELECT count(*)::int AS n FROM payments WHERE user_id <> $1", [owner])[0].int("n"), 0,
                       "no payment row for refused requests")
    }

    func testPerUserLimitIsTenPerFifteenMinutes() throws {
        for i in 0..<10 { XCTAssertEqual(try create(87).status, 200, "payment \(i)") }
        let limited = try create(87)
        XCTAssertEqual(limited.status, 429)
        XCTAssertEqual(try JSON.parse(limited.body)["error"]?["code"]?.stringValue, "RATE_LIMIT_EXCEEDED")
        let retry = try XCTUnwrap(Int(limited.header("retry-after") ?? ""))
        XCTAssertTrue((1...900).contains(retry), "\(retry)")
        XCTAssertEqual(try create(88).status, 200, "another user is not limited")
    }

    /// The limit holds under concurrency: the user's row is locked while counting.
    func testPerUserLimitHoldsForConcurrentCreations() throws {
        let auth = Fixtures.auth(telegramID: 97)
        let requests = (0..<15).map { _ in
            HTTPRequest.json("POST", stack.baseURL + "/api/payment/create", body: Array(#"{"tierId":"starter"}"#.utf8), headers: [auth])
        }
        let statuses = http.sendAll(requests, maxConcurrent: 15).map { (try? $0.get().status) ?? -1 }
        XCTAssertEqual(statuses.filter { $0 == 200 }.count, 10, "\(statuses)")
        XCTAssertEqual(statuses.filter { $0 == 429 }.count, 5, "\(statuses)")
        XCTAssertEqual(try db.connect().query("SELECT count(*)::int AS n FROM payments")[0].int("n"), 10)
    }

    /// Each reconcile pass asks about a bounded batch, the least recently checked first, so
    /// every pending payment is reached in turn.
    func testReconcileBatchesReachEveryPayment() throws {
        _ = try sim("/sim/control/switches", ["notify_hold": true])
        var ids: [String] = []
        for _ in 0..<3 {
            let id = try JSON.parse(try create(98).body)["paymentId"]!.stringValue!
            _ = try sim("/sim/control/customer", ["paymentId": .string(id), "action": "pay"])
            ids.append(id)
        }
        let conn = try db.connect()
        try conn.execute("UPDATE payments SET created_at = now() - interval '3 minutes'")
        var env = stack.environment
        env["PINGLASS_ENV_FILE"] = "/dev/null"
        let config = try Config.load(environment: env, envFile: "/dev/null")
        let deps = Dependencies.live(config: config, database: Database(url: config.databaseURL, applicationName: "test"),
                                    migrationsDirectory: try TestDatabase.migrationsDir())
        var rc = Reconciler.Config()
        rc.batchSize = 1
        let reconciler = try Reconciler(deps: deps, config: rc)
        func runOnce() throws -> Reconciler.Report { try reconciler.runOnce(now: deps.clock(), deadline: deps.clock() + 55) }
        var applied = 0
        for pass in 1...3 {
            let r = try runOnce()
            XCTAssertEqual(r.checked, 1, "pass \(pass)")
            applied += r.applied
        }
        XCTAssertEqual(applied, 3)
        XCTAssertEqual(try runOnce().checked, 0, "nothing left pending")
        XCTAssertEqual(try conn.query("SELECT count(*)::int AS n FROM payments WHERE status = 'succeeded'")[0].int("n"), 3)
    }

    func testBankErrorsAre502AndTheRowStays() throws {
        _ = try sim("/sim/control/switches", ["init_error": "9999"])
        let res = try create(89)
        XCTAssertEqual(res.status, 502)
        XCTAssertTrue(res.text.contains("code 9999"), res.text)
        let row = try db.connect().query("SELECT status, init_error FROM payments")[0]
        XCTAssertEqual(row.string("status"), "init_failed")
        XCTAssertTrue(row.requiredString("init_error").contains("9999"))
        XCTAssertFalse(res.text.contains(Fixtures.testTerminal.password))
    }

    /// A mismatched terminal password: the simulator answers 204 like the bank.
    func testWrongTerminalPasswordIsTheBanks204() throws {
        stack.stopPool()
        stack.environment["TBANK_TEST_PASSWORD"] = "wrong"
        try stack.startPool()
        let res = try create(90)
        XCTAssertEqual(res.status, 502)
        XCTAssertTrue(res.text.contains("code 204"), res.text)
    }

    /// A payment whose notification never came is recovered by `pinglass reconcile`; a link
    /// past its due date expires, and a late CONFIRMED still revives it.
    func testReconcileRecoversMissedWebhooksAndExpiresStaleLinks() throws {
        _ = try sim("/sim/control/switches", ["notify_hold": true])
        let a = try JSON.parse(try create(91).body)["paymentId"]!.stringValue!
        let b = try JSON.parse(try create(91).body)["paymentId"]!.stringValue!
        _ = try sim("/sim/control/customer", ["paymentId": .string(a), "action": "pay"])
        let conn = try db.connect()
        try conn.execute("UPDATE payments SET created_at = now() - interval '3 minutes'")
        try conn.execute("UPDATE payments SET redirect_due_at = now() - interval '1 second' WHERE tbank_payment_id = $1", [b])
        let (rc, _, err) = try cli(["reconcile"])
        XCTAssertEqual(rc, 0, err)
        XCTAssertTrue(err.contains(#"\"applied\":1"#) || err.contains(#""applied":1"#), err)
        XCTAssertEqual(try Fixtures.paymentState(conn, try conn.query("SELECT id FROM payments WHERE tbank_payment_id = $1", [a])[0].requiredInt("id")).status, "succeeded")
        let bRow = try conn.query("SELECT id, status FROM payments WHERE tbank_payment_id = $1", [b])[0]
        XCTAssertEqual(bRow.string("status"), "expired")
        let run = try conn.query("SELECT ok, summary::text AS s FROM worker_runs WHERE name = 'reconcile'")[0]
        XCTAssertEqual(run.bool("ok"), true)
        // The customer pays the expired link after all: the bank is authoritative.
        _ = try sim("/sim/control/switches", ["notify_hold": nil])
        _ = try sim("/sim/control/customer", ["paymentId": .string(b), "action": "pay"])
        XCTAssertEqual(try Fixtures.paymentState(conn, bRow.requiredInt("id")).status, "succeeded")
        let health = try JSON.parse(try stack.client.get("/api/health").body)
        XCTAssertEqual(health["checks"]?["workers"]?["reconcile"]?["ok"], true)
    }

    /// The status endpoint asks the bank itself when a pending payment has waited a while.
    func testStatusAsksTheBankWhenTheNotificationIsLate() throws {
        _ = try sim("/sim/control/switches", ["notify_hold": true])
        let id = try JSON.parse(try create(92).body)["paymentId"]!.stringValue!
        _ = try sim("/sim/control/customer", ["paymentId": .string(id), "action": "pay"])
        XCTAssertEqual(try JSON.parse(try status(92, id).body)["status"]?.stringValue, "pending", "fresh: no bank call yet")
        try db.connect().execute("UPDATE payments SET created_at = now() - interval '10 seconds', last_checked_at = NULL")
        XCTAssertEqual(try JSON.parse(try status(92, id).body)["status"]?.stringValue, "succeeded")
    }

    /// A slow bank cannot hold the status endpoint: GetState there has a short timeout, and
    /// the payment is reported as it stands. The bank already holds the money (paid, its
    /// notification held back), so waiting for its answer would have said `succeeded`.
    func testStatusDoesNotWaitForASlowBank() throws {
        let id = try JSON.parse(try create(96).body)["paymentId"]!.stringValue!
        _ = try sim("/sim/control/switches", ["notify_hold": true, "getstate_delay_ms": 5000])
        _ = try sim("/sim/control/customer", ["paymentId": .string(id), "action": "pay"])
        let conn = try db.connect()
        try conn.execute("UPDATE payments SET created_at = now() - interval '10 seconds', last_checked_at = NULL")
        let s = try status(96, id)
        XCTAssertEqual(s.status, 200)
        XCTAssertEqual(try JSON.parse(s.body)["status"]?.stringValue, "pending", "the bank's late CONFIRMED was not waited for")
        XCTAssertTrue(try String(contentsOfFile: stack.poolLog, encoding: .utf8).contains("GetState failed during status check"))
        // A prompt bank, once the check interval has passed: the same call now says succeeded.
        _ = try sim("/sim/control/switches", ["getstate_delay_ms": nil])
        try conn.execute("UPDATE payments SET last_checked_at = now() - interval '10 seconds' WHERE tbank_payment_id = $1", [id])
        XCTAssertEqual(try JSON.parse(try status(96, id).body)["status"]?.stringValue, "succeeded")
        _ = try sim("/sim/control/switches", ["notify_hold": nil])
    }

    /// The terminal is recorded per payment: after switching to production, the test
    /// payment is still checked with the test terminal.
    func testTerminalModeSwitchKeepsEachPaymentsTerminal() throws {
        let (rc0, _, err0) = try cli(["settings", "tbank-mode", "production"])
        XCTAssertNotEqual(rc0, 0)
        XCTAssertTrue(err0.contains("TBANK_TERMINAL_KEY"), err0)
        _ = try sim("/sim/control/switches", ["notify_hold": true])
        let id = try JSON.parse(try create(93).body)["paymentId"]!.stringValue!
        _ = try sim("/sim/control/customer", ["paymentId": .string(id), "action": "pay"])
        stack.stopPool()
        stack.stopSimulator()
        stack.environment.merge(Fixtures.env(simURL: stack.simURL, production: true)) { $1 }
        try stack.startSimulator()
        try stack.startPool()
        let (rc, out, err) = try cli(["settings", "tbank-mode", "production"])
        XCTAssertEqual(rc, 0, err)
        XCTAssertTrue(out.contains("test → production"), out)
        let (_, shown, _) = try cli(["settings", "tbank-mode"])
        XCTAssertEqual(shown.trimmingCharacters(in: .whitespacesAndNewlines), "production")
        let conn = try db.connect()
        XCTAssertEqual(try conn.query("SELECT action, details->>'to' AS t FROM admin_audit")[0].string("t"), "production")
        let prod = try JSON.parse(try create(94).body)
        XCTAssertEqual(prod["testMode"], false)
        try conn.execute("UPDATE payments SET created_at = now() - interval '10 seconds', last_checked_at = NULL WHERE tbank_payment_id = $1", [id])
        XCTAssertEqual(try JSON.parse(try status(93, id).body)["status"]?.stringValue, "succeeded", "GetState with the test terminal")
        XCTAssertEqual(try conn.query("SELECT terminal FROM payments WHERE tbank_payment_id = $1", [id])[0].string("terminal"), "test")
    }

    /// Refund calls carry ExternalRequestId: when the bank did the refund but its answer was
    /// lost, our client reports "no answer" (never success, never a refusal), and the retry
    /// with the same key gets the first outcome instead of a second refund.
    func testCancelWithTheSameExternalRequestIdRefundsOnce() throws {
        let id = try JSON.parse(try create(95).body)["paymentId"]!.stringValue!
        _ = try sim("/sim/control/customer", ["paymentId": .string(id), "action": "pay"])
        let bank = TBankClient(apiURL: stack.simURL + "/v2", terminal: Fixtures.testTerminal)
        let key = Crypto.uuid()
        _ = try sim("/sim/control/switches", ["cancel_drop_answer": true])
        XCTAssertThrowsError(try bank.cancel(paymentID: id, amount: 20000, externalRequestID: key)) { error in
            guard case .unavailable = error as? TBankError else { return XCTFail("a lost answer is unknown, not \(error)") }
        }
        _ = try sim("/sim/control/switches", ["cancel_drop_answer": nil])
        let first = try bank.cancel(paymentID: id, amount: 20000, externalRequestID: key)
        let again = try bank.cancel(paymentID: id, amount: 20000, externalRequestID: key)
        XCTAssertEqual(first, again)
        XCTAssertEqual(first.status, "PARTIAL_REFUNDED")
        XCTAssertEqual(first.newAmount, 29900)
        let state = try JSON.parse(try http.send(HTTPRequest(url: stack.simURL + "/sim/control/payments/\(id)")).body)
        XCTAssertEqual(state["charged"]?.intValue, 29900)
        // Its notification moved our payment to partially refunded: the status only. The sum
        // comes from Cancel answers recorded by `pinglass refund`, never from a notification.
        let s = try JSON.parse(try status(95, id).body)
        XCTAssertEqual(s["status"]?.stringValue, "partially_refunded")
        XCTAssertEqual(try db.connect().query("SELECT refunded_kopecks FROM payments WHERE tbank_payment_id = $1", [id])[0].int("refunded_kopecks"), 0)
        XCTAssertThrowsError(try bank.cancel(paymentID: id, amount: 99999, externalRequestID: Crypto.uuid())) { error in
            guard case .rejected(let code, _, _) = error as? TBankError else { return XCTFail("\(error)") }
            XCTAssertEqual(code, "104")
        }
        let wrong = TBankClient(apiURL: stack.simURL + "/v2", terminal: TBankTerminal(key: Fixtures.testTerminal.key, password: "nope"))
        XCTAssertThrowsError(try wrong.getState(paymentID: id)) { XCTAssertEqual(($0 as? TBankError).map { "\($0)" }?.contains("204"), true) }
    }
}

import Foundation
import HTTPCore
import PinGlassTesting
import Postgres
import XCTest
import JSON
@testable import PinGlass
@testable import PinGlassWeb

/// `GET /api/me`, `PATCH /api/me` and the receipt e-mail `POST /api/payment/create` remembers,
/// in-process, with `FakeBank` as the bank (its Init records the receipt it was sent).
final class AccountTests: DatabaseTestCase {
    var app: InProcessApp!
    var bank: FakeBank!
    let me = Fixtures.auth(telegramID: 9201)
    let other = Fixtures.auth(telegramID: 9202)

    override func setUpWithError() throws {
        try super.setUpWithError()
        var env = Fixtures.env(simURL: "http://127.0.0.1:9")
        env["PUBLIC_BASE_URL"] = "https://pinglass.example"
        app = try InProcessApp(database: db, env: env)
        bank = FakeBank(state: "NEW", amount: 49_900)
        app.deps.bankFactory = bank.factory
    }

    func call(_ method: String, _ path: String, _ auth: (String, String), _ body: String = "") throws -> TestClient.Response {
        try app.client.execute(method, path, headers: [auth, ("Content-Type", "application/json")], body: Array(body.utf8))
    }
    func json(_ r: TestClient.Response) throws -> JSON { try JSON.parse(r.body) }

    func testAFreshAccountHasNoEmailAndNoConsent() throws {
        let r = try call("GET", "/api/me", me)
        XCTAssertEqual(r.status, 200, r.text)
        let body = try json(r)
        XCTAssertEqual(body["user"]?["telegramId"]?.intValue, 9201)
        XCTAssertEqual(body["user"]?["firstName"]?.stringValue, "Test")
        XCTAssertEqual(body["user"]?["languageCode"], .null)
        XCTAssertEqual(body["user"]?["email"], .null)
        XCTAssertEqual(body["user"]?["consentAt"], .null)
        XCTAssertEqual(body["retentionDays"]?.intValue, 90, "MEDIA_RETENTION_DAYS' default")
        XCTAssertEqual(try app.client.get("/api/me").status, 401)
        XCTAssertEqual(try app.client.execute("PATCH", "/api/me", body: Array("{}".utf8)).status, 401)
        XCTAssertEqual(try app.client.execute("DELETE", "/api/me/data").status, 401)
    }

    func testTheEmailIsCheckedStoredAndForgotten() throws {
        for bad in ["", "ann", "ann@", "@example.com", "ann@example", "ann@@example.com", "a@b@example.com", "ann @example.com",
                    "ann@exa mple.com", "ann@.example.com", "ann@example.com.", "ann@example..com", "ann\u{0}@example.com",
                    "ann\t@example.com", "ann@example.com\u{200B}", String(repeating: "a", count: 53) + "@example.com"] {
            let r = try call("PATCH", "/api/me", me, JSON.object([("email", .string(bad))]).serialized)
            XCTAssertEqual(r.status, 400, "\(bad.debugDescription): \(r.text)")
            XCTAssertEqual(try json(r)["error"]?["code"]?.stringValue, "VALIDATION_ERROR")
        }
        XCTAssertEqual(try call("PATCH", "/api/me", me, #"{"email": 42}"#).status, 400)
        XCTAssertEqual(try call("PATCH", "/api/me", me, #"{"email": ["a@b.c"]}"#).status, 400)
        XCTAssertEqual(try call("PATCH", "/api/me", me, "[]").status, 400, "not an object")
        XCTAssertEqual(try json(try call("GET", "/api/me", me))["user"]?["email"], .null, "nothing stored by a refusal")

        let longest = String(repeating: "a", count: 52) + "@example.com"
        XCTAssertEqual(longest.count, 64)
        let set = try call("PATCH", "/api/me", me, JSON.object([("email", .string("  \(longest) "))]).serialized)
        XCTAssertEqual(set.status, 200, set.text)
        XCTAssertEqual(try json(set)["user"]?["email"]?.stringValue, longest, "trimmed")
        XCTAssertEqual(try json(try call("GET", "/api/me", me))["user"]?["email"]?.stringValue, longest)
        XCTAssertEqual(try json(try call("GET", "/api/me", other))["user"]?["email"], .null, "the caller's own")

        let kept = try call("PATCH", "/api/me", me, #"{"consent": true}"#)
        XCTAssertEqual(try json(kept)["user"]?["email"]?.stringValue, longest, "a field left out is left alone")
        let forgotten = try call("PATCH", "/api/me", me, #"{"email": null}"#)
        XCTAssertEqual(forgotten.status, 200)
        XCTAssertEqual(try json(forgotten)["user"]?["email"], .null)
        XCTAssertEqual(try db.connect().query("SELECT receipt_email FROM users WHERE telegram_user_id = 9201")[0].string("receipt_email"), nil)
    }

    func testConsentIsRecordedOnceAndOnlyGiven() throws {
        for bad in [#"{"consent": false}"#, #"{"consent": "yes"}"#, #"{"consent": 1}"#, #"{"consent": null}"#] {
            let r = try call("PATCH", "/api/me", me, bad)
            XCTAssertEqual(r.status, 400, "\(bad): \(r.text)")
            XCTAssertEqual(try json(r)["error"]?["code"]?.stringValue, "VALIDATION_ERROR")
        }
        let first = try call("PATCH", "/api/me", me, #"{"consent": true}"#)
        XCTAssertEqual(first.status, 200, first.text)
        let at = try XCTUnwrap(try json(first)["user"]?["consentAt"]?.stringValue)
        XCTAssertNotNil(at.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"#, options: .regularExpression), at)
        let c = try db.connect()
        try c.execute("UPDATE users SET consent_at = consent_at - interval '1 day' WHERE telegram_user_id = 9201")
        let earlier = try XCTUnwrap(try json(try call("GET", "/api/me", me))["user"]?["consentAt"]?.stringValue)
        XCTAssertNotEqual(earlier, at)
        let again = try call("PATCH", "/api/me", me, #"{"consent": true, "email": "ann@example.com"}"#)
        XCTAssertEqual(try json(again)["user"]?["consentAt"]?.stringValue, earlier, "the first consent's time is kept")
        XCTAssertEqual(try json(again)["user"]?["email"]?.stringValue, "ann@example.com")
        XCTAssertEqual(try json(try call("PATCH", "/api/me", me, "{}"))["user"]?["consentAt"]?.stringValue, earlier)
        XCTAssertEqual(try json(try call("GET", "/api/me", other))["user"]?["consentAt"], .null)
    }

    /// `email` on a payment is checked like PATCH /api/me, remembered, and used for the next
    /// receipts; the made-up address only for a customer who never gave one.
    func testPaymentsRememberAndUseTheReceiptEmail() throws {
        func pay(_ body: String) throws -> TestClient.Response { try call("POST", "/api/payment/create", me, body) }
        func lastReceiptEmail() -> String? { bank.calls.last { $0.method == "Init" }?.receipt?["Email"]?.stringValue }

        let anonymous = try pay(#"{"tierId": "starter"}"#)
        XCTAssertEqual(anonymous.status, 200, anonymous.text)
        XCTAssertEqual(lastReceiptEmail(), "user9201@pinglass.example", "never given: the made-up address")

        let bad = try pay(#"{"tierId": "starter", "email": "not an address"}"#)
        XCTAssertEqual(bad.status, 400, bad.text)
        XCTAssertEqual(try json(bad)["error"]?["code"]?.stringValue, "VALIDATION_ERROR")
        XCTAssertEqual(try pay(#"{"tierId": "starter", "email": 7}"#).status, 400)
        XCTAssertEqual(bank.calls.filter { $0.method == "Init" }.count, 1, "a refused e-mail calls no bank")

        XCTAssertEqual(try pay(#"{"tierId": "starter", "email": " ann@example.com "}"#).status, 200)
        XCTAssertEqual(lastReceiptEmail(), "ann@example.com")
        XCTAssertEqual(try json(try call("GET", "/api/me", me))["user"]?["email"]?.stringValue, "ann@example.com", "remembered")

        XCTAssertEqual(try pay(#"{"tierId": "starter"}"#).status, 200)
        XCTAssertEqual(lastReceiptEmail(), "ann@example.com", "the remembered address goes on the next receipt")
        XCTAssertEqual(try pay(#"{"tierId": "starter", "email": null}"#).status, 200)
        XCTAssertEqual(lastReceiptEmail(), "ann@example.com")
        let emails = try db.connect().query("SELECT email FROM payments ORDER BY id").map { $0.string("email") }
        XCTAssertEqual(emails, [nil, "ann@example.com", "ann@example.com", "ann@example.com"],
                       "each payment keeps the address its receipt went to (a refund's receipt names it again)")

        // Another customer is not given ann's address.
        XCTAssertEqual(try call("POST", "/api/payment/create", other, #"{"tierId": "starter"}"#).status, 200)
        XCTAssertEqual(lastReceiptEmail(), "user9202@pinglass.example")
    }

    /// The 64-character limit is counted as PostgreSQL's `length` and the receipt count it:
    /// in Unicode code points, not in what Swift calls characters. "é" written as "e" and a
    /// combining accent is one Swift character and two code points; an address of 60 such
    /// characters is 115 code points, refused here with 400, never left to the column's
    /// CHECK (a 500 and, on a payment, a rolled-back creation).
    func testTheEmailLimitCountsCodePointsAsTheDatabaseDoes() throws {
        let decomposed = String(repeating: "e\u{301}", count: 55) + "@b.cc"
        XCTAssertLessThanOrEqual(decomposed.count, ReceiptEmail.maxLength, "short in Swift characters")
        XCTAssertGreaterThan(decomposed.unicodeScalars.count, ReceiptEmail.maxLength, "long in code points")
        XCTAssertFalse(ReceiptEmail.isValid(decomposed))
        let patch = try call("PATCH", "/api/me", me, JSON.object([("email", .string(decomposed))]).serialized)
        XCTAssertEqual(patch.status, 400, patch.text)
        XCTAssertEqual(try json(patch)["error"]?["code"]?.stringValue, "VALIDATION_ERROR")
        let pay = try call("POST", "/api/payment/create", me, JSON.object([("tierId", "starter"), ("email", .string(decomposed))]).serialized)
        XCTAssertEqual(pay.status, 400, pay.text)
        XCTAssertEqual(try json(pay)["error"]?["code"]?.stringValue, "VALIDATION_ERROR")

        // 64 code points, some of them accents, are taken and stored as given.
        let longest = String(repeating: "e\u{301}", count: 26) + "@example.com"
        XCTAssertEqual(longest.unicodeScalars.count, 64)
        let set = try call("PATCH", "/api/me", me, JSON.object([("email", .string(longest))]).serialized)
        XCTAssertEqual(set.status, 200, set.text)
        XCTAssertEqual(try json(set)["user"]?["email"]?.stringValue?.unicodeScalars.count, 64)
    }

    /// The bank's PaymentURL becomes the Mini App's `confirmationUrl`, opened and linked as it
    /// is: an address that is not an http(s) page is never stored or handed out (the payment
    /// is init_failed, 502 as for a broken Init answer).
    func testAPaymentURLThatIsNoWebPageIsNeverHandedOut() throws {
        for bad in ["javascript:alert(document.domain)", "javascript://bank.example/%0aalert(1)", "data:text/html,<script>1</script>",
                    "https://bank.example/pay\njavascript:1", "/relative/pay"] {
            bank.paymentURL = bad
            let r = try call("POST", "/api/payment/create", me, #"{"tierId": "starter"}"#)
            XCTAssertEqual(r.status, 502, "\(bad): \(r.text)")
            XCTAssertFalse(r.text.contains("alert") || r.text.contains("script") || r.text.contains("relative"), r.text)
        }
        let rows = try db.connect().query("SELECT status, payment_url FROM payments ORDER BY id")
        XCTAssertEqual(rows.map { $0.requiredString("status") }, Array(repeating: "init_failed", count: 5))
        XCTAssertEqual(rows.compactMap { $0.string("payment_url") }, [], "nothing stored")

        bank.paymentURL = "https://bank.example/new/pay?x=1"
        let ok = try call("POST", "/api/payment/create", me, #"{"tierId": "starter"}"#)
        XCTAssertEqual(ok.status, 200, ok.text)
        XCTAssertEqual(try json(ok)["confirmationUrl"]?.stringValue, "https://bank.example/new/pay?x=1")
    }

    func testTheRetentionComesFromTheConfiguration() throws {
        var env = Fixtures.env(simURL: "http://127.0.0.1:9")
        env["MEDIA_RETENTION_DAYS"] = "30"
        let thirty = try InProcessApp(database: db, env: env)
        XCTAssertEqual(try JSON.parse(try thirty.client.get("/api/me", headers: [me]).body)["retentionDays"]?.intValue, 30)
        for bad in ["0", "-1", "x", "3651"] {
            env["MEDIA_RETENTION_DAYS"] = bad
            XCTAssertThrowsError(try db.config(env), bad)
        }
    }
}

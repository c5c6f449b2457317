import Foundation
import JSON
import PinGlassTesting
import XCTest

/// The browser harness (Tests/Browser/harness.py) before any Mini App story leans on it: it
/// catches what must fail a story (a CSP violation, a console error, an uncaught exception),
/// and it drives a real page of the stack: the customer pays on the simulated bank's page in
/// chromium, and our database shows the payment succeeded (the bank's notification reached
/// the webhook behind nginx).
final class HarnessTests: BrowserTestCase {
    func testTheHarnessCatchesViolationsAndPaysOnTheBankPage() throws {
        let user: Int64 = 71_001
        let auth = Fixtures.auth(telegramID: user)
        let avatar = try stack.client.post("/api/avatars", body: #"{"name":"me"}"#, headers: [("Content-Type", "application/json"), auth])
        XCTAssertEqual(avatar.status, 201, avatar.text)
        let avatarID = try XCTUnwrap(JSON.parse(avatar.body)["avatar"]?["id"]?.intValue)
        let created = try stack.client.post("/api/payment/create", body: #"{"tierId":"starter","avatarId":\#(avatarID)}"#,
                                            headers: [("Content-Type", "application/json"), auth])
        XCTAssertEqual(created.status, 200, created.text)
        let page = try XCTUnwrap(JSON.parse(created.body)["confirmationUrl"]?.stringValue)
        let bankID = try XCTUnwrap(JSON.parse(created.body)["paymentId"]?.stringValue)
        XCTAssertEqual(try number("SELECT count(*)::int AS n FROM payments WHERE status = 'succeeded'"), 0)

        try story("harness_check", user: user, env: ["PINGLASS_PAY_URL": page], timeout: 120)

        XCTAssertEqual(try bank.payment(bankID)["status"]?.stringValue, "CONFIRMED", "paid at the bank")
        try Subprocess.waitUntil(timeout: 20, "the payment to succeed in our database") {
            try self.row("SELECT status FROM payments WHERE tbank_payment_id = $1", [bankID])?.string("status") == "succeeded"
        }
        let shots = try FileManager.default.contentsOfDirectory(atPath: TestEnvironment.tmp() + "/browser/harness_check")
        XCTAssertEqual(shots.filter { $0.hasSuffix(".png") }.sorted(), ["01-policy-violation.png", "02-poor-accessibility.png", "03-bank.png", "04-bank-paid.png"])
    }
}

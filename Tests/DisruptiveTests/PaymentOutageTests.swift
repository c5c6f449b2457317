import XCTest
import Foundation
import HTTPClient
import PinGlassTesting
import JSON
@testable import PinGlass

/// The bank's notification while the shared PostgreSQL is stopped. The rest of the payment
/// flow: `PaymentFlowTests` (end-to-end tier).
final class PaymentOutageTests: DatabaseTestCase {
    var stack: Stack!

    override func setUpWithError() throws {
        try super.setUpWithError()
        let simPort = Subprocess.freePort()
        stack = try Stack(database: db, env: Fixtures.env(simURL: "http://127.0.0.1:\(simPort)"), withSimulator: true, simPort: simPort)
    }
    override func tearDown() {
        stack?.stop()
        super.tearDown()
    }

    func create(_ telegramID: Int64) throws -> TestClient.Response {
        try stack.client.post("/api/payment/create", body: #"{"tierId":"starter"}"#,
                       headers: [Fixtures.auth(telegramID: telegramID)])
    }

    func status(_ telegramID: Int64, _ paymentID: String) throws -> TestClient.Response {
        try stack.client.get("/api/payment/status", query: "payment_id=\(paymentID)", headers: [Fixtures.auth(telegramID: telegramID)])
    }

    /// Database down: the webhook answers 503 (so the bank retries) and nothing is lost: the
    /// bank's re-send after recovery is applied.
    func testDatabaseDownThenTheResendSucceeds() throws {
        let c = try JSON.parse(try create(82).body)
        let id = try XCTUnwrap(c["paymentId"]?.stringValue)
        let body = Fixtures.notification(paymentID: id, orderID: c["orderId"]!.stringValue!, status: "CONFIRMED", amount: 49900)
        try TestEnvironment.pgControl("stop")
        var up = false
        defer { if !up { try? TestEnvironment.pgControl("start") } }
        let down = try stack.client.post("/api/payment/webhook", body: body.bytes)
        XCTAssertEqual(down.status, 503)
        try TestEnvironment.pgControl("start")
        up = true
        let resent = try stack.client.post("/api/payment/webhook", body: body.bytes)
        XCTAssertEqual(resent.text, "OK")
        XCTAssertEqual(try JSON.parse(try status(82, id).body)["status"]?.stringValue, "succeeded")
    }
}

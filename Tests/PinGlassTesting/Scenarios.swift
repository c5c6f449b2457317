import Foundation
import PinGlass
import JSON
import Postgres
import XCTest

/// Scenarios written once against `TestClient` and run by both tiers: in process by the unit
/// tier, through nginx and a pool by the end-to-end tier. The same requests, the same
/// assertions; only the transport differs.
public enum Scenarios {
    /// The bank's notification confirms a pending payment: a forged one is refused and
    /// changes nothing, the signed one is applied once (a replay answers OK and applies
    /// nothing more), and the payer, not someone else, sees it paid through the status
    /// endpoint. `c` is a connection to the database behind `client`.
    public static func paymentConfirmedByNotification(_ client: TestClient, _ c: Connection) throws {
        let via = " (\(client.name))"
        let pricing = try client.get("/api/pricing")
        XCTAssertEqual(pricing.status, 200, via)
        XCTAssertNotNil(try pricing.json()["tiers"]?.arrayValue?.first, via)

        let payer: Int64 = 5301
        let p = try Fixtures.pendingPayment(c, telegramID: payer)
        let forged = Fixtures.notification(paymentID: p.bankID, orderID: p.orderID, status: "CONFIRMED", amount: 49900, password: "guess")
        XCTAssertEqual(try client.post("/api/payment/webhook", body: forged.serialized).status, 403, via)
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "pending", via)

        let confirmed = Fixtures.notification(paymentID: p.bankID, orderID: p.orderID, status: "CONFIRMED", amount: 49900)
        for _ in 0..<2 {
            let res = try client.post("/api/payment/webhook", body: confirmed.serialized)
            XCTAssertEqual(res.status, 200, via)
            XCTAssertEqual(res.text, "OK", via)
        }
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "succeeded", via)
        XCTAssertEqual(try Fixtures.outcomes(c, paymentID: p.id).filter { $0 == "applied" }.count, 1, via)

        let mine = try client.get("/api/payment/status", query: "payment_id=\(p.bankID)", headers: [Fixtures.auth(telegramID: payer)])
        XCTAssertEqual(mine.status, 200, via)
        let status = try mine.json()
        XCTAssertEqual(status["paid"], .bool(true), via)
        XCTAssertEqual(status["status"]?.stringValue, "succeeded", via)
        XCTAssertEqual(status["paymentId"]?.stringValue, p.bankID, via)
        let stranger = try client.get("/api/payment/status", query: "payment_id=\(p.bankID)", headers: [Fixtures.auth(telegramID: payer + 1)])
        XCTAssertEqual(stranger.status, 404, via)
        XCTAssertEqual(try client.get("/api/payment/status").status, 401, via)
    }
}

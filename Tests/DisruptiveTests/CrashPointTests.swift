import XCTest
import Foundation
import HTTPClient
import PinGlassTesting
@testable import PinGlass

/// A worker killed at a named point inside the webhook transaction (`CRASHPOINT`) loses
/// nothing: the transaction rolls back, nginx answers 502, the bank re-sends, and the
/// notification is applied exactly once.
final class CrashPointTests: XCTestCase {
    func testWebhookCrashPointsLeaveNoTraceAndTheResendApplies() throws {
        for point in ["webhook.after-transition", "webhook.after-log"] {
            let db = try makeDatabase()
            let c = try db.connect()
            let p = try Fixtures.pendingPayment(c)
            let body = Fixtures.notification(paymentID: p.bankID, orderID: p.orderID, status: "CONFIRMED", amount: 49900)
            var env = Fixtures.env(simURL: "http://127.0.0.1:9")
            env["CRASHPOINT"] = point
            let crashing = try Stack(database: db, workers: 1, env: env)
            let first = try crashing.client.post("/api/payment/webhook", body: body.bytes)
            XCTAssertEqual(first.status, 502, point)
            XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "pending", "\(point): rolled back")
            XCTAssertEqual(try Fixtures.outcomes(c, paymentID: p.id), [], "\(point): no half-written log")
            try Subprocess.waitUntil("worker respawned") { crashing.log().contains("exited with code 137") }
            crashing.stop()

            let healthy = try Stack(database: db, workers: 1, env: Fixtures.env(simURL: "http://127.0.0.1:9"))
            defer { healthy.stop() }
            XCTAssertEqual(try healthy.client.post("/api/payment/webhook", body: body.bytes).text, "OK")
            XCTAssertEqual(try healthy.client.post("/api/payment/webhook", body: body.bytes).text, "OK")
            XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "succeeded")
            XCTAssertEqual(try Fixtures.outcomes(c, paymentID: p.id), ["applied", "duplicate"], point)
        }
    }
}

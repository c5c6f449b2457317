import PinGlassTesting
import XCTest

/// `Scenarios.paymentConfirmedByNotification` through nginx and a `pinglass-fcgi` pool (no
/// simulator: the scenario never asks the bank). `PaymentScenarioInProcessTests` (unit tier)
/// runs the same scenario in process.
final class PaymentScenarioLiveTests: XCTestCase {
    func testANotificationConfirmsAPaymentOnceAndOnlyThePayerSeesIt() throws {
        let db = try makeDatabase()
        let stack = try Stack(database: db, env: Fixtures.env(simURL: "http://127.0.0.1:\(Subprocess.freePort())"))
        defer { stack.stop() }
        try Scenarios.paymentConfirmedByNotification(.live(stack), db.connect())
    }
}

import PinGlassTesting
import XCTest

/// `Scenarios.paymentConfirmedByNotification` in process: the handler called directly.
/// `PaymentScenarioLiveTests` (end-to-end tier) runs the same scenario through nginx and a pool.
final class PaymentScenarioInProcessTests: XCTestCase {
    func testANotificationConfirmsAPaymentOnceAndOnlyThePayerSeesIt() throws {
        let db = try makeDatabase()
        let app = try InProcessApp(database: db, env: Fixtures.env(simURL: "http://127.0.0.1:9"))
        try Scenarios.paymentConfirmedByNotification(.inProcess(app), db.connect())
    }
}

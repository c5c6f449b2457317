import Foundation
import PinGlass
import Postgres
import XCTest
import JSON
import Providers

/// A test of refunds against the simulated bank: its own migrated database, the real stack
/// (nginx, the pool for the bank's notifications, the simulator), the simulator's bank API,
/// one connection `c`, and the `Dependencies` an in-process refund duty gets. Alerts go to
/// chat 1001. Stopped and dropped (audited) after each test.
open class BankStackTestCase: DatabaseTestCase {
    public var stack: Stack!
    public var bank: BankSimulator!
    public var c: Connection!
    public var deps: Dependencies!

    open override func setUpWithError() throws {
        try super.setUpWithError()
        let simPort = Subprocess.freePort()
        let env = Fixtures.env(simURL: "http://127.0.0.1:\(simPort)").merging(["ADMIN_TELEGRAM_CHAT_ID": "1001"]) { $1 }
        stack = try Stack(database: db, env: env, withSimulator: true, simPort: simPort)
        bank = BankSimulator(simURL: stack.simURL)
        c = try db.connect()
        let config = try db.config(env.merging(["PUBLIC_BASE_URL": stack.baseURL]) { $1 })
        deps = Dependencies.live(config: config, database: Database(url: config.databaseURL, applicationName: "test"),
                            migrationsDirectory: try TestDatabase.migrationsDir())
    }

    open override func tearDown() {
        stack?.stop()
        super.tearDown()
    }

    /// A payment made through our API and paid on the simulated bank (its notifications
    /// reached our webhook): succeeded.
    public func paid(_ telegramID: Int64, sbp: Bool = false) throws -> (id: Int, bankID: String, orderID: String) {
        let created = try JSON.parse(try stack.client.post("/api/payment/create", body: #"{"tierId":"starter"}"#,
                                                    headers: [Fixtures.auth(telegramID: telegramID)]).body)
        let bankID = try XCTUnwrap(created["paymentId"]?.stringValue)
        try bank.pay(bankID, sbp: sbp)
        let row = try c.query("SELECT id, status, order_id FROM payments WHERE tbank_payment_id = $1", [bankID])[0]
        XCTAssertEqual(row.string("status"), "succeeded")
        return (row.requiredInt("id"), bankID, row.requiredString("order_id"))
    }

    /// The refund due now, whatever its backoff said.
    public func makeDue(_ id: Int) throws { try c.execute("UPDATE refunds SET run_at = now() WHERE id = $1", [id]) }

    /// The real `pinglass` binary with the stack's environment (text logs), optionally
    /// crashing at a crash point.
    public func cli(_ args: [String], crashAt point: String? = nil) throws -> (Int32, String, String) {
        var env = stack.environment
        env["LOG_FORMAT"] = "text"
        if let point { env["CRASHPOINT"] = point }
        return try Subprocess.capture(TestEnvironment.binDir() + "/pinglass", args, environment: env)
    }
}

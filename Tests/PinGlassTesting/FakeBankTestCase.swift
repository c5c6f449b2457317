import PinGlass
import Postgres
import XCTest
import Providers

/// A test of the refund duty in-process against `FakeBank` (no network): its own migrated
/// database (audited when dropped), one connection `c`, and `Dependencies` whose bank is the
/// fake (a CONFIRMED payment of 499 ₽ unless the test changes it), with the test terminal
/// configured and alerts going to chat 1001.
open class FakeBankTestCase: DatabaseTestCase {
    public var deps: Dependencies!
    public var c: Connection!
    public var bank: FakeBank!

    open override func setUpWithError() throws {
        try super.setUpWithError()
        c = try db.connect()
        let config = try db.config(["TBANK_TEST_TERMINAL_KEY": Fixtures.testTerminal.key, "TBANK_TEST_PASSWORD": Fixtures.testTerminal.password,
                                    "ADMIN_TELEGRAM_CHAT_ID": "1001", "PUBLIC_BASE_URL": "https://pinglass.example"])
        deps = Dependencies.live(config: config, database: Database(url: config.databaseURL, applicationName: "test"),
                            migrationsDirectory: try TestDatabase.migrationsDir())
        bank = FakeBank(state: "CONFIRMED", amount: 49_900)
        deps.bankFactory = bank.factory
    }
}

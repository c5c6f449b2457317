import Foundation
import HTTPCore
import Logging
import PinGlassTesting
import Postgres
import XCTest
import JSON
import PinGlassConfig
import Platform
import ProviderWire
@testable import PinGlass
@testable import PinGlassWeb

/// `GET /api/payment/status` asking the bank about late payments: at most once per interval
/// however many calls arrive, with the payment's own terminal.
final class PaymentStatusTests: DatabaseTestCase {

    func app(_ bank: FakeBank, production: Bool = false) throws -> InProcessApp {
        let app = try InProcessApp(database: db, env: Fixtures.env(simURL: "http://127.0.0.1:9", production: production))
        app.deps.bankFactory = bank.factory
        return app
    }

    func makeLate(_ c: Connection, _ id: Int) throws {
        try c.execute("UPDATE payments SET created_at = now() - interval '1 minute', last_checked_at = NULL WHERE id = $1", [id])
    }

    /// 20 concurrent status calls for one late payment: the bank is asked once, also when
    /// it is slow and when it fails.
    func testConcurrentStatusCallsAskTheBankOncePerInterval() throws {
        let c = try db.connect()
        for failure in [nil, TBankError.unavailable("timeout")] {
            let bank = FakeBank(state: "CONFIRMED", delay: 0.3, failure: failure)
            let p = try Fixtures.pendingPayment(c, telegramID: failure == nil ? 8101 : 8102)
            try makeLate(c, p.id)
            let apps = try (0..<20).map { _ in try app(bank) }
            let auth = Fixtures.auth(telegramID: failure == nil ? 8101 : 8102)
            let statuses = Locked<[Int]>([])
            let done = DispatchSemaphore(value: 0)
            for a in apps {
                let box = Locked(a)
                Thread {
                    // -1: the request threw, which fails the all-200 assertion below.
                    let r = try? box.value.client.get("/api/payment/status", query: "payment_id=\(p.bankID)", headers: [auth])
                    statuses.mutate { $0.append(r?.status ?? -1) }
                    done.signal()
                }.start()
            }
            for _ in apps { XCTAssertEqual(done.wait(timeout: .now() + 30), .success) }
            XCTAssertEqual(statuses.value, Array(repeating: 200, count: 20))
            XCTAssertEqual(bank.calls.filter { $0.method == "GetState" }.count, 1, "failure: \(String(describing: failure))")
            XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, failure == nil ? "succeeded" : "pending")
        }
    }

    /// A payment made on the test terminal is asked about with the test terminal, though
    /// production is in force now (and the other way round).
    func testTheBankIsAskedWithThePaymentsOwnTerminal() throws {
        let c = try db.connect()
        try c.execute("INSERT INTO settings (key, value) VALUES ('tbank_mode', 'production') ON CONFLICT (key) DO UPDATE SET value = 'production'")
        let bank = FakeBank(state: "CONFIRMED")
        let a = try app(bank, production: true)
        let test = try Fixtures.pendingPayment(c, telegramID: 8201)
        let prod = try Fixtures.pendingPayment(c, telegramID: 8202, terminal: Fixtures.productionTerminal, mode: "production")
        try makeLate(c, test.id)
        try makeLate(c, prod.id)
        for (tg, p) in [(Int64(8201), test), (8202, prod)] {
            let auth = Fixtures.auth(telegramID: tg)
            XCTAssertEqual(try a.client.get("/api/payment/status", query: "payment_id=\(p.bankID)", headers: [auth]).status, 200)
        }
        XCTAssertEqual(bank.calls.map(\.terminalKey), [Fixtures.testTerminal.key, Fixtures.productionTerminal.key])
    }

    /// `PaymentStatusPoll.check` without HTTP: a late payment is asked about once per
    /// interval and answered as the bank confirmed it; a failing bank leaves it as stored.
    func testTheDomainsStatusPollAsksOncePerIntervalAndSurvivesAFailingBank() throws {
        let c = try db.connect()
        let bank = FakeBank(state: "CONFIRMED")
        let deps = try app(bank).deps
        let p = try Fixtures.pendingPayment(c, telegramID: 8301)
        try makeLate(c, p.id)
        let stored = try XCTUnwrap(PaymentLedger.find(c, id: p.id))
        let first = try PaymentStatusPoll.check(deps, stored, telegramID: 8301, log: Logger(label: "t"))
        XCTAssertEqual(first.payment.status, .succeeded)
        XCTAssertTrue(first.usable)
        _ = try PaymentStatusPoll.check(deps, stored, telegramID: 8301, log: Logger(label: "t"))
        XCTAssertEqual(bank.calls.count, 1, "the second poll within the interval does not ask")

        let late = try Fixtures.pendingPayment(c, telegramID: 8302)
        try makeLate(c, late.id)
        let failing = FakeBank(state: "CONFIRMED", failure: TBankError.unavailable("timeout"))
        deps.bankFactory = failing.factory
        let answer = try PaymentStatusPoll.check(deps, try XCTUnwrap(PaymentLedger.find(c, id: late.id)), telegramID: 8302,
                                                 log: Logger(label: "t"))
        XCTAssertEqual(answer.payment.status, .pending)
        XCTAssertFalse(answer.usable)
        XCTAssertEqual(failing.calls.count, 1)
    }

    /// A GetState answer about another amount moves nothing (the webhook's cross-checks).
    func testAGetStateThatDoesNotMatchThePaymentIsNotApplied() throws {
        let c = try db.connect()
        let bank = FakeBank(state: "CONFIRMED", amount: 100)
        let a = try app(bank)
        let p = try Fixtures.pendingPayment(c, telegramID: 8501)
        try makeLate(c, p.id)
        let auth = Fixtures.auth(telegramID: 8501)
        XCTAssertEqual(try a.client.get("/api/payment/status", query: "payment_id=\(p.bankID)", headers: [auth]).status, 200)
        XCTAssertEqual(bank.calls.count, 1)
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "pending")
        XCTAssertEqual(try Counters.value(c, "payments.mismatched_notifications"), 1)
        // A NUL or anything but digits as payment_id is a 400, never a 500.
        XCTAssertEqual(try a.client.get("/api/payment/status", query: "payment_id=%00", headers: [auth]).status, 400)
        XCTAssertEqual(try a.client.get("/api/payment/status", query: "payment_id=12a", headers: [auth]).status, 400)
    }

    /// No bank call can go out while the process holds a transaction open (docs/reliability.md#R1).
    func testTheBankRefusesCallsInsideATransaction() throws {
        let bank = FakeBank(state: "CONFIRMED")
        let a = try app(bank)
        let deps = a.deps
        XCTAssertThrowsError(try deps.db().withTransaction { _ in
            try deps.bank(Fixtures.testTerminal, 1).getState(paymentID: "1")
        }) { XCTAssertTrue($0 is ProviderCallInTransaction, "\($0)") }
        XCTAssertEqual(bank.calls.count, 0)
        XCTAssertEqual(try deps.bank(Fixtures.testTerminal, 1).getState(paymentID: "1").status, "CONFIRMED", "outside: allowed")
    }

    /// Test-terminal payments are usable only in test mode or for TEST_TELEGRAM_IDS.
    func testTestPaymentsAreNotUsableInProductionExceptForStaff() throws {
        let c = try db.connect()
        let p = try Fixtures.pendingPayment(c, telegramID: 8301, status: "succeeded")
        let q = try Fixtures.pendingPayment(c, telegramID: 8302, status: "succeeded")
        var env = Fixtures.env(simURL: "http://127.0.0.1:9", production: true)
        env["TEST_TELEGRAM_IDS"] = "8302, 42"
        let a = try InProcessApp(database: db, env: env)
        let start = System.now()
        a.deps.clock.now = { start }
        nonisolated(unsafe) var elapsed = 0.0
        a.deps.cache.monotonic = { elapsed }
        func usable(_ tg: Int64, _ bankID: String) throws -> JSON? {
            let auth = Fixtures.auth(telegramID: tg)
            return try JSON.parse(try a.client.get("/api/payment/status", query: "payment_id=\(bankID)", headers: [auth]).body)["usable"]
        }
        XCTAssertEqual(try usable(8301, p.bankID), true, "test mode in force")
        try c.execute("INSERT INTO settings (key, value) VALUES ('tbank_mode', 'production') ON CONFLICT (key) DO UPDATE SET value = 'production'")
        // The answer's mode is cached per worker for a second (a generation reads it afresh).
        XCTAssertEqual(try usable(8301, p.bankID), true, "within the cached second")
        // The cache counts monotonic time, not the wall clock (held still here, as a clock
        // stepped back would hold it): the second passes all the same.
        elapsed = PaymentStatusPoll.modeCacheSeconds + 0.5
        XCTAssertEqual(try usable(8301, p.bankID), false, "production in force: a test payment is no money")
        XCTAssertEqual(try usable(8302, q.bankID), true, "staff on TEST_TELEGRAM_IDS")
        XCTAssertThrowsError(try Config(variables: ["DATABASE_URL": "x", "TEST_TELEGRAM_IDS": "12,abc"]))
    }

    /// Authenticated reads write nothing: a known user with unchanged fields is only read.
    func testAuthenticatedReadsDoNotWriteTheUserRow() throws {
        let c = try db.connect()
        let a = try app(FakeBank(state: "NEW"))
        let auth = Fixtures.auth(telegramID: 8401)
        XCTAssertEqual(try a.client.get("/api/payment/status", headers: [auth]).status, 200)
        // xmin changes when the row is rewritten, xmax when it is locked (an upsert's
        // ON CONFLICT DO UPDATE … WHERE locks the row even when it changes nothing).
        let xmin = { try c.query("SELECT xmin::text || '/' || xmax::text AS x FROM users WHERE telegram_user_id = 8401")[0].requiredString("x") }
        let before = try xmin()
        for _ in 0..<5 { XCTAssertEqual(try a.client.get("/api/payment/status", headers: [auth]).status, 200) }
        XCTAssertEqual(try xmin(), before, "the row was neither rewritten nor locked")
        // A changed username is written once.
        let renamed = ("Authorization", "tma " + TelegramInitData.sign(
            fields: [("auth_date", String(Int(Date().timeIntervalSince1970))), ("user", #"{"id":8401,"first_name":"Test","username":"renamed"}"#)],
            botToken: Fixtures.botToken))
        XCTAssertEqual(try a.client.get("/api/payment/status", headers: [renamed]).status, 200)
        XCTAssertEqual(try c.query("SELECT username FROM users WHERE telegram_user_id = 8401")[0].string("username"), "renamed")
        XCTAssertNotEqual(try xmin(), before)
    }
}

/// A value shared between threads.
final class Locked<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var v: T
    init(_ v: T) { self.v = v }
    var value: T { lock.lock(); defer { lock.unlock() }; return v }
    func mutate(_ f: (inout T) -> Void) { lock.lock(); f(&v); lock.unlock() }
}

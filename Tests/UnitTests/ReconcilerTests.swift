import XCTest
import Postgres
import PinGlassTesting
import PinGlassConfig
@testable import PinGlass
import Providers

/// `pinglass reconcile` against an in-process fake bank: late payments, expiry after a last
/// look, re-checks of settled payments, batches and claims.
final class ReconcilerTests: DatabaseTestCase {
    var conn: Connection!
    var deps: Dependencies!
    let bank = FakeBank(state: "CONFIRMED")

    override func setUpWithError() throws {
        try super.setUpWithError()
        conn = try db.connect()
        let config = try db.config(Fixtures.env(simURL: "http://127.0.0.1:9"))
        deps = Dependencies.live(config: config, database: Database(url: config.databaseURL, applicationName: "test"),
                            migrationsDirectory: try TestDatabase.migrationsDir())
        deps.bankFactory = bank.factory
    }
    override func tearDown() {
        deps?.database.close()
        conn?.close()
        super.tearDown()
    }

    func reconciler(_ configure: (inout Reconciler.Config) -> Void = { _ in }) throws -> Reconciler {
        var config = Reconciler.Config()
        configure(&config)
        return try Reconciler(deps: deps, config: config)
    }

    @discardableResult
    func pass(_ r: Reconciler? = nil) throws -> Reconciler.Report {
        let reconciler = try r ?? reconciler()
        let now = deps.clock()
        return try reconciler.runOnce(now: now, deadline: now + 55)
    }

    /// A pending payment created a day ago whose link expired `dueAgo` ago.
    func duePayment(dueAgo: String = "1 minute", status: String = "pending") throws -> (id: Int, bankID: String) {
        let p = try Fixtures.pendingPayment(conn, telegramID: Int64.random(in: 1000...9_999_999), status: status)
        try conn.execute("""
            UPDATE payments SET created_at = now() - interval '1 day', redirect_due_at = now() - $2::interval WHERE id = $1
            """, [p.id, dueAgo])
        return (p.id, p.bankID)
    }

    func status(_ id: Int) throws -> String { try Fixtures.paymentState(conn, id).status }

    func testADuePaymentTheBankConfirmedSucceedsAndIsNeverExpired() throws {
        let p = try duePayment()
        let report = try pass()
        XCTAssertEqual(try status(p.id), "succeeded")
        XCTAssertEqual(report.applied, 1)
        XCTAssertEqual(report.expired, 0)
        XCTAssertEqual(bank.calls.map { [$0.method, $0.terminalKey, $0.paymentID] },
                       [["GetState", Fixtures.testTerminal.key, p.bankID]], "asked once, with the payment's own terminal")
    }

    /// The bank's answer decides; only a never-paid state expires the payment.
    func testTheLastLookDecidesTheDuePaymentsFate() throws {
        let expected = ["CONFIRMED": "succeeded", "AUTHORIZED": "authorized", "NEW": "expired", "FORM_SHOWED": "expired",
                        "DEADLINE_EXPIRED": "expired", "REJECTED": "rejected", "3DS_CHECKING": "pending",
                        "AUTHORIZING": "pending", "SOMETHING_NEW": "pending"]
        for (bankStatus, ours) in expected {
            let p = try duePayment()
            bank.state = bankStatus
            try pass()
            XCTAssertEqual(try status(p.id), ours, bankStatus)
        }
        let unpaid = try conn.query("SELECT bank_status FROM payments WHERE status = 'expired' ORDER BY bank_status")
        XCTAssertEqual(unpaid.map { $0.requiredString("bank_status") }, ["DEADLINE_EXPIRED", "FORM_SHOWED", "NEW"])
    }

    /// No answer, no expiry: not on the next pass, not days past the due date. The payment is
    /// asked again once `recheckSeconds` have passed, and expires when the bank says NEW.
    func testADuePaymentStaysPendingWhileGetStateFails() throws {
        let p = try duePayment(dueAgo: "4 days")
        bank.failure = .unavailable("timeout")
        let report = try pass()
        XCTAssertEqual(try status(p.id), "pending")
        XCTAssertEqual(report.errors, 1)
        XCTAssertEqual(report.keptPending, 1)
        XCTAssertEqual(report.expired, 0)
        try pass()
        XCTAssertEqual(bank.calls.count, 1, "not asked again before recheckSeconds")
        XCTAssertEqual(try status(p.id), "pending")

        bank.failure = nil
        bank.state = "NEW"
        try conn.execute("UPDATE payments SET last_checked_at = now() - interval '61 seconds' WHERE id = $1", [p.id])
        XCTAssertEqual(try pass().expired, 1)
        XCTAssertEqual(bank.calls.count, 2)
        XCTAssertEqual(try status(p.id), "expired")
    }

    /// Init never answered: nobody saw a link, so nobody can have paid; no bank call.
    func testADuePaymentWithoutABankIDIsExpiredWithoutAsking() throws {
        let p = try duePayment()
        try conn.execute("UPDATE payments SET status = 'new', tbank_payment_id = NULL WHERE id = $1", [p.id])
        XCTAssertEqual(try pass().expired, 1)
        XCTAssertEqual(try status(p.id), "expired")
        XCTAssertEqual(bank.calls, [])
    }

    /// An expired payment is asked again once per `settledRecheckSeconds` (from the later of
    /// its last check and its settling) for `settledRecheckWindowSeconds` after settling; a
    /// CONFIRMED then revives it.
    func testAnExpiredPaymentRecheckedDaysLaterIsRevived() throws {
        let p = try Fixtures.pendingPayment(conn, status: "expired")
        func settled(_ updatedAgo: String, checkedAgo: String?) throws {
            try conn.execute("""
                UPDATE payments SET updated_at = now() - $2::interval, last_checked_at = now() - $3::interval WHERE id = $1
                """, [p.id, updatedAgo, checkedAgo])
        }
        try settled("2 hours", checkedAgo: nil)
        try pass()
        try settled("2 days", checkedAgo: "1 hour")
        try pass()
        try settled("4 days", checkedAgo: nil)
        try pass()
        XCTAssertEqual(bank.calls, [], "settled too recently, checked too recently, or settled too long ago")

        try settled("2 days", checkedAgo: "7 hours")
        let report = try pass()
        XCTAssertEqual(bank.calls.count, 1)
        XCTAssertEqual(report.revived, 1)
        XCTAssertEqual(try status(p.id), "succeeded")
    }

    func testAConfirmedForARejectedPaymentIsRefusedAndCounted() throws {
        let p = try Fixtures.pendingPayment(conn, status: "rejected")
        try conn.execute("UPDATE payments SET updated_at = now() - interval '7 hours' WHERE id = $1", [p.id])
        let report = try pass()
        XCTAssertEqual(report.refused, 1)
        XCTAssertEqual(report.revived, 0)
        XCTAssertEqual(try status(p.id), "rejected")
        XCTAssertEqual(try Counters.value(conn, "payments.refused_transitions"), 1)
    }

    /// `batchSize` payments per pass; a row another reconciler holds is skipped, not waited for.
    func testBatchesAndSkipLockedClaims() throws {
        bank.state = "NEW"
        let due = try (0..<5).map { _ in try duePayment().id }
        let r = try reconciler { $0.batchSize = 2 }
        XCTAssertEqual(try pass(r).expired, 2)

        let other = try db.connect()
        defer { other.close() }
        let held = try conn.query("SELECT id FROM payments WHERE status = 'pending' ORDER BY id LIMIT 1")[0].requiredInt("id")
        try other.execute("BEGIN")
        try other.execute("SELECT 1 FROM payments WHERE id = $1 FOR UPDATE", [held])
        XCTAssertEqual(try pass(r).expired, 2)
        XCTAssertEqual(try pass(r).expired, 0, "only the held payment is left")
        XCTAssertEqual(try status(held), "pending")
        try other.execute("COMMIT")
        XCTAssertEqual(try pass(r).expired, 1)
        XCTAssertEqual(try due.map { try status($0) }, Array(repeating: "expired", count: 5))
        XCTAssertEqual(bank.calls.count, 5, "each payment asked once")
    }

    /// A pass stops claiming at its deadline: what it did not claim keeps its place.
    func testAPassStopsClaimingAtItsDeadline() throws {
        let waiting = try (0..<3).map { _ -> Int in
            let p = try Fixtures.pendingPayment(conn, telegramID: Int64.random(in: 1000...9_999_999))
            try conn.execute("UPDATE payments SET created_at = now() - interval '3 minutes' WHERE id = $1", [p.id])
            return p.id
        }
        let now = deps.clock()
        let late = try reconciler().runOnce(now: now, deadline: now)
        XCTAssertTrue(late.stoppedAtDeadline)
        XCTAssertEqual(bank.calls, [])
        XCTAssertEqual(try conn.query("SELECT count(*)::int AS n FROM payments WHERE last_checked_at IS NOT NULL")[0].int("n"), 0)

        // Each reading of the clock moves it 10 s. Per payment the pass reads it twice: at the
        // claim and for the GetState timeout (capped by what is left of the pass). Claims at
        // +10 and +30 are taken, +50 is past the deadline.
        let clock = TestClock(now: now)
        deps.clock.now = { clock.advance(10); return clock.now }
        let report = try reconciler().runOnce(now: now, deadline: now + 45)
        XCTAssertEqual(report.checked, 2)
        XCTAssertTrue(report.stoppedAtDeadline)
        XCTAssertEqual(try waiting.map { try status($0) }.sorted(), ["pending", "succeeded", "succeeded"])
    }

    func testSettingsAreValidatedAtConstruction() throws {
        XCTAssertThrowsError(try reconciler { $0.pendingAfterSeconds = -5 }) { error in
            XCTAssertEqual((error as? DutyConfigError)?.setting, "pending-after")
            XCTAssertEqual("\(error)", "--pending-after must be between 0s and 86400s (got -5)")
        }
        XCTAssertThrowsError(try reconciler { $0.batchSize = 0 })
        XCTAssertThrowsError(try reconciler { $0.settledRecheckSeconds = 1 })
        XCTAssertNoThrow(try Reconciler.Config().validate())
        XCTAssertTrue(DutyName.allCases.contains(Reconciler.name))
    }
}

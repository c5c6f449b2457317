import Foundation
import PinGlassTesting
import Postgres
import XCTest
import LibCrypto
@testable import PinGlass

/// `pinglass refund` against a fake bank: a Cancel is never cut short by the pass's end, and
/// where the bank ignores ExternalRequestId (SBP) a refund whose Cancel outcome is unknown
/// is never sent again on a GetState that shows nothing: it settles, then waits for a person.
/// (RefundOperatorTests run the same against the simulated bank with a lagging GetState.)
final class RefundSettleTests: FakeBankTestCase {
    func pass(within seconds: Double = 60) throws -> RefundSender.Report {
        try RefundSender(deps: deps).runOnce(now: deps.clock(), deadline: deps.clock() + seconds)
    }

    func refund(_ paymentID: Int, _ amount: Int) throws -> Int {
        try c.query("""
            INSERT INTO refunds (payment_id, amount_kopecks, reason, requested_by) VALUES ($1, $2, 'test', 'test') RETURNING id
            """, [paymentID, amount])[0].requiredInt("id")
    }

    func row(_ id: Int) throws -> Row {
        try c.query("""
            SELECT state, attempts, last_error, cancel_sent_at IS NOT NULL AS sent, extract(epoch FROM run_at - now())::float8 AS due_in
            FROM refunds WHERE id = $1
            """, [id])[0]
    }

    func makeDue(_ id: Int) throws { try c.execute("UPDATE refunds SET run_at = now() WHERE id = $1", [id]) }
    var cancels: Int { bank.calls.filter { $0.method == "Cancel" }.count }

    /// Near the end of a pass, a refund is not claimed (the old sender sent it with the
    /// little time left as its timeout, so a slow bank became an unknown outcome); with time
    /// for all three calls (GetState, Cancel, GetState after a refusal) at their full
    /// timeout, it is, and the bank gets that timeout.
    func testARefundIsClaimedOnlyWithTimeForBothCallsAtTheirFullTimeout() throws {
        // With nothing due, a pass too late to claim is idle (a debug line, not news).
        XCTAssertFalse(try pass(within: 3 * RefundSenderDefaults.timeout - 5).stoppedAtDeadline)
        let p = try Fixtures.pendingPayment(c, telegramID: 6231, status: "succeeded")
        let id = try refund(p.id, 2_000)
        final class Timeouts: @unchecked Sendable { var seen: [Double] = [] }
        let timeouts = Timeouts()
        let fake = bank.factory
        deps.bankFactory = { terminal, timeout in timeouts.seen.append(timeout); return fake(terminal, timeout) }

        let late = try pass(within: 3 * RefundSenderDefaults.timeout - 5)
        XCTAssertTrue(late.stoppedAtDeadline)
        XCTAssertEqual(late.sent, 0)
        XCTAssertEqual(try row(id).string("state"), "pending", "not claimed: its three calls may each take the full timeout")
        XCTAssertEqual(try row(id).int("attempts"), 0)
        XCTAssertTrue(bank.calls.isEmpty)
        XCTAssertTrue(timeouts.seen.isEmpty, "no bank client made at all: \(timeouts.seen)")

        let inTime = try pass(within: 3 * RefundSenderDefaults.timeout + 1)
        XCTAssertEqual(inTime.succeeded, 1)
        XCTAssertEqual(timeouts.seen, [RefundSenderDefaults.timeout], "the full timeout")
        XCTAssertEqual(try row(id).bool("sent"), true, "the Cancel was recorded before it went out")
    }

    /// SBP: the Cancel's outcome is lost and GetState shows no refund (it may lag). Nothing is
    /// sent while the settle period runs (asked again by its end at the latest); after it the
    /// refund is held for an operator, alerted with the command to resolve it, still never sent.
    func testAnSBPRefundWhoseGetStateShowsNothingSettlesThenIsHeldNeverResent() throws {
        bank.route = "SBP"
        let p = try Fixtures.pendingPayment(c, telegramID: 6232, status: "succeeded")
        let id = try refund(p.id, 10_847)
        bank.cancelSteps = [.fail(.unavailable("Cancel: timeout"))]
        XCTAssertEqual(try pass().retried, 1)
        XCTAssertEqual(cancels, 1)

        try makeDue(id)
        let settling = try pass()
        XCTAssertEqual(settling.askedState, 1)
        XCTAssertEqual(settling.settling, 1)
        XCTAssertEqual(settling.sent, 0, "GetState CONFIRMED right after a lost SBP Cancel is not believed")
        XCTAssertEqual(cancels, 1)
        var stored = try row(id)
        XCTAssertEqual(stored.string("state"), "requested")
        XCTAssertTrue(stored.string("last_error")?.hasPrefix("settling:") == true, stored.string("last_error") ?? "")
        XCTAssertLessThanOrEqual(try XCTUnwrap(stored.double("due_in")), RefundSenderDefaults.settleSeconds + 2, "asked again by the end")

        // The settle period is over and GetState still shows nothing: held for a person.
        try c.execute("UPDATE refunds SET cancel_sent_at = now() - interval '16 minutes', run_at = now() WHERE id = $1", [id])
        let held = try pass()
        XCTAssertEqual(held.unresolved, 1)
        XCTAssertEqual(held.sent, 0)
        XCTAssertEqual(cancels, 1, "never sent again by itself")
        stored = try row(id)
        XCTAssertEqual(stored.string("state"), "requested", "its share of the payment stays reserved")
        XCTAssertGreaterThan(try XCTUnwrap(stored.double("due_in")), 0.75 * 3600 - 5)
        let alert = try c.query("SELECT payload->>'text' AS text FROM telegram_deliveries WHERE dedupe_key LIKE $1",
                                ["alert:refund-unresolved:\(id):%"])
        XCTAssertEqual(alert.count, 1)
        XCTAssertTrue(alert.first?.requiredString("text").contains("pinglass resolve-refund \(id) --landed") == true)

        // Hourly checks go on: when GetState finally shows it landed, it is recorded.
        try makeDue(id)
        XCTAssertEqual(try pass().unresolved, 1)
        _ = try bank.cancel(paymentID: p.bankID, amount: 10_847, externalRequestID: Crypto.uuid(), receipt: nil)   // the lost one, at last
        try makeDue(id)
        let landed = try pass()
        XCTAssertEqual(landed.succeeded, 1)
        XCTAssertEqual(landed.sent, 0)
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).refunded, 10_847)
        XCTAssertEqual(try InvariantAudit.run(c), [])
    }

    /// A refund whose earlier attempt never called the bank (its sender died after the
    /// intent, or the terminal was missing) waits for nothing: GetState shows no refund, and
    /// no Cancel of it ever went out, so it is sent. A card payment is sent again at once
    /// (the key returns the first outcome).
    func testWithoutACancelInFlightOrWithTheKeyHonouredNothingWaits() throws {
        bank.route = "SBP"
        let p = try Fixtures.pendingPayment(c, telegramID: 6233, status: "succeeded")
        let id = try refund(p.id, 1_000)
        try c.execute("UPDATE refunds SET state = 'requested', attempts = 1 WHERE id = $1", [id])   // the intent, then a crash
        let report = try pass()
        XCTAssertEqual(report.askedState, 1)
        XCTAssertEqual(report.sent, 1)
        XCTAssertEqual(report.succeeded, 1)
        XCTAssertEqual(bank.charged(p.bankID), 48_900)

        bank.route = "ACQ"
        let card = try Fixtures.pendingPayment(c, telegramID: 6234, status: "succeeded")
        let cardRefund = try refund(card.id, 1_000)
        bank.cancelSteps = [.fail(.unavailable("Cancel: timeout"))]
        XCTAssertEqual(try pass().retried, 1)
        try makeDue(cardRefund)
        let again = try pass()
        XCTAssertEqual(again.settling, 0)
        XCTAssertEqual(again.succeeded, 1, "the same key again")
        XCTAssertEqual(bank.charged(card.bankID), 48_900)
    }
}

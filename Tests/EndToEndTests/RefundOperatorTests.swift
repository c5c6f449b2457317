import XCTest
import Foundation
import HTTPClient
import Postgres
import PinGlassTesting
import LibCrypto
import PinGlassConfig
@testable import PinGlass

/// Refunds where a person decides, against the simulated bank (real nginx, pool and
/// simulator; the refund duty in-process, the operator's commands as the real `pinglass`
/// binary): a lost SBP Cancel while the bank's GetState lags behind it, the operator's
/// `resolve-refund` and `ack-alert`, and `manual-refund`'s guards against mistakes. The
/// simulator's own record of each Cancel is what proves "one refund at the bank".
final class RefundOperatorTests: BankStackTestCase {
    func refund(_ bankID: String, _ kopecks: Int) throws -> Int {
        try ManualRefunds.request(c, payment: bankID, amount: Money(kopecks: kopecks), reason: "test", ticket: Crypto.uuid(), actor: "test").refundID
    }

    /// One pass of the refund duty with this timeout, whose deadline is `within` seconds away.
    func pass(timeout: Double = 5, within: Double = 30) throws -> RefundSender.Report {
        var config = RefundSender.Config()
        config.timeout = timeout
        return try RefundSender(deps: deps, config: config).runOnce(now: deps.clock(), deadline: deps.clock() + within)
    }

    func settled(_ id: Int) throws {
        try c.execute("UPDATE refunds SET cancel_sent_at = now() - interval '16 minutes', run_at = now() WHERE id = $1", [id])
    }
    func state(_ id: Int) throws -> String { try c.query("SELECT state FROM refunds WHERE id = $1", [id])[0].requiredString("state") }
    func cancelsAtBank(_ bankID: String) throws -> Int { try bank.payment(bankID)["cancels"]?.arrayValue?.count ?? -1 }

    /// A refund of an SBP payment claimed near the end of a pass,
    /// a slow bank (it refunds, and answers after 2.5 s), and a GetState that keeps showing
    /// the payment as it was. The old sender gave that Cancel the 2 s left as its timeout,
    /// lost the answer, then believed GetState and sent a second Cancel: two refunds. Now the
    /// late pass does not claim it; the next one waits for the answer: one refund.
    func testASlowBankNearTheEndOfAPassRefundsOnce() throws {
        let p = try paid(8701, sbp: true)
        let id = try refund(p.bankID, 10_847)
        try bank.set(["getstate_lag_s": 3600, "cancel_delay_ms": 2500, "cancel_delay_ms_times": 1])
        _ = try pass(timeout: 5, within: 2)
        try makeDue(id)
        _ = try pass(timeout: 5, within: 30)
        try makeDue(id)
        _ = try pass(timeout: 5, within: 30)
        XCTAssertEqual(try cancelsAtBank(p.bankID), 1, "exactly one refund at the bank")
        XCTAssertEqual(try bank.payment(p.bankID)["charged"]?.intValue, 49_900 - 10_847)
        XCTAssertEqual(try state(id), "succeeded")
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).refunded, 10_847)
        XCTAssertEqual(try InvariantAudit.run(c), [])
    }

    /// SBP, the Cancel's answer lost (504) and GetState lagging (it still says CONFIRMED):
    /// nothing is sent again; once the bank's state catches up the refund is recorded from it.
    /// Another such refund, still not visible after the settle period, is held and alerted;
    /// the operator sees GetState (still CONFIRMED: our reading says "not landed"), is refused
    /// --landed without --force, and resolves it as landed with --force.
    func testALostSBPCancelWithALaggingGetStateIsNeverSentTwice() throws {
        let p = try paid(8702, sbp: true)
        let q = try paid(8703, sbp: true)       // paid before the bank's notifications are held
        let id = try refund(p.bankID, 10_847)
        try bank.set(["notify_hold": true, "getstate_lag_s": 3600, "cancel_drop_answer": "504", "cancel_drop_answer_times": 1])
        XCTAssertEqual(try pass(timeout: 1).retried, 1)
        XCTAssertEqual(try cancelsAtBank(p.bankID), 1, "the bank did it")
        try makeDue(id)
        let settling = try pass(timeout: 1)
        XCTAssertEqual(settling.askedState, 1)
        XCTAssertEqual(settling.sent, 0, "GetState still says CONFIRMED: not believed, nothing sent")
        XCTAssertEqual(settling.settling, 1)
        XCTAssertEqual(try cancelsAtBank(p.bankID), 1, "no second refund")
        try bank.set(["getstate_lag_s": nil])        // the bank's state catches up
        try makeDue(id)
        let caughtUp = try pass(timeout: 1)
        XCTAssertEqual(caughtUp.succeeded, 1)
        XCTAssertEqual(caughtUp.sent, 0)
        XCTAssertEqual(try cancelsAtBank(p.bankID), 1)
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).refunded, 10_847)

        // Another one whose state does not catch up within the settle period: held.
        let held = try refund(q.bankID, 20_000)
        try bank.set(["getstate_lag_s": 3600, "cancel_drop_answer": "504", "cancel_drop_answer_times": 1])
        XCTAssertEqual(try pass(timeout: 1).retried, 1)
        try makeDue(held)
        XCTAssertEqual(try pass(timeout: 1).settling, 1)
        try settled(held)
        let report = try pass(timeout: 1)
        XCTAssertEqual(report.unresolved, 1)
        XCTAssertEqual(report.sent, 0)
        XCTAssertEqual(try cancelsAtBank(q.bankID), 1)
        XCTAssertEqual(try state(held), "requested")

        let (usage, _, usageErr) = try cli(["resolve-refund", String(held), "--reason", "x"])
        XCTAssertEqual(usage, 64, usageErr)
        XCTAssertTrue(usageErr.contains("--landed or --not-landed"), usageErr)
        let (unforced, unforcedOut, unforcedErr) = try cli(["resolve-refund", String(held), "--landed", "--reason", "the dashboard shows 200 RUB back"])
        XCTAssertEqual(unforced, 1, unforcedOut + unforcedErr)
        XCTAssertTrue(unforcedOut.contains("T-Bank now: GetState CONFIRMED"), unforcedOut)
        XCTAssertTrue(unforcedErr.contains("does not support --landed (not landed)") && unforcedErr.contains("--force"), unforcedErr)
        XCTAssertEqual(try state(held), "requested", "nothing recorded")
        let (status, out, err) = try cli(["resolve-refund", String(held), "--landed", "--force", "--reason", "the dashboard shows 200 RUB back"])
        XCTAssertEqual(status, 0, out + err)
        XCTAssertTrue(out.contains("T-Bank now: GetState CONFIRMED"), out)
        XCTAssertTrue(out.contains("Route SBP"), out)
        XCTAssertTrue(out.contains("refund \(held) recorded as succeeded"), out)
        XCTAssertEqual(try state(held), "succeeded")
        XCTAssertEqual(try Fixtures.paymentState(c, q.id).refunded, 20_000)
        XCTAssertEqual(try Fixtures.paymentState(c, q.id).status, "partially_refunded")
        let audit = try c.query("""
            SELECT action, target, details->>'verdict' AS v, details->>'bank' AS bank, details->>'force' AS f FROM admin_audit WHERE action = 'refund.resolve'
            """)
        XCTAssertEqual(audit.map { [$0.string("target"), $0.string("v"), $0.string("f")] }, [["refund:\(held)", "landed", "true"]])
        XCTAssertTrue(audit.first?.string("bank")?.contains("CONFIRMED") == true)
        let (again, _, againErr) = try cli(["resolve-refund", String(held), "--landed", "--force", "--reason", "twice"])
        XCTAssertEqual(again, 1)
        XCTAssertTrue(againErr.contains("refund \(held) is succeeded"), againErr)
        try bank.set(["notify_hold": nil, "getstate_lag_s": nil])
        try bank.deliver()
        XCTAssertEqual(try Fixtures.paymentState(c, q.id).refunded, 20_000, "the late notifications change nothing")
        XCTAssertEqual(try cli(["audit"]).0, 0)
    }

    /// A Cancel that did nothing at the bank (503), on SBP: held after the settle period; the
    /// operator finds no refund in the dashboard and says so; the next pass sends it (the
    /// same key), and the bank has one refund. "Not landed" is refused while GetState shows
    /// the refund landed.
    func testAnOperatorSaysNotLandedAndTheRefundIsSentOnce() throws {
        let p = try paid(8711, sbp: true)
        let id = try refund(p.bankID, 5_000)
        try bank.set(["cancel_fail_status": 503, "cancel_fail_status_times": 1])
        XCTAssertEqual(try pass().retried, 1)
        try makeDue(id)
        XCTAssertEqual(try pass().settling, 1)
        try settled(id)
        XCTAssertEqual(try pass().unresolved, 1)
        XCTAssertEqual(try cancelsAtBank(p.bankID), 0)

        let (status, out, err) = try cli(["resolve-refund", String(id), "--not-landed", "--reason", "no refund in the dashboard"])
        XCTAssertEqual(status, 0, out + err)
        XCTAssertTrue(out.contains("T-Bank now: GetState CONFIRMED"), out)
        XCTAssertTrue(out.contains("will be sent again"), out)
        // No Cancel of it has gone out since: "landed" cannot be true, --force or not.
        let (noCancel, _, noCancelErr) = try cli(["resolve-refund", String(id), "--landed", "--force", "--reason", "changed my mind"])
        XCTAssertEqual(noCancel, 1, noCancelErr)
        XCTAssertTrue(noCancelErr.contains("no Cancel of it went out"), noCancelErr)
        XCTAssertEqual(try state(id), "requested")
        let sent = try pass()
        XCTAssertEqual(sent.sent, 1)
        XCTAssertEqual(sent.succeeded, 1)
        XCTAssertEqual(try cancelsAtBank(p.bankID), 1, "one refund at the bank")
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).refunded, 5_000)

        // Its answer lost, the bank's state current: "not landed" is refused; the duty records it.
        let q = try paid(8712, sbp: true)
        let lost = try refund(q.bankID, 5_000)
        try bank.set(["cancel_drop_answer": "504", "cancel_drop_answer_times": 1])
        XCTAssertEqual(try pass(timeout: 1).retried, 1)
        let (refused, _, refusedErr) = try cli(["resolve-refund", String(lost), "--not-landed", "--reason", "guess"])
        XCTAssertEqual(refused, 1)
        XCTAssertTrue(refusedErr.contains("shows it landed"), refusedErr)
        try makeDue(lost)
        XCTAssertEqual(try pass().succeeded, 1)
        XCTAssertEqual(try cancelsAtBank(q.bankID), 1)
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM admin_audit WHERE action = 'refund.resolve'")[0].int("n"), 1)
        XCTAssertEqual(try cli(["audit"]).0, 0)
    }

    /// "Not landed" needs a reading that says so: with GetState failing (or a refund in
    /// progress, or figures that cannot tell) it is refused unless --force is given.
    func testNotLandedWithoutAReadingThatSaysSoNeedsForce() throws {
        let p = try paid(8731, sbp: true)
        let id = try refund(p.bankID, 5_000)
        try bank.set(["cancel_fail_status": 503, "cancel_fail_status_times": 1])
        XCTAssertEqual(try pass().retried, 1)
        try makeDue(id)
        XCTAssertEqual(try pass().settling, 1)
        try settled(id)
        XCTAssertEqual(try pass().unresolved, 1)

        try bank.set(["getstate_error": "9999"])
        let (refused, out, err) = try cli(["resolve-refund", String(id), "--not-landed", "--reason", "no refund in the dashboard"])
        XCTAssertEqual(refused, 1, out + err)
        XCTAssertTrue(out.contains("T-Bank now: GetState failed"), out)
        XCTAssertTrue(err.contains("does not support --not-landed (GetState gave no answer)") && err.contains("--force"), err)
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM admin_audit WHERE action = 'refund.resolve'")[0].int("n"), 0)
        XCTAssertNotNil(try c.query("SELECT cancel_sent_at FROM refunds WHERE id = $1", [id])[0].string("cancel_sent_at"), "unchanged")

        let (forced, forcedOut, forcedErr) = try cli(["resolve-refund", String(id), "--not-landed", "--force", "--reason", "no refund in the dashboard"])
        XCTAssertEqual(forced, 0, forcedOut + forcedErr)
        XCTAssertTrue(forcedOut.contains("will be sent again"), forcedOut)
        XCTAssertEqual(try c.query("SELECT details->>'force' AS f FROM admin_audit WHERE action = 'refund.resolve'").map { $0.string("f") }, ["true"])
        try bank.set(["getstate_error": nil])
        XCTAssertEqual(try pass().succeeded, 1)
        XCTAssertEqual(try cancelsAtBank(p.bankID), 1, "one refund at the bank")

        let (_, help, _) = try cli(["resolve-refund", "--help"])
        XCTAssertTrue(help.contains("--force"), help)
    }

    /// `manual-refund` as an operator runs it: it shows the payment, its job and refunds;
    /// a ticket is required and a repeat (a dropped SSH session) adds nothing and says so;
    /// a second refund and a consumed payment need --force. `ack-alert refunds-owed`
    /// quiets the hourly alert.
    func testManualRefundIsSafeAgainstMistakes() throws {
        let p = try paid(8721)
        let (noTicket, _, noTicketErr) = try cli(["manual-refund", "--payment", p.bankID, "--amount", "100rub", "--reason", "x"])
        XCTAssertEqual(noTicket, 64, noTicketErr)
        XCTAssertTrue(noTicketErr.contains("--ticket"), noTicketErr)
        let (noReason, _, _) = try cli(["manual-refund", "--payment", p.bankID, "--amount", "100rub", "--ticket", "412", "--reason", " "])
        XCTAssertEqual(noReason, 64)

        let args = ["manual-refund", "--payment", p.bankID, "--amount", "100rub", "--reason", "blurry", "--ticket", "412"]
        let (s1, out1, e1) = try cli(args)
        XCTAssertEqual(s1, 0, e1)
        let id = try c.query("SELECT id FROM refunds WHERE payment_id = $1", [p.id])[0].requiredInt("id")
        XCTAssertTrue(out1.contains("payment \(p.id) (order \(p.orderID), T-Bank \(p.bankID)): succeeded, paid 499.00 RUB"), out1)
        XCTAssertTrue(out1.contains("not consumed by a generation") && out1.contains("no refunds yet"), out1)
        XCTAssertTrue(out1.contains("refund \(id) queued: 100.00 RUB"), out1)

        let (s2, out2, e2) = try cli(args)
        XCTAssertEqual(s2, 0, e2)
        XCTAssertTrue(out2.contains("nothing new: ticket \"412\" already made refund \(id)"), out2)
        XCTAssertTrue(out2.contains("refunds: \(id) 100.00 RUB pending (ticket 412)"), out2)
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM refunds")[0].int("n"), 1, "nothing new")
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM admin_audit")[0].int("n"), 1)

        let (s3, _, e3) = try cli(["manual-refund", "--payment", p.bankID, "--amount", "50rub", "--reason", "x", "--ticket", "412"])
        XCTAssertEqual(s3, 1)
        XCTAssertTrue(e3.contains("ticket \"412\" already made refund \(id) of 100.00 RUB"), e3)
        let (s4, _, e4) = try cli(["manual-refund", "--payment", p.orderID, "--amount", "50rub", "--reason", "more", "--ticket", "413"])
        XCTAssertEqual(s4, 1)
        XCTAssertTrue(e4.contains("has 1 refund(s) already") && e4.contains("--force"), e4)
        let (s5, _, e5) = try cli(["manual-refund", "--payment", p.orderID, "--amount", "50rub", "--reason", "more", "--ticket", "413", "--force"])
        XCTAssertEqual(s5, 0, e5)
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM refunds")[0].int("n"), 2)
        XCTAssertEqual(try c.query("SELECT details->>'force' AS f FROM admin_audit ORDER BY id").map { $0.string("f") }, ["false", "true"])

        // A payment a generation consumed.
        let job = try JobFixtures.running(deps, telegramID: 8722, photos: 2)
        let ref = try c.query("SELECT order_id FROM payments WHERE id = $1", [job.paymentID])[0].requiredString("order_id")
        let (s6, out6, e6) = try cli(["manual-refund", "--payment", ref, "--amount", "100", "--reason", "x", "--ticket", "500"])
        XCTAssertEqual(s6, 1)
        XCTAssertTrue(out6.contains("consumed by generation job \(job.id) (processing, 0 of 2 photos)"), out6)
        XCTAssertTrue(out6.contains("nothing to deliver yet"), out6)
        XCTAssertTrue(e6.contains("was consumed by generation job \(job.id)") && e6.contains("--force"), e6)
        let (s7, _, e7) = try cli(["manual-refund", "--payment", ref, "--amount", "100", "--reason", "x", "--ticket", "500", "--force"])
        XCTAssertEqual(s7, 0, e7)

        // Owed money acknowledged: a refund failed for good.
        try c.execute("UPDATE refunds SET state = 'failed', finished_at = now(), last_error = 'T-Bank error 308' WHERE id = $1", [id])
        let (h, help, _) = try cli(["ack-alert", "--help"])
        XCTAssertEqual(h, 0)
        XCTAssertTrue(help.contains("refunds-owed"), help)
        let (a0, _, a0Err) = try cli(["ack-alert", "queue-stale:refund", "--reason", "x"])
        XCTAssertEqual(a0, 64)
        XCTAssertTrue(a0Err.contains("only refunds-owed"), a0Err)
        let (a1, ackOut, ackErr) = try cli(["ack-alert", "refunds-owed", "--reason", "the receipt is being fixed, ticket 412"])
        XCTAssertEqual(a1, 0, ackErr)
        XCTAssertTrue(ackOut.contains("1 refund(s), 100.00 RUB (ids \(id))"), ackOut)
        XCTAssertFalse(try SweepAlerts(config: .init(), adminChatID: 1001).conditions(c).contains { $0.key == "refunds-owed" })
    }
}

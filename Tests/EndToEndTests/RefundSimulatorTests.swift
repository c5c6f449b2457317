import XCTest
import Foundation
import HTTPClient
import Postgres
import PinGlassTesting
import JSON
import LibCrypto
import PinGlassConfig
@testable import PinGlass
@testable import Providers

/// Refunds against the simulated bank: real nginx, pool (the webhook) and simulator; the
/// refund duty in-process or as the real `pinglass` binary (crash points, operator commands).
/// The simulator's own record of each Cancel is what proves "one refund at the bank".
final class RefundSimulatorTests: BankStackTestCase {
    func refund(_ bankID: String, _ kopecks: Int) throws -> ManualRefunds.Queued {
        try ManualRefunds.request(c, payment: bankID, amount: Money(kopecks: kopecks), reason: "test", ticket: Crypto.uuid(), force: true,
                                  actor: "test")
    }

    func pass(timeout: Double = 5) throws -> RefundSender.Report {
        var config = RefundSender.Config()
        config.timeout = timeout
        return try RefundSender(deps: deps, config: config).runOnce(now: deps.clock(), deadline: deps.clock() + 30)
    }


    func state(_ refundID: Int) throws -> Row {
        try c.query("""
            SELECT state, attempts, bank_status, bank_original_kopecks, bank_remaining_kopecks, last_error, lease_token IS NOT NULL AS leased
            FROM refunds WHERE id = $1
            """, [refundID])[0]
    }

    /// Cancel failing (a 503 with nothing done, then T-Bank 9999), then succeeding: every
    /// attempt carries the same ExternalRequestId, amount and receipt; the bank refunded once.
    func testCancelFailingThenSucceedingRefundsOnceAtTheBank() throws {
        let p = try paid(8101)
        let r = try refund(p.bankID, 10_000)
        try bank.set(["cancel_fail_status": 503, "cancel_fail_status_times": 1, "cancel_error": "9999", "cancel_error_times": 1])
        XCTAssertEqual(try pass().retried, 1)
        XCTAssertTrue(try state(r.refundID).requiredString("last_error").contains("HTTP 503"))
        try makeDue(r.refundID)
        let second = try pass()
        XCTAssertEqual(second.askedState, 1)
        XCTAssertEqual(second.retried, 1)
        XCTAssertTrue(try state(r.refundID).requiredString("last_error").contains("9999"))
        XCTAssertEqual(try bank.payment(p.bankID)["refunded"]?.intValue, 0)
        try makeDue(r.refundID)
        XCTAssertEqual(try pass().succeeded, 1)

        let atBank = try bank.payment(p.bankID)
        XCTAssertEqual(atBank["refunded"]?.intValue, 10_000)
        XCTAssertEqual(atBank["charged"]?.intValue, 39_900)
        XCTAssertEqual(atBank["cancels"]?.arrayValue?.map { $0["externalRequestId"]?.stringValue }, [r.externalRequestID])
        let sent = try bank.requests("Cancel")
        XCTAssertEqual(sent.count, 3)
        for request in sent {
            XCTAssertEqual(request["ExternalRequestId"]?.stringValue, r.externalRequestID)
            XCTAssertEqual(request["Amount"]?.intValue, 10_000)
            XCTAssertEqual(request["Receipt"]?["Items"]?.arrayValue?.compactMap { $0["Amount"]?.intValue }.reduce(0, +), 10_000)
        }
        XCTAssertEqual(try bank.requests("GetState").count, 2, "asked before each retry")
        let s = try state(r.refundID)
        XCTAssertEqual(s.string("state"), "succeeded")
        XCTAssertEqual(s.int("attempts"), 3)
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "partially_refunded")
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).refunded, 10_000)
        // What a person sees on the bank's page.
        let page = try bank.page(p.bankID)
        XCTAssertTrue(page.contains("Refunded 100.00 RUB"), page)
        XCTAssertTrue(page.contains(r.externalRequestID), page)
        XCTAssertEqual(try InvariantAudit.run(c), [])
    }

    /// The bank refunds, then its answer is lost (504, 502, an HTML page, a timeout): the
    /// refund stays requested; the retry asks GetState, whose figures show the refund went
    /// through, and records them. One refund at the bank; the payment moved by the bank's
    /// figures alone (notifications held back until the end).
    func testALostAnswerAfterTheBankRefundedEndsInExactlyOneRefund() throws {
        let faults: [JSON] = [["cancel_drop_answer": "504"], ["cancel_drop_answer": "502"], ["cancel_drop_answer": "garbage"],
                              ["cancel_delay_ms": 2500]]
        for (n, fault) in faults.enumerated() {
            let p = try paid(Int64(8200 + n))
            let r = try refund(p.bankID, 20_000)
            try bank.set(["notify_hold": true])
            guard case .object(var switches) = fault else { return XCTFail() }
            switches.append((switches[0].0 + "_times", 1))
            try bank.set(.object(switches))
            let first = try pass(timeout: 1)
            XCTAssertEqual(first.retried, 1, "\(fault)")
            XCTAssertEqual(try state(r.refundID).string("state"), "requested", "\(fault): never failed blindly")
            XCTAssertEqual(try bank.payment(p.bankID)["refunded"]?.intValue, 20_000, "\(fault): the bank did it")
            XCTAssertEqual(try Fixtures.paymentState(c, p.id).refunded, 0, "\(fault): nothing recorded without an answer")

            try makeDue(r.refundID)
            let retry = try pass(timeout: 1)
            XCTAssertEqual(retry.askedState, 1, "\(fault)")
            XCTAssertEqual(retry.succeeded, 1, "\(fault)")
            let atBank = try bank.payment(p.bankID)
            XCTAssertEqual(atBank["cancels"]?.arrayValue?.count, 1, "\(fault): one refund at the bank")
            XCTAssertEqual(atBank["charged"]?.intValue, 29_900, "\(fault)")
            let s = try state(r.refundID)
            XCTAssertEqual(s.string("state"), "succeeded", "\(fault)")
            XCTAssertEqual(s.string("bank_status"), "PARTIAL_REFUNDED", "\(fault)")
            XCTAssertEqual(s.int("bank_original_kopecks"), 49_900, "\(fault)")
            XCTAssertEqual(s.int("bank_remaining_kopecks"), 29_900, "\(fault)")
            XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "partially_refunded", "\(fault)")
            XCTAssertEqual(try Fixtures.paymentState(c, p.id).refunded, 20_000, "\(fault)")
            // The held notification arrives late and changes nothing.
            try bank.set(["notify_hold": nil])
            try bank.deliver()
            XCTAssertEqual(try Fixtures.paymentState(c, p.id).refunded, 20_000, "\(fault)")
        }
        XCTAssertEqual(try InvariantAudit.run(c), [])
    }

    /// C1: 499 ₽ paid by SBP, where the bank does not honour ExternalRequestId (every Cancel
    /// is a new refund). 108.47 ₽ refunded, the answer lost (504, then a held notification):
    /// the retry asks GetState, whose figures show the refund went through, and records it
    /// without a second Cancel. Exactly one refund at the bank; the payment moved by it.
    func testALostAnswerOnAnSBPPaymentEndsInExactlyOneRefundAtTheBank() throws {
        let p = try paid(8251, sbp: true)
        XCTAssertEqual(try bank.payment(p.bankID)["route"]?.stringValue, "SBP")
        let r = try refund(p.bankID, 10_847)
        try bank.set(["notify_hold": true, "cancel_drop_answer": "504", "cancel_drop_answer_times": 1])
        XCTAssertEqual(try pass(timeout: 1).retried, 1)
        XCTAssertEqual(try bank.payment(p.bankID)["refunded"]?.intValue, 10_847, "the bank did it")

        try makeDue(r.refundID)
        let retry = try pass(timeout: 1)
        XCTAssertEqual(retry.askedState, 1)
        XCTAssertEqual(retry.sent, 0, "no second Cancel")
        XCTAssertEqual(retry.succeeded, 1)
        let atBank = try bank.payment(p.bankID)
        XCTAssertEqual(atBank["cancels"]?.arrayValue?.count, 1, "exactly one refund at the bank")
        XCTAssertEqual(atBank["charged"]?.intValue, 39_053)
        XCTAssertEqual(try bank.requests("Cancel").count, 1)
        let s = try state(r.refundID)
        XCTAssertEqual(s.string("state"), "succeeded")
        XCTAssertEqual(s.int("bank_original_kopecks"), 49_900)
        XCTAssertEqual(s.int("bank_remaining_kopecks"), 39_053)
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "partially_refunded")
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).refunded, 10_847)
        XCTAssertEqual(try pass(), RefundSender.Report(), "nothing left to send")
        try bank.set(["notify_hold": nil])
        try bank.deliver()
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).refunded, 10_847, "the late notification changes nothing")

        // The simulator's SBP: the same key does refund again (what the sender must never rely on).
        _ = try TBankClient(apiURL: stack.simURL + "/v2", terminal: Fixtures.testTerminal)
            .cancel(paymentID: p.bankID, amount: 100, externalRequestID: r.externalRequestID)
        XCTAssertEqual(try bank.payment(p.bankID)["cancels"]?.arrayValue?.count, 2)
        XCTAssertEqual(try InvariantAudit.run(c), [])
    }

    /// A refusal the bank means (the payment was refunded in full in the bank's dashboard,
    /// code 9; a receipt refused, 308): the refund fails with an alert, nothing moves; fixed
    /// and re-queued, it goes through with its own key.
    func testAPermanentRefusalFailsWithAnAlertAndARequeueSendsItAgain() throws {
        let p = try paid(8301)
        let r = try refund(p.bankID, 5_000)
        try bank.set(["cancel_error": "308", "cancel_error_times": 1])
        XCTAssertEqual(try pass().failed, 1)
        var s = try state(r.refundID)
        XCTAssertEqual(s.string("state"), "failed")
        XCTAssertTrue(s.requiredString("last_error").hasPrefix("T-Bank error 308"))
        let alerts = try c.query("SELECT chat_id, dedupe_key FROM telegram_deliveries WHERE kind = 'alert'")
        XCTAssertEqual(alerts.map { $0.int("chat_id") }, [1001])
        XCTAssertTrue(alerts[0].requiredString("dedupe_key").hasPrefix("alert:refund-failed:\(r.refundID):"))
        XCTAssertEqual(try bank.payment(p.bankID)["refunded"]?.intValue, 0)
        XCTAssertEqual(try InvariantAudit.run(c), [], "a failed refund breaks no invariant")

        try ManualRefunds.requeue(c, refundID: r.refundID, actor: "test")
        XCTAssertEqual(try pass().succeeded, 1)
        XCTAssertEqual(try bank.payment(p.bankID)["cancels"]?.arrayValue?.map { $0["externalRequestId"]?.stringValue }, [r.externalRequestID])

        // The rest given back in the bank's dashboard (we do not hear of it): our next refund
        // is refused by the bank's state.
        try bank.set(["notify_hold": true])
        _ = try TBankClient(apiURL: stack.simURL + "/v2", terminal: Fixtures.testTerminal)
            .cancel(paymentID: p.bankID, amount: nil, externalRequestID: Crypto.uuid())
        let late = try refund(p.bankID, 1_000)
        XCTAssertEqual(try pass().failed, 1)
        s = try state(late.refundID)
        XCTAssertTrue(s.requiredString("last_error").hasPrefix("T-Bank error 9"), s.requiredString("last_error"))
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM telegram_deliveries WHERE kind = 'alert'")[0].int("n"), 2)
        try bank.set(["notify_hold": nil])
        try bank.deliver()
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "refunded")
        XCTAssertEqual(try InvariantAudit.run(c), [])
    }

    /// Partial, then the rest: partially_refunded → refunded, by the bank's answers.
    func testPartialThenFullRefund() throws {
        let p = try paid(8401)
        try bank.set(["notify_hold": true])
        let first = try refund(p.bankID, 9_900)
        XCTAssertEqual(try pass().succeeded, 1)
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "partially_refunded")
        let rest = try refund(p.bankID, 40_000)
        XCTAssertEqual(try pass().succeeded, 1)
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "refunded")
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).refunded, 49_900)
        XCTAssertEqual(try state(rest.refundID).string("bank_status"), "REFUNDED")
        let atBank = try bank.payment(p.bankID)
        XCTAssertEqual(atBank["status"]?.stringValue, "REFUNDED")
        XCTAssertEqual(atBank["cancels"]?.arrayValue?.map { $0["externalRequestId"]?.stringValue }, [first.externalRequestID, rest.externalRequestID])
        XCTAssertThrowsError(try refund(p.bankID, 1), "nothing left to refund") {
            XCTAssertTrue("\($0)".contains("only a succeeded or partially refunded payment"), "\($0)")
        }
        try bank.set(["notify_hold": nil])
        try bank.deliver()
        XCTAssertEqual(try InvariantAudit.run(c), [])
    }

    /// `pinglass refund` killed right after its intent, and right after the bank's OK before
    /// recording it; once its lease ran out the next run finishes the job: exactly one
    /// refund at the bank, the database consistent, `pinglass audit` clean.
    func testCrashAfterIntentOrAfterTheBanksOKThenANormalRunRefundsOnce() throws {
        for (n, point) in ["refund.after-intent", "refund.after-bank-ok"].enumerated() {
            let p = try paid(Int64(8500 + n))
            let (queued, out, err) = try cli(["manual-refund", "--payment", p.orderID, "--amount", "150rub", "--reason", "crash test",
                                                  "--ticket", "T-\(n)"])
            XCTAssertEqual(queued, 0, out + err)
            let refundID = try c.query("SELECT id FROM refunds WHERE payment_id = $1", [p.id])[0].requiredInt("id")

            let (crashed, log, _) = try cli(["refund"], crashAt: point)
            XCTAssertEqual(crashed, 137, "\(point): \(log)")
            let s = try state(refundID)
            XCTAssertEqual(s.string("state"), "requested", point)
            XCTAssertEqual(s.int("attempts"), 1, point)
            XCTAssertEqual(s.bool("leased"), true, point)
            XCTAssertEqual(try bank.payment(p.bankID)["cancels"]?.arrayValue?.count, point == "refund.after-intent" ? 0 : 1, point)
            XCTAssertEqual(try InvariantAudit.run(c), [], "\(point): consistent right after the crash")

            // Later: the dead sender's lease has run out.
            try c.execute("UPDATE refunds SET lease_until = now() - interval '1 second' WHERE id = $1", [refundID])
            let (status, runLog, runErr) = try cli(["refund"])
            XCTAssertEqual(status, 0, runLog + runErr)
            let after = try state(refundID)
            XCTAssertEqual(after.string("state"), "succeeded", "\(point): \(runErr)")
            XCTAssertEqual(after.int("attempts"), 2, point)
            XCTAssertEqual(after.int("bank_remaining_kopecks"), 34_900, point)
            let atBank = try bank.payment(p.bankID)
            XCTAssertEqual(atBank["cancels"]?.arrayValue?.count, 1, "\(point): exactly one refund at the bank")
            XCTAssertEqual(atBank["refunded"]?.intValue, 15_000, point)
            XCTAssertEqual(try Fixtures.paymentState(c, p.id).refunded, 15_000, point)
            XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "partially_refunded", point)
            let (audit, auditOut, _) = try cli(["audit"])
            XCTAssertEqual(audit, 0, "\(point): \(auditOut)")
        }
    }

    /// The operator's commands as an operator runs them.
    func testManualRefundAndRequeueFromTheCommandLine() throws {
        let (h, help, _) = try cli(["--help"])
        XCTAssertEqual(h, 0)
        for command in ["refund", "manual-refund", "requeue-refund"] { XCTAssertTrue(help.contains(command), command) }
        let (_, refundHelp, _) = try cli(["refund", "--help"])
        XCTAssertTrue(refundHelp.contains("ExternalRequestId"), refundHelp)
        XCTAssertTrue(refundHelp.contains("(default: 10s)"), refundHelp)
        let (window, _, windowErr) = try cli(["refund", "--for", "20s", "--timeout", "10s", "--lease", "40s"])
        XCTAssertEqual(window, 64, "a usage error: three calls of 10s do not fit in 20s")
        XCTAssertTrue(windowErr.contains("--timeout times 3") && windowErr.contains("must fit in --for 20s"), windowErr)
        let (lease, _, leaseErr) = try cli(["refund", "--timeout", "10s", "--lease", "35s"])
        XCTAssertEqual(lease, 64)
        XCTAssertTrue(leaseErr.contains("--lease must be between 40s"), leaseErr)
        let (_, manualHelp, _) = try cli(["manual-refund", "--help"])
        XCTAssertTrue(manualHelp.contains("kopecks") && manualHelp.contains("₽"), manualHelp)

        let p = try paid(8601)
        let unpaid = try JSON.parse(try stack.client.post("/api/payment/create", body: #"{"tierId":"starter"}"#,
                                                   headers: [Fixtures.auth(telegramID: 8602)]).body)
        let (s0, _, e0) = try cli(["manual-refund", "--payment", p.bankID, "--amount", "12.5", "--reason", "x", "--ticket", "t0"])
        XCTAssertEqual(s0, 64, e0)
        XCTAssertTrue(e0.contains("--amount must be"), e0)
        let (s1, _, e1) = try cli(["manual-refund", "--payment", unpaid["paymentId"]!.stringValue!, "--amount", "100", "--reason", "x",
                                      "--ticket", "t1"])
        XCTAssertEqual(s1, 1)
        XCTAssertTrue(e1.contains("is pending: only a succeeded or partially refunded payment can be refunded"), e1)
        let (s2, _, e2) = try cli(["manual-refund", "--payment", "nope", "--amount", "100", "--reason", "x", "--ticket", "t2"])
        XCTAssertEqual(s2, 1)
        XCTAssertTrue(e2.contains("no payment has T-Bank PaymentId or order id \"nope\""), e2)

        let (s3, out3, e3) = try cli(["manual-refund", "--payment", p.bankID, "--amount", "100₽", "--reason", "two blurry portraits",
                                           "--ticket", "t3"])
        XCTAssertEqual(s3, 0, e3)
        let row = try c.query("""
            SELECT id, amount_kopecks, requested_by, reason, job_id, state, external_request_id::text AS k FROM refunds WHERE payment_id = $1
            """, [p.id])[0]
        let id = row.requiredInt("id")
        XCTAssertTrue(out3.contains("refund \(id) queued: 100.00 RUB back on payment \(p.id)"), out3)
        XCTAssertTrue(out3.contains("still refundable after this one: 399.00 RUB"), out3)
        XCTAssertTrue(out3.contains(row.requiredString("k")), out3)
        XCTAssertEqual(row.int("amount_kopecks"), 10_000)
        XCTAssertTrue(row.requiredString("requested_by").hasPrefix("cli:"))
        XCTAssertEqual(row.string("reason"), "two blurry portraits")
        XCTAssertNil(row.int("job_id"))
        XCTAssertEqual(row.string("state"), "pending")
        let audit = try c.query("SELECT actor, action, target, details->>'amountKopecks' AS a FROM admin_audit")
        XCTAssertEqual(audit.map { $0.string("action") }, ["refund.manual"])
        XCTAssertEqual(audit[0].string("target"), "refund:\(id)")
        XCTAssertEqual(audit[0].string("actor"), row.string("requested_by"))

        let (s4, _, e4) = try cli(["manual-refund", "--payment", p.orderID, "--amount", "40000", "--reason", "too much",
                                      "--ticket", "t4", "--force"])
        XCTAssertEqual(s4, 1)
        XCTAssertTrue(e4.contains("refused by the database: refund of 40000 kopecks exceeds what payment \(p.id) can still refund: 39900 kopecks"), e4)

        try bank.set(["cancel_error": "104", "cancel_error_times": 1])
        let (s5, _, e5) = try cli(["refund"])
        XCTAssertEqual(s5, 0, e5)
        XCTAssertEqual(try state(id).string("state"), "failed")
        let (s6, out6, e6) = try cli(["requeue-refund", String(id)])
        XCTAssertEqual(s6, 0, e6)
        XCTAssertTrue(out6.contains("refund \(id) re-queued (it had failed with: T-Bank error 104"), out6)
        XCTAssertEqual(try state(id).string("state"), "pending")
        XCTAssertEqual(try c.query("SELECT action FROM admin_audit ORDER BY id").map { $0.string("action") }, ["refund.manual", "refund.requeue"])
        let (s7, _, e7) = try cli(["requeue-refund", String(id)])
        XCTAssertEqual(s7, 1)
        XCTAssertTrue(e7.contains("refund \(id) is pending: only a failed refund can be re-queued"), e7)
        let (s8, _, e8) = try cli(["requeue-refund", "999999"])
        XCTAssertEqual(s8, 1)
        XCTAssertTrue(e8.contains("no refund has id 999999"), e8)

        let (s9, _, e9) = try cli(["refund"])
        XCTAssertEqual(s9, 0, e9)
        XCTAssertEqual(try state(id).string("state"), "succeeded")
        XCTAssertEqual(try bank.payment(p.bankID)["refunded"]?.intValue, 10_000)
        XCTAssertEqual(try cli(["audit"]).0, 0)
    }
}

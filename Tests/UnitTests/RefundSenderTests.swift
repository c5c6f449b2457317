import Foundation
import PinGlassTesting
import Postgres
import XCTest
import LibCrypto
import PinGlassConfig
import ProviderWire
@testable import PinGlass
@testable import PinGlassWeb

/// `pinglass refund` in-process against a fake bank: what it sends, how each answer is
/// classified and recorded, and that an unknown outcome is asked about before the retry.
/// (RefundSimulatorTests run the same against the simulated bank and the real binary.)
final class RefundSenderTests: FakeBankTestCase {
    func sender(_ change: (inout RefundSender.Config) -> Void = { _ in }) throws -> RefundSender {
        var config = RefundSender.Config()
        change(&config)
        return try RefundSender(deps: deps, config: config)
    }

    func pass() throws -> RefundSender.Report { try sender().runOnce(now: deps.clock(), deadline: deps.clock() + 60) }

    func refund(_ paymentID: Int, _ amount: Int) throws -> (id: Int, key: String) {
        let r = try c.query("""
            INSERT INTO refunds (payment_id, amount_kopecks, reason, requested_by) VALUES ($1, $2, 'test', 'test')
            RETURNING id, external_request_id::text AS k
            """, [paymentID, amount])[0]
        return (r.requiredInt("id"), r.requiredString("k"))
    }

    func row(_ id: Int) throws -> Row {
        try c.query("""
            SELECT state, attempts, bank_status, bank_original_kopecks, bank_remaining_kopecks, last_error, lease_token::text AS lease,
                   finished_at IS NOT NULL AS finished, extract(epoch FROM run_at - now())::float8 AS due_in
            FROM refunds WHERE id = $1
            """, [id])[0]
    }

    func makeDue(_ id: Int) throws { try c.execute("UPDATE refunds SET run_at = now() WHERE id = $1", [id]) }

    /// Partial, then the rest: each Cancel carries the refund's amount, a receipt summing to
    /// it and the row's own key; the payment moves by the bank's figures.
    func testPartialThenFullRefundMovesThePaymentByTheBanksAnswers() throws {
        let p = try Fixtures.pendingPayment(c, telegramID: 6201, status: "succeeded")
        let first = try refund(p.id, 10_000)
        var report = try pass()
        XCTAssertEqual(report.sent, 1)
        XCTAssertEqual(report.succeeded, 1)
        let call = try XCTUnwrap(bank.calls.first)
        XCTAssertEqual(bank.calls.map(\.method), ["Cancel"], "a first attempt does not ask GetState")
        XCTAssertEqual(call.terminalKey, Fixtures.testTerminal.key)
        XCTAssertEqual(call.paymentID, p.bankID)
        XCTAssertEqual(call.amount, 10_000)
        XCTAssertEqual(call.externalRequestID, first.key)
        let items = try XCTUnwrap(call.receipt?["Items"]?.arrayValue)
        XCTAssertEqual(items.compactMap { $0["Amount"]?.intValue }.reduce(0, +), 10_000)
        XCTAssertEqual(call.receipt?["Email"]?.stringValue, "user6201@pinglass.example")
        let r = try row(first.id)
        XCTAssertEqual(r.string("state"), "succeeded")
        XCTAssertEqual(r.string("bank_status"), "PARTIAL_REFUNDED")
        XCTAssertEqual(r.int("bank_original_kopecks"), 49_900)
        XCTAssertEqual(r.int("bank_remaining_kopecks"), 39_900)
        XCTAssertEqual(r.int("attempts"), 1)
        XCTAssertEqual(r.bool("finished"), true)
        XCTAssertNil(r.string("lease"))
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "partially_refunded")
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).refunded, 10_000)

        let rest = try refund(p.id, 39_900)
        report = try pass()
        XCTAssertEqual(report.succeeded, 1)
        XCTAssertEqual(try row(rest.id).string("bank_status"), "REFUNDED")
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "refunded")
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).refunded, 49_900)
        XCTAssertEqual(bank.charged(p.bankID), 0)
        XCTAssertEqual(try pass(), RefundSender.Report(), "nothing left to send")
        XCTAssertEqual(try InvariantAudit.run(c), [])
    }

    /// The answer is lost after the bank refunded: the row stays `requested` (never failed),
    /// due after a backoff; the retry asks GetState first, whose figures show the refund
    /// landed: recorded from them, nothing sent again. One refund.
    func testAnUnknownOutcomeIsAskedAboutAndALandedRefundIsRecordedFromTheBanksState() throws {
        let p = try Fixtures.pendingPayment(c, telegramID: 6202, status: "succeeded")
        let r = try refund(p.id, 20_000)
        bank.cancelSteps = [.refundThenFail(.unavailable("Cancel: timeout"))]
        var report = try pass()
        XCTAssertEqual(report.retried, 1)
        XCTAssertEqual(report.succeeded + report.failed, 0)
        var stored = try row(r.id)
        XCTAssertEqual(stored.string("state"), "requested")
        XCTAssertNil(stored.string("lease"), "the lease is given back")
        XCTAssertTrue(stored.requiredString("last_error").contains("timeout"))
        let dueIn = try XCTUnwrap(stored.double("due_in"))
        XCTAssertTrue((0.75 * 30 - 1...30).contains(dueIn), "first retry after the base backoff: \(dueIn)")
        XCTAssertEqual(try pass(), RefundSender.Report(), "not due before its retry time")
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).refunded, 0, "nothing recorded without the bank's answer")

        try makeDue(r.id)
        report = try pass()
        XCTAssertEqual(report.askedState, 1)
        XCTAssertEqual(report.succeeded, 1)
        XCTAssertEqual(report.sent, 0)
        XCTAssertEqual(bank.calls.map(\.method), ["Cancel", "GetState"])
        XCTAssertEqual(bank.charged(p.bankID), 29_900, "refunded once")
        stored = try row(r.id)
        XCTAssertEqual(stored.string("state"), "succeeded")
        XCTAssertEqual(stored.int("attempts"), 2)
        XCTAssertEqual(stored.string("bank_status"), "PARTIAL_REFUNDED")
        XCTAssertEqual(stored.int("bank_original_kopecks"), 49_900)
        XCTAssertEqual(stored.int("bank_remaining_kopecks"), 29_900)
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).refunded, 20_000)
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "partially_refunded")
    }

    /// C1: 499 ₽ paid by SBP, where Cancel does not honour ExternalRequestId (docs/providers.md#tbank-cancel). The
    /// bank refunds 108.47 ₽ and the answer is lost; GetState then says PARTIAL_REFUNDED.
    /// The retry must not send Cancel again (it would be a second refund, and its answer
    /// would pass every check): the bank's figures show ours landed. Exactly one refund.
    func testALostAnswerOnAnSBPPaymentEndsInExactlyOneRefundAtTheBank() throws {
        let p = try Fixtures.pendingPayment(c, telegramID: 6211, status: "succeeded")
        bank.route = "SBP"
        let r = try refund(p.id, 10_847)
        bank.cancelSteps = [.refundThenFail(.unavailable("Cancel: timeout"))]
        XCTAssertEqual(try pass().retried, 1)
        try makeDue(r.id)
        let report = try pass()
        XCTAssertEqual(report.succeeded, 1)
        XCTAssertEqual(report.sent, 0, "no second Cancel")
        XCTAssertEqual(bank.calls.filter { $0.method == "Cancel" }.count, 1)
        XCTAssertEqual(bank.charged(p.bankID), 49_900 - 10_847, "one refund at the bank")
        XCTAssertEqual(try row(r.id).string("state"), "succeeded")
        XCTAssertEqual(try row(r.id).int("bank_remaining_kopecks"), 39_053)
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).refunded, 10_847)
        XCTAssertEqual(try pass(), RefundSender.Report())
        XCTAssertEqual(try InvariantAudit.run(c), [])
    }

    /// When the bank's figures cannot tell (here a refund made in the bank's dashboard
    /// meanwhile): a card payment gets the same key again (the bank answers the first
    /// outcome); an SBP payment gets nothing sent, stays `requested`, is asked again about
    /// an hour later and an operator is alerted, per refund.
    func testAnUndecidableStateResendsTheKeyForACardAndHoldsAnSBPRefund() throws {
        for (n, route) in ["ACQ", "SBP"].enumerated() {
            bank.route = route
            let p = try Fixtures.pendingPayment(c, telegramID: Int64(6212 + n), status: "succeeded")
            let r = try refund(p.id, 5_000)
            bank.cancelSteps = [.refundThenFail(.unavailable("Cancel: timeout"))]
            XCTAssertEqual(try pass().retried, 1, route)
            // Someone gives 10 ₽ back in the bank's dashboard.
            _ = try bank.cancel(paymentID: p.bankID, amount: 1_000, externalRequestID: Crypto.uuid())
            try makeDue(r.id)
            let cancelsBefore = bank.calls.filter { $0.method == "Cancel" }.count
            let report = try pass()
            let cancels = bank.calls.filter { $0.method == "Cancel" }.count - cancelsBefore
            if route == "ACQ" {
                XCTAssertEqual(report.succeeded, 1, route)
                XCTAssertEqual(cancels, 1, "the same key again")
                XCTAssertEqual(bank.charged(p.bankID), 49_900 - 5_000 - 1_000, "the key returned the first outcome")
                XCTAssertEqual(try row(r.id).string("state"), "succeeded")
            } else {
                XCTAssertEqual(report.unresolved, 1, route)
                XCTAssertEqual(report.sent, 0, route)
                XCTAssertEqual(cancels, 0, "never a blind second Cancel")
                XCTAssertEqual(bank.charged(p.bankID), 49_900 - 5_000 - 1_000)
                let stored = try row(r.id)
                XCTAssertEqual(stored.string("state"), "requested", "its share of the payment stays reserved")
                XCTAssertTrue(stored.requiredString("last_error").hasPrefix("unresolved:"), stored.requiredString("last_error"))
                XCTAssertGreaterThan(try XCTUnwrap(stored.double("due_in")), 0.75 * 3600 - 5, "asked again in about an hour")
                let alert = try c.query("SELECT payload->>'text' AS text FROM telegram_deliveries WHERE dedupe_key LIKE $1",
                                        ["alert:refund-unresolved:\(r.id):%"])
                XCTAssertEqual(alert.count, 1)
                XCTAssertTrue(alert.first?.requiredString("text").contains("NOT sent again") == true)
                XCTAssertEqual(try Fixtures.paymentState(c, p.id).refunded, 0)
            }
        }
    }

    /// C1 (b): the sender's lease ran out after the bank's OK, and another sender claimed the
    /// refund. The bank's answer is the truth whoever holds the lease: the late sender
    /// records it; the new holder finds it recorded and sends nothing (SBP: a second
    /// Cancel would have been a second refund).
    func testABankConfirmedRefundIsRecordedByASenderWhoseLeaseRanOut() throws {
        let p = try Fixtures.pendingPayment(c, telegramID: 6214, status: "succeeded")
        bank.route = "SBP"
        let r = try refund(p.id, 7_000)
        let slow = try sender()
        let claimed = try XCTUnwrap(try slow.claim())
        let answer = try bank.cancel(paymentID: p.bankID, amount: 7_000, externalRequestID: r.key, receipt: nil)
        try c.execute("UPDATE refunds SET lease_until = now() - interval '1 second' WHERE id = $1", [r.id])
        let next = try sender()
        let taken = try XCTUnwrap(try next.claim())
        XCTAssertTrue(taken.outcomeUnknown)

        var late = RefundSender.Report()
        try slow.recordSucceeded(claimed, answer, stillCharged: 42_900, &late)
        XCTAssertEqual(late.succeeded, 1, "recorded although its lease was taken back")
        XCTAssertEqual(try row(r.id).string("state"), "succeeded")
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).refunded, 7_000)

        var report = RefundSender.Report()
        try next.send(taken, deadline: deps.clock() + 30, &report)
        XCTAssertEqual(report.sent, 0)
        XCTAssertEqual(report.succeeded, 0)
        XCTAssertEqual(report.leaseLost, 1, "found recorded")
        XCTAssertEqual(bank.charged(p.bankID), 42_900, "one refund at the bank")
        XCTAssertEqual(bank.calls.filter { $0.method == "Cancel" }.count, 1)
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).refunded, 7_000)
    }

    /// S8: after an unknown outcome a refusal may only mean the money already went back.
    /// It is checked against GetState: the refund landed → succeeded; it did not → failed as
    /// before.
    func testARefusalAfterAnUnknownOutcomeIsCheckedAgainstTheBanksState() throws {
        let p = try Fixtures.pendingPayment(c, telegramID: 6215, status: "succeeded")
        let r = try refund(p.id, 3_000)
        // No answer (nothing done); then the bank refuses, though the money did go back.
        bank.cancelSteps = [.fail(.unavailable("Cancel: timeout")),
                            .refundThenFail(.rejected(code: "9", message: "Неверный статус платежа", details: nil))]
        XCTAssertEqual(try pass().retried, 1)
        try makeDue(r.id)
        let report = try pass()
        XCTAssertEqual(report.succeeded, 1)
        XCTAssertEqual(report.failed, 0)
        XCTAssertEqual(report.askedState, 2, "before the Cancel, and after its refusal")
        XCTAssertEqual(try row(r.id).string("state"), "succeeded")
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).refunded, 3_000)

        let other = try Fixtures.pendingPayment(c, telegramID: 6216, status: "succeeded")
        let refused = try refund(other.id, 3_000)
        bank.cancelSteps = [.fail(.unavailable("Cancel: timeout")), .fail(.rejected(code: "104", message: "Неверная сумма", details: nil))]
        XCTAssertEqual(try pass().retried, 1)
        try makeDue(refused.id)
        XCTAssertEqual(try pass().failed, 1)
        XCTAssertEqual(try row(refused.id).string("state"), "failed", "nothing went back: failed as before")
        XCTAssertEqual(bank.charged(other.bankID), 49_900)
    }

    /// A refusal retrying cannot fix fails the refund, counted and alerted (once per hour per
    /// refund); the payment does not move.
    func testAPermanentRefusalFailsTheRefundAndAlerts() throws {
        let p = try Fixtures.pendingPayment(c, telegramID: 6203, status: "succeeded")
        let r = try refund(p.id, 5_000)
        bank.cancelSteps = [.fail(.rejected(code: "9", message: "Неверный статус платежа", details: nil))]
        let report = try pass()
        XCTAssertEqual(report.failed, 1)
        let stored = try row(r.id)
        XCTAssertEqual(stored.string("state"), "failed")
        XCTAssertEqual(stored.bool("finished"), true)
        XCTAssertEqual(stored.string("last_error"), "T-Bank error 9: Неверный статус платежа")
        let alert = try c.query("SELECT chat_id, payload->>'text' AS text FROM telegram_deliveries WHERE kind = 'alert'")
        XCTAssertEqual(alert.count, 1)
        XCTAssertEqual(alert.first?.int("chat_id"), 1001)
        XCTAssertTrue(alert.first?.requiredString("text").contains("pinglass requeue-refund \(r.id)") == true)
        XCTAssertEqual(try c.query("SELECT dedupe_key FROM telegram_deliveries")[0].requiredString("dedupe_key").hasPrefix("alert:refund-failed:\(r.id):"), true)
        XCTAssertEqual(try Counters.value(c, "refunds.failed"), 1)
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "succeeded")
        XCTAssertEqual(try pass(), RefundSender.Report(), "a failed refund is not sent again by itself")
        XCTAssertEqual(try InvariantAudit.run(c), [])
    }

    /// The bank asked to retry, or answered in a way that cannot be recorded: retried (never
    /// failed), the same key each time; after `alertAfterAttempts` an hourly alert says so.
    func testRetryableAnswersAreRetriedAndAStuckRefundAlerts() throws {
        let p = try Fixtures.pendingPayment(c, telegramID: 6204, status: "succeeded")
        let r = try refund(p.id, 1_000)
        bank.cancelSteps = [
            .fail(.rejected(code: "9999", message: "Внутренняя ошибка системы", details: nil)),
            .fail(.unavailable("Cancel: HTTP 503")),
            .answer(BankCancel(status: "REFUNDING", originalAmount: 49_900, newAmount: 48_900)),
            .answer(BankCancel(status: "PARTIAL_REFUNDED", originalAmount: 49_900, newAmount: nil)),
            .answer(BankCancel(status: "PARTIAL_REFUNDED", originalAmount: 49_900, newAmount: 48_900, errorCode: "7")),
        ]
        let sender = try sender { $0.alertAfterAttempts = 4 }
        for attempt in 1...5 {
            let report = try sender.runOnce(now: deps.clock(), deadline: deps.clock() + 60)
            XCTAssertEqual(report.retried, 1, "attempt \(attempt)")
            XCTAssertEqual(try row(r.id).string("state"), "requested", "attempt \(attempt)")
            try makeDue(r.id)
        }
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM telegram_deliveries WHERE dedupe_key LIKE 'alert:refund-stuck:%'")[0].int("n"), 1,
                       "attempts 4 and 5 raise one alert within the hour")
        XCTAssertEqual(try sender.runOnce(now: deps.clock(), deadline: deps.clock() + 60).succeeded, 1)
        XCTAssertEqual(Set(bank.calls.compactMap(\.externalRequestID)), [r.key])
        XCTAssertEqual(bank.calls.filter { $0.method == "GetState" }.count, 5, "every retry asked first")
        XCTAssertEqual(try row(r.id).int("attempts"), 6)
    }

    /// While the bank reports a refund in progress, nothing is sent; a payment whose terminal
    /// is no longer configured waits (and says why) instead of failing, and an operator is
    /// alerted from its first attempt on (a configuration error no retry can fix).
    func testARefundInProgressOrWithoutItsTerminalWaits() throws {
        let p = try Fixtures.pendingPayment(c, telegramID: 6205, status: "succeeded")
        let r = try refund(p.id, 1_000)
        try c.execute("UPDATE refunds SET state = 'requested' WHERE id = $1", [r.id])
        bank.state = "REFUNDING"
        var report = try pass()
        XCTAssertEqual(report.askedState, 1)
        XCTAssertEqual(report.sent, 0)
        XCTAssertEqual(report.retried, 1)
        XCTAssertEqual(bank.calls.map(\.method), ["GetState"])

        let other = try Fixtures.pendingPayment(c, telegramID: 6206, terminal: TBankTerminal(key: "GoneTerminal", password: "x"),
                                                status: "succeeded")
        let waiting = try refund(other.id, 1_000)
        report = try pass()
        XCTAssertEqual(report.retried, 1)
        XCTAssertTrue(try row(waiting.id).requiredString("last_error").contains("GoneTerminal is not configured"))
        XCTAssertEqual(try row(waiting.id).string("state"), "requested")
        XCTAssertEqual(bank.calls.count, 1, "no call for it")
        let alert = try c.query("SELECT payload->>'text' AS text FROM telegram_deliveries WHERE dedupe_key LIKE $1",
                                ["alert:refund-config:\(waiting.id):%"])
        XCTAssertEqual(alert.count, 1, "alerted on the first attempt")
        XCTAssertTrue(alert.first?.requiredString("text").contains("GoneTerminal") == true)
        try makeDue(waiting.id)
        XCTAssertEqual(try pass().retried, 1)
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM telegram_deliveries WHERE dedupe_key LIKE 'alert:refund-config:%'")[0].int("n"), 1,
                       "once per hour")
    }

    /// Two senders, the first stalled past its lease: the second takes the refund over, asks
    /// the bank, sees the refund landed and records it; the first, back late, finds it
    /// recorded and records nothing.
    func testASenderThatLostItsLeaseRecordsNothing() throws {
        let p = try Fixtures.pendingPayment(c, telegramID: 6207, status: "succeeded")
        let r = try refund(p.id, 7_000)
        let slow = try sender()
        let claimed = try XCTUnwrap(try slow.claim())
        XCTAssertFalse(claimed.outcomeUnknown)
        // Its Cancel went through, then it stalled until its lease ran out.
        _ = try bank.cancel(paymentID: p.bankID, amount: 7_000, externalRequestID: r.key, receipt: nil)
        try c.execute("UPDATE refunds SET lease_until = now() - interval '1 second' WHERE id = $1", [r.id])
        let report = try pass()
        XCTAssertEqual(report.askedState, 1)
        XCTAssertEqual(report.succeeded, 1)
        var late = RefundSender.Report()
        try slow.recordSucceeded(claimed, BankCancel(status: "PARTIAL_REFUNDED", originalAmount: 49_900, newAmount: 42_900),
                                 stillCharged: 42_900, &late)
        XCTAssertEqual(late.leaseLost, 1)
        XCTAssertEqual(late.succeeded, 0)
        XCTAssertEqual(bank.charged(p.bankID), 42_900, "one refund at the bank")
        XCTAssertEqual(try row(r.id).int("attempts"), 2)
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).refunded, 7_000)
    }

    /// A refund notification may arrive before the Cancel answer (or after it): both paths
    /// move the payment through one function, upwards only.
    func testTheNotificationAndTheCancelAnswerAgree() throws {
        let p = try Fixtures.pendingPayment(c, telegramID: 6208, status: "succeeded")
        let r = try refund(p.id, 49_900)
        let webhook = try InProcessApp(config: deps.config)
        let early = try webhook.client.post("/api/payment/webhook",
                                 body: Fixtures.notification(paymentID: p.bankID, orderID: p.orderID, status: "REFUNDED", amount: 0).serialized)
        XCTAssertEqual(early.text, "OK")
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "refunded")
        XCTAssertEqual(try pass().succeeded, 1)
        XCTAssertEqual(try row(r.id).string("state"), "succeeded")
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).refunded, 49_900)
        let late = try webhook.client.post("/api/payment/webhook",
                                body: Fixtures.notification(paymentID: p.bankID, orderID: p.orderID, status: "PARTIAL_REFUNDED", amount: 100).serialized)
        XCTAssertEqual(late.text, "OK")
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "refunded", "never lowered")
        XCTAssertEqual(try InvariantAudit.run(c), [])
    }

    /// The one rule reading the bank's state after an unknown outcome (`RefundLanding`).
    func testTheBanksStateSaysLandedNotLandedOrCannotTell() {
        func judge(_ status: String, _ amount: Int?, refund: Int, back: Int = 0, open: [Int] = [], id: String = "7") -> RefundLanding {
            RefundLanding.judge(BankState(paymentID: id, status: status, amount: amount, orderID: nil), refund: refund,
                                known: .init(bankPaymentID: "7", paid: 49_900, knownBack: back, open: open))
        }
        func landed(_ original: Int, _ new: Int, _ left: Int, _ status: String = "PARTIAL_REFUNDED") -> RefundLanding {
            .landed(figures: BankCancel(status: status, originalAmount: original, newAmount: new, paymentID: "7"), stillCharged: left)
        }
        XCTAssertEqual(judge("PARTIAL_REFUNDED", 39_053, refund: 10_847), landed(49_900, 39_053, 39_053))
        XCTAssertEqual(judge("REFUNDED", 0, refund: 49_900), landed(49_900, 0, 0, "REFUNDED"))
        XCTAssertEqual(judge("REFUNDED", 49_900, refund: 49_900), landed(49_900, 0, 0, "REFUNDED"), "nothing stays after REFUNDED")
        XCTAssertEqual(judge("CONFIRMED", 49_900, refund: 10_847), .notLanded)
        // After an earlier refund of ours (10 000 back): ours of 5 000 landed, or not.
        XCTAssertEqual(judge("PARTIAL_REFUNDED", 34_900, refund: 5_000, back: 10_000), landed(39_900, 34_900, 34_900))
        XCTAssertEqual(judge("PARTIAL_REFUNDED", 39_900, refund: 5_000, back: 10_000), .notLanded)
        // Another refund of ours open too: which one landed is told apart by the amounts…
        XCTAssertEqual(judge("PARTIAL_REFUNDED", 46_900, refund: 5_000, open: [3_000]), .notLanded)
        XCTAssertEqual(judge("PARTIAL_REFUNDED", 44_900, refund: 5_000, open: [3_000]), landed(49_900, 44_900, 44_900))
        XCTAssertEqual(judge("PARTIAL_REFUNDED", 41_900, refund: 5_000, open: [3_000]), landed(49_900, 44_900, 41_900))
        // …unless they cannot be.
        guard case .undecided = judge("PARTIAL_REFUNDED", 44_900, refund: 5_000, open: [5_000]) else { return XCTFail("ambiguous") }
        for undecided in [judge("PARTIAL_REFUNDED", 39_900, refund: 5_000),                 // a refund we do not know of
                          judge("PARTIAL_REFUNDED", 49_900, refund: 5_000),                 // a refund status with nothing back
                          judge("PARTIAL_REFUNDED", nil, refund: 5_000),
                          judge("PARTIAL_REFUNDED", 0, refund: 5_000),
                          judge("REFUNDED", 0, refund: 5_000),                              // all back, but we asked for part
                          judge("CONFIRMED", 49_900, refund: 5_000, back: 10_000),          // contradicts our records
                          judge("AUTHORIZED", 49_900, refund: 5_000),
                          judge("PARTIAL_REFUNDED", 44_900, refund: 5_000, id: "8"),        // another payment's answer
                          judge("PARTIAL_REFUNDED", 44_900, refund: 5_000, open: Array(repeating: 1, count: 11))] {
            guard case .undecided = undecided else { return XCTFail("\(undecided)") }
        }
        XCTAssertEqual(judge("ASYNC_REFUNDING", 49_900, refund: 5_000), .inProgress("the bank is still processing a refund (ASYNC_REFUNDING)"))
        // Where the key holds (docs/providers.md#tbank-cancel): card acquiring only.
        func honours(_ params: [String: String]) -> Bool {
            BankState(paymentID: "7", status: "CONFIRMED", amount: 1, orderID: nil, params: params).honoursExternalRequestID
        }
        XCTAssertTrue(honours(["Route": "ACQ", "Source": "cards"]))
        XCTAssertTrue(honours(["Route": "ACQ"]))
        XCTAssertFalse(honours(["Route": "SBP", "Source": "sbp"]))
        XCTAssertFalse(honours(["Route": "ACQ", "Source": "QrSbp"]))
        XCTAssertFalse(honours([:]), "not known to be protected")
    }

    func testBackoffGrowsWithJitterUpToItsCap() throws {
        let sender = try sender()
        for attempt in 1...20 {
            let d = sender.retryDelay(attempt: attempt)
            let nominal = min(3600, 30 * pow(2, Double(attempt - 1)))
            XCTAssertTrue((0.75 * nominal...nominal).contains(d), "attempt \(attempt): \(d)")
        }
        XCTAssertThrowsError(try self.sender { $0.leaseSeconds = 20 }) { XCTAssertTrue("\($0)".contains("--lease")) }
        XCTAssertThrowsError(try self.sender { $0.retryBaseSeconds = 0 })
    }

    /// One refund may make three bank calls (GetState, Cancel, GetState after a refusal): the
    /// lease covers all three at their timeout plus 10 s, and a run window (--for) that
    /// cannot hold them is refused, naming both flags.
    func testTheLeaseAndTheRunWindowHoldThreeCallsAtTheirTimeout() throws {
        XCTAssertThrowsError(try self.sender { $0.timeout = 20; $0.leaseSeconds = 60 }) {
            XCTAssertEqual("\($0)", "--lease must be between 70s and 3600s (got 60)")
        }
        XCTAssertNoThrow(try self.sender { $0.timeout = 20; $0.leaseSeconds = 70 })
        XCTAssertNoThrow(try self.sender { $0.timeout = 2; $0.leaseSeconds = 16 })
        var config = RefundSender.Config()
        config.timeout = 20
        XCTAssertThrowsError(try config.validate(runFor: 55)) {
            XCTAssertEqual("\($0)", "--timeout times 3 (GetState, Cancel, GetState again) must fit in --for 55s, "
                           + "or no refund is ever claimed (got 20s)")
        }
        XCTAssertNoThrow(try config.validate(runFor: 60))
        XCTAssertNoThrow(try config.validate(runFor: 0), "a single pass: no --for")
        XCTAssertNoThrow(try RefundSender.Config().validate(runFor: 55), "the defaults fit the cron line's --for 55s")
    }

    func testCancelAnswersAreClassified() {
        func verdict(_ r: Result<BankCancel, Error>) -> CancelVerdict {
            CancelVerdict.classify(r, paymentID: "700", externalRequestID: "ABC", paid: 49_900)
        }
        let ok = BankCancel(status: "PARTIAL_REFUNDED", originalAmount: 49_900, newAmount: 39_900, paymentID: "700", externalRequestID: "abc")
        XCTAssertEqual(verdict(.success(ok)), .refunded(ok))
        XCTAssertEqual(verdict(.success(BankCancel(status: "REFUNDED", originalAmount: 100, newAmount: 0))),
                       .refunded(BankCancel(status: "REFUNDED", originalAmount: 100, newAmount: 0)))
        for code in ["104", "308", "7", "9", "204", "202"] {
            XCTAssertEqual(verdict(.failure(TBankError.rejected(code: code, message: "m", details: nil))), .refused(code: code, message: "m"))
        }
        let retried: [Result<BankCancel, Error>] = [
            .failure(TBankError.rejected(code: "9999", message: "m", details: nil)),
            .failure(TBankError.unavailable("timeout")),
            .failure(PostgresError.connectionLost("x")),
            .success(BankCancel(status: "REFUNDED", originalAmount: 1, newAmount: 0, errorCode: "1")),
            .success(BankCancel(status: "REFUNDED", originalAmount: 1, newAmount: 0, paymentID: "701")),
            .success(BankCancel(status: "REFUNDED", originalAmount: 1, newAmount: 0, externalRequestID: "other")),
            .success(BankCancel(status: "ASYNC_REFUNDING", originalAmount: 1, newAmount: 0)),
            .success(BankCancel(status: "CONFIRMED", originalAmount: 1, newAmount: 0)),
            .success(BankCancel(status: "PARTIAL_REFUNDED", originalAmount: 1, newAmount: nil)),
            .success(BankCancel(status: "PARTIAL_REFUNDED", originalAmount: 1, newAmount: 49_900)),
            .success(BankCancel(status: "PARTIAL_REFUNDED", originalAmount: nil, newAmount: 100)),
            .success(BankCancel(status: "PARTIAL_REFUNDED", originalAmount: 99_900, newAmount: 100)),
        ]
        for r in retried {
            guard case .retry = verdict(r) else { return XCTFail("\(r) → \(verdict(r))") }
        }
    }

    func testOperatorAmounts() {
        XCTAssertEqual(RefundAmount.parse("15050"), Money(kopecks: 15_050))
        XCTAssertEqual(RefundAmount.parse("150₽"), Money(kopecks: 15_000))
        XCTAssertEqual(RefundAmount.parse("150.50 ₽"), Money(kopecks: 15_050))
        XCTAssertEqual(RefundAmount.parse("150,5 RUB"), Money(kopecks: 15_050))
        XCTAssertEqual(RefundAmount.parse(" 0.01rub "), Money(kopecks: 1))
        XCTAssertEqual(RefundAmount.parse("12 руб"), Money(kopecks: 1_200))
        for bad in ["", "0", "-5", "12.5", "1.234₽", "₽", "abc", "1e3", "10 USD", "0₽", "99999999999"] {
            XCTAssertNil(RefundAmount.parse(bad), bad)
        }
    }
}

import Foundation
import PinGlassTestSupport
import Postgres
import XCTest
@testable import PinGlass

/// `pinglass refund` in-process against a fake bank: what it sends, how each answer is
/// classified and recorded, and that an unknown outcome is asked about before the retry.
/// (RefundSimulatorTests run the same against the simulated bank and the real binary.)
final class RefundSenderTests: XCTestCase {
    var db: TestDatabase!
    var deps: Dependencies!
    var c: Connection!
    var bank: FakeBank!

    override func setUpWithError() throws {
        db = try TestDatabase()
        c = try db.connect()
        let config = try db.config(["TBANK_TEST_TERMINAL_KEY": Fixtures.testTerminal.key, "TBANK_TEST_PASSWORD": Fixtures.testTerminal.password,
                                    "ADMIN_TELEGRAM_CHAT_ID": "1001", "PUBLIC_BASE_URL": "https://pinglass.example"])
        deps = Dependencies(config: config, database: Database(url: config.databaseURL, applicationName: "test"),
                            migrationsDirectory: try TestDatabase.migrationsDir())
        bank = FakeBank(state: "CONFIRMED", amount: 49_900)
        deps.bankFactory = bank.factory
    }
    override func tearDown() { db?.drop() }

    func sender(_ change: (inout RefundSender.Config) -> Void = { _ in }) throws -> RefundSender {
        var config = RefundSender.Config()
        change(&config)
        return try RefundSender(deps: deps, config: config)
    }

    func pass() throws -> RefundSender.Report { try sender().runOnce(now: deps.clock(), deadline: deps.clock() + 30) }

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
    /// due after a backoff; the retry asks GetState first, then sends the same key, and the
    /// bank answers the first outcome: one refund.
    func testAnUnknownOutcomeIsAskedAboutThenRetriedWithTheSameKey() throws {
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
        XCTAssertEqual(bank.calls.map(\.method), ["Cancel", "GetState", "Cancel"])
        XCTAssertEqual(Set(bank.calls.compactMap(\.externalRequestID)), [r.key])
        XCTAssertEqual(bank.charged(p.bankID), 29_900, "refunded once")
        stored = try row(r.id)
        XCTAssertEqual(stored.string("state"), "succeeded")
        XCTAssertEqual(stored.int("attempts"), 2)
        XCTAssertEqual(stored.int("bank_remaining_kopecks"), 29_900)
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).refunded, 20_000)
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
            let report = try sender.runOnce(now: deps.clock(), deadline: deps.clock() + 30)
            XCTAssertEqual(report.retried, 1, "attempt \(attempt)")
            XCTAssertEqual(try row(r.id).string("state"), "requested", "attempt \(attempt)")
            try makeDue(r.id)
        }
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM telegram_deliveries WHERE dedupe_key LIKE 'alert:refund-stuck:%'")[0].int("n"), 1,
                       "attempts 4 and 5 raise one alert within the hour")
        XCTAssertEqual(try sender.runOnce(now: deps.clock(), deadline: deps.clock() + 30).succeeded, 1)
        XCTAssertEqual(Set(bank.calls.compactMap(\.externalRequestID)), [r.key])
        XCTAssertEqual(bank.calls.filter { $0.method == "GetState" }.count, 5, "every retry asked first")
        XCTAssertEqual(try row(r.id).int("attempts"), 6)
    }

    /// While the bank reports a refund in progress, nothing is sent; a payment whose terminal
    /// is no longer configured waits (and says why) instead of failing.
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
        XCTAssertEqual(bank.calls.count, 1, "no call for it")
    }

    /// Two senders, the first stalled past its lease: the second takes the refund over, asks
    /// the bank, resends the same key and records it; the first, back late, records nothing.
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
        try slow.recordSucceeded(claimed, BankCancel(status: "PARTIAL_REFUNDED", originalAmount: 49_900, newAmount: 42_900), &late)
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
        let early = webhook.post("/api/payment/webhook",
                                 body: Fixtures.notification(paymentID: p.bankID, orderID: p.orderID, status: "REFUNDED", amount: 0).serialized)
        XCTAssertEqual(early.bodyText, "OK")
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "refunded")
        XCTAssertEqual(try pass().succeeded, 1)
        XCTAssertEqual(try row(r.id).string("state"), "succeeded")
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).refunded, 49_900)
        let late = webhook.post("/api/payment/webhook",
                                body: Fixtures.notification(paymentID: p.bankID, orderID: p.orderID, status: "PARTIAL_REFUNDED", amount: 100).serialized)
        XCTAssertEqual(late.bodyText, "OK")
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "refunded", "never lowered")
        XCTAssertEqual(try InvariantAudit.run(c), [])
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

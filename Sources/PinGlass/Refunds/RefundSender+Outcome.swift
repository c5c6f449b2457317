import Logging
import Postgres
import ProviderWire

/// Recording what a `Cancel` attempt meant. A refusal or a retry is a compare-and-set on
/// the lease token (docs/reliability.md#R5), so a sender whose refund was taken back meanwhile
/// writes nothing; the one that holds it now asks the bank and records what it says. Money
/// back is guarded by the refund's state alone: the bank confirmed it, so it is recorded
/// whoever holds the lease, once (a second recorder finds it `succeeded`).
extension RefundSender {
    /// An alert a deferral raises (`Alerts.raise`: at most one message per key per hour).
    struct Alert {
        let key: String
        let text: String
    }

    /// Money back: the refund `succeeded` with the bank's amounts (`answer`: a Cancel's
    /// answer, or the figures `RefundLanding` read from GetState) and the payment moved in
    /// ONE transaction. The payment's refunded sum is what was paid less what the bank says
    /// stays charged (`stillCharged`): the bank's own figure, never summed from
    /// notifications, and never lowered (`PaymentLedger.applyRefund`).
    func recordSucceeded(_ refund: ClaimedRefund, _ answer: BankCancel, stillCharged: Int, _ report: inout Report) throws {
        let left = answer.newAmount ?? stillCharged
        let refundedTotal = refund.paid - stillCharged
        let chatID = deps.config.adminTelegramChatID
        enum Recorded { case now(TransitionOutcome), already, conflict(String) }
        let recorded: Recorded = try deps.db().withTransaction { tx in
            // Not guarded by the lease: a sender whose lease ran out after the bank's OK still
            // records it (else the next holder would send again, and for SBP refund twice).
            guard try tx.execute("""
                UPDATE refunds SET state = 'succeeded', bank_status = $2, bank_original_kopecks = $3, bank_remaining_kopecks = $4,
                       finished_at = now(), last_error = NULL, \(LeasedQueue.release)
                WHERE id = $1 AND state = 'requested'
                """, [refund.id, answer.status, answer.originalAmount, left]) == 1 else {
                let state = try tx.query("SELECT state FROM refunds WHERE id = $1", [refund.id]).first?.string("state") ?? "missing"
                if state == "succeeded" { return .already }
                // The bank gave the money back, but the row was failed or re-queued meanwhile:
                // the payment still learns the bank's figure, and a person must look.
                if let payment = try PaymentLedger.findForNotification(tx, paymentID: refund.bankPaymentID, orderID: nil) {
                    _ = try PaymentLedger.applyRefund(tx, payment: payment, refundedTotal: refundedTotal, bankStatus: answer.status,
                                                      bankPaymentID: refund.bankPaymentID)
                }
                try Alerts.raise(tx, chatID: chatID, key: "refund-conflict:\(refund.id)", text: """
                    Refund \(refund.id) (payment \(refund.paymentID)) is \(state) here, but T-Bank confirms it gave \
                    \(Money(kopecks: refund.amount)) back (\(answer.status)). Do not re-queue it; check the payment in the bank's dashboard.
                    """)
                return .conflict(state)
            }
            guard let payment = try PaymentLedger.findForNotification(tx, paymentID: refund.bankPaymentID, orderID: nil) else {
                throw RefundError.paymentVanished(refund.paymentID)
            }
            let outcome = try PaymentLedger.applyRefund(tx, payment: payment, refundedTotal: refundedTotal, bankStatus: answer.status,
                                                        bankPaymentID: refund.bankPaymentID)
            if let original = answer.originalAmount, original - left != refund.amount {
                // The bank gave back another amount than asked: its figures stand, a person looks.
                try Counters.increment(tx, "refunds.amount_mismatch")
                try Alerts.raise(tx, chatID: chatID, key: "refund-amount:\(refund.id)", text: """
                    Refund \(refund.id) (payment \(refund.paymentID)) asked \(Money(kopecks: refund.amount)), but T-Bank's answer \
                    says \(Money(kopecks: original - left)) (OriginalAmount \(original), NewAmount \(left)). Check the payment in the bank's dashboard.
                    """)
            }
            return .now(outcome)
        }
        let meta = Trace.payment(deps, refund.paymentID,
                                 ["refund_id": "\(refund.id)", "payment_id": "\(refund.paymentID)", "bank_status": "\(answer.status)"])
        switch recorded {
        case .already:
            report.leaseLost += 1
            log.info("a refund the bank confirmed was recorded already by another sender", metadata: meta)
        case .conflict(let state):
            report.leaseLost += 1
            log.error("the bank confirmed a refund that is no longer requested here", metadata: meta.merging(["state": "\(state)"]) { $1 })
        case .now(let outcome):
            report.succeeded += 1
            if outcome == .refused {
                log.error("the bank's refund answer does not fit the payment's state", metadata: meta)
            }
            log.info("refund succeeded", metadata: meta.merging(["amount_kopecks": "\(refund.amount)",
                                                                 "refunded_total": "\(refundedTotal)"]) { $1 })
        }
    }

    /// The bank refused for good: `failed`, counted, and an alert for the operator (key
    /// `refund-failed:<id>`), in one transaction: never a silent loss.
    func recordFailed(_ refund: ClaimedRefund, code: String, message: String, _ report: inout Report) throws {
        let error = "T-Bank error \(code): \(message)"
        let chatID = deps.config.adminTelegramChatID
        let failed = try deps.db().withTransaction { tx -> Bool in
            guard try LeasedQueue.refunds.write(tx, id: refund.id, lease: refund.lease,
                                                set: "state = 'failed', finished_at = now(), last_error = left($3, 500)",
                                                [error], releasing: true) == .recorded else { return false }
            try Counters.increment(tx, "refunds.failed")
            try Alerts.raise(tx, chatID: chatID, key: "refund-failed:\(refund.id)", text: """
                Refund \(refund.id) of \(Money(kopecks: refund.amount)) for payment \(refund.paymentID) (T-Bank \(refund.bankPaymentID)) \
                failed: \(error). Fix the cause, then: pinglass requeue-refund \(refund.id)
                """)
            return true
        }
        guard failed else { report.leaseLost += 1; return }
        report.failed += 1
        log.error("refund refused by the bank", metadata: Trace.payment(deps, refund.paymentID, [
            "refund_id": "\(refund.id)", "payment_id": "\(refund.paymentID)", "code": "\(code)", "message": "\(message)"]))
    }

    /// Unknown outcome or a retryable refusal: the refund stays `requested` (its next claim
    /// asks `GetState` first), its lease released and its next try after `retryDelay`.
    /// `alert` is raised on this attempt; without one, from `alertAfterAttempts` on, an
    /// alert per hour says it is stuck.
    func retryLater(_ refund: ClaimedRefund, why: String, alert: Alert? = nil, _ report: inout Report) throws {
        let stuck = Alert(key: "refund-stuck:\(refund.id)", text: """
            Refund \(refund.id) of \(Money(kopecks: refund.amount)) for payment \(refund.paymentID) is still unresolved after \
            \(refund.attempts) attempts: \(why). It keeps being retried with the same ExternalRequestId.
            """)
        let delay = retryDelay(attempt: refund.attempts)
        guard try postpone(refund, why: why, delay: delay, alert: alert ?? (refund.attempts >= config.alertAfterAttempts ? stuck : nil),
                           &report) else { return }
        report.retried += 1
        log.warning("refund outcome unknown or retryable; retrying later",
                    metadata: Trace.payment(deps, refund.paymentID, [
                        "refund_id": "\(refund.id)", "attempt": "\(refund.attempts)", "retry_in_s": "\(Int(delay))", "why": "\(why)"]))
    }

    /// An unknown outcome the bank's state cannot settle, for a payment where a second Cancel
    /// could be a second refund (the key is not honoured, or a refusal followed the unknown
    /// outcome): nothing is sent. The refund stays `requested` (its share of the payment
    /// stays reserved), is asked about again after about `retryCapSeconds`, and an alert per
    /// refund asks a person to check the bank's dashboard, hourly while it lasts.
    func holdUnresolved(_ refund: ClaimedRefund, why: String, _ report: inout Report) throws {
        let delay = retryDelay(attempt: .max)
        guard try postpone(refund, why: "unresolved: \(why)", delay: delay, alert: Alert(key: "refund-unresolved:\(refund.id)", text: """
            Refund \(refund.id) of \(Money(kopecks: refund.amount)) for payment \(refund.paymentID) (T-Bank \(refund.bankPaymentID)): \
            its last Cancel's outcome is unknown and T-Bank's state does not tell whether it went through (\(why)). \
            It is NOT sent again (a second Cancel could refund twice) and is checked again hourly. Check the payment in the bank's dashboard, \
            then: pinglass resolve-refund \(refund.id) --landed (or --not-landed to send it again) --reason "…"
            """), &report) else { return }
        report.unresolved += 1
        log.error("refund outcome unknown and not decidable from the bank's state; not sent again",
                  metadata: Trace.payment(deps, refund.paymentID, [
                      "refund_id": "\(refund.id)", "attempt": "\(refund.attempts)", "retry_in_s": "\(Int(delay))", "why": "\(why)"]))
    }

    /// A refund whose Cancel outcome is unknown, on a payment where the bank ignores
    /// ExternalRequestId, and whose GetState shows no refund: within `settleSeconds` of that
    /// Cancel the state may only lag, so nothing is sent and the bank is asked again (by the
    /// end of the period at the latest); after it, the refund is held for an operator.
    func settleOrHold(_ refund: ClaimedRefund, sentAgo: Double, _ report: inout Report) throws {
        let left = config.settleSeconds - sentAgo
        guard left > 0 else {
            try holdUnresolved(refund, why: """
                GetState still shows no refund \(Int(sentAgo / 60)) min after a Cancel whose outcome is unknown, and the bank \
                is not known to honour ExternalRequestId for this payment (SBP, or no card route in GetState)
                """, &report)
            return
        }
        let delay = max(1, min(retryDelay(attempt: refund.attempts), left + 1))
        let why = "settling: GetState shows no refund \(Int(sentAgo)) s after a Cancel whose outcome is unknown; the key is not "
            + "honoured for this payment, so nothing is sent; asked again for \(Int(left)) s more"
        guard try postpone(refund, why: why, delay: delay, alert: nil, &report) else { return }
        report.settling += 1
        log.warning("refund outcome unknown and the bank's state may lag; not sent again",
                    metadata: ["refund_id": "\(refund.id)", "attempt": "\(refund.attempts)", "retry_in_s": "\(Int(delay))",
                               "settle_left_s": "\(Int(left))"])
    }

    /// Right before a Cancel: the row records that one goes out now (compare-and-set on the
    /// lease token; false: the lease was taken back, nothing is sent).
    func markCancelSent(_ refund: ClaimedRefund) throws -> Bool {
        try LeasedQueue.refunds.write(deps.db(), id: refund.id, lease: refund.lease, set: "cancel_sent_at = now()",
                                      releasing: false) == .recorded
    }

    /// The refund stays `requested`, its lease released, due again in `delay` seconds, with
    /// `alert` raised in the same transaction: compare-and-set on the lease token (false:
    /// the lease was taken back, nothing written, counted in `leaseLost`).
    func postpone(_ refund: ClaimedRefund, why: String, delay: Double, alert: Alert?, _ report: inout Report) throws -> Bool {
        let chatID = deps.config.adminTelegramChatID
        let outcome = try deps.db().withTransaction { tx -> LeasedQueue.Outcome in
            guard try LeasedQueue.refunds.write(tx, id: refund.id, lease: refund.lease,
                                                set: "run_at = now() + make_interval(secs => $3::float8), last_error = left($4, 500)",
                                                [delay, why], releasing: true) == .recorded else { return .lost }
            if let alert { try Alerts.raise(tx, chatID: chatID, key: alert.key, text: alert.text) }
            return .recorded
        }
        if outcome == .lost { report.leaseLost += 1 }
        return outcome == .recorded
    }

    /// The backoff schedule of refunds: capped exponential with jitter and a non-zero base
    /// (docs/reliability.md#R7), the shared `Backoff` with this duty's base and cap.
    func retryDelay(attempt: Int) -> Double {
        Backoff.seconds(attempt: attempt, base: config.retryBaseSeconds, cap: config.retryCapSeconds)
    }

    /// `GetState` for a refund whose outcome is unknown and what it means for it
    /// (`RefundLanding`); nil when the bank could not be asked (the refund is deferred).
    func askBank(_ bank: any BankAPI, _ refund: ClaimedRefund, _ report: inout Report) throws -> (BankState, RefundLanding)? {
        report.askedState += 1
        let state: BankState
        do { state = try bank.getState(paymentID: refund.bankPaymentID) } catch let e as ProviderCallInTransaction {
            throw e
        } catch {
            try retryLater(refund, why: "GetState before retrying failed: \(error)", &report)
            return nil
        }
        // Read after the bank answered: every refund that could have landed by then is
        // `requested` or finished here (its intent committed before its call).
        let landing = RefundLanding.judge(state, refund: refund.amount, known: try known(refund))
        log.info("asked the bank about a refund whose outcome was unknown",
                 metadata: Trace.payment(deps, refund.paymentID, [
                     "refund_id": "\(refund.id)", "payment_id": "\(refund.paymentID)", "attempt": "\(refund.attempts)",
                     "bank_status": "\(state.status)", "landing": "\(landing.summary)"]))
        return (state, landing)
    }

    /// What our records say about the refund's payment (`RefundResolution.known`).
    func known(_ refund: ClaimedRefund) throws -> RefundLanding.Known {
        try RefundResolution.known(deps.db(), refundID: refund.id, paymentID: refund.paymentID, bankPaymentID: refund.bankPaymentID,
                                   paid: refund.paid)
    }
}

/// A refund that cannot be recorded as the bank answered: the pass fails loudly.
public enum RefundError: Error, CustomStringConvertible {
    case paymentVanished(Int)
    public var description: String {
        switch self {
        case .paymentVanished(let id): return "payment \(id) of a refund is gone or lost its T-Bank id"
        }
    }
}

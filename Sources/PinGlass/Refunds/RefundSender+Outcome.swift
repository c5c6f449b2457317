import Logging
import Postgres

/// Recording what a `Cancel` attempt meant: each a compare-and-set on the lease token
/// (reliability rule 5), so a sender whose refund was taken back meanwhile writes nothing;
/// the one that holds it now sends the same ExternalRequestId and records the same answer.
extension RefundSender {
    /// Money back: the refund `succeeded` with the bank's amounts and the payment moved by
    /// them, in ONE transaction. The refunded sum is what the bank says stays charged
    /// (`NewAmount`) taken from what was paid: the bank's own figure, never summed from
    /// notifications, and never lowered (`PaymentLedger.applyRefund`).
    func recordSucceeded(_ refund: ClaimedRefund, _ answer: BankCancel, _ report: inout Report) throws {
        let left = answer.newAmount ?? 0
        let refundedTotal = refund.paid - left
        let chatID = deps.config.adminTelegramChatID
        let recorded: TransitionOutcome? = try deps.db().withTransaction { tx in
            guard try tx.execute("""
                UPDATE refunds SET state = 'succeeded', bank_status = $3, bank_original_kopecks = $4, bank_remaining_kopecks = $5,
                       finished_at = now(), last_error = NULL, lease_token = NULL, lease_until = NULL
                WHERE id = $1 AND state = 'requested' AND lease_token = $2::uuid
                """, [refund.id, refund.lease, answer.status, answer.originalAmount, left]) == 1 else { return nil }
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
            return outcome
        }
        guard let outcome = recorded else {
            report.leaseLost += 1
            log.warning("a refund the bank confirmed lost its lease before it was recorded; its new holder records it",
                        metadata: ["refund_id": "\(refund.id)"])
            return
        }
        report.succeeded += 1
        if outcome == .refused {
            log.error("the bank's refund answer does not fit the payment's state",
                      metadata: ["refund_id": "\(refund.id)", "payment_id": "\(refund.paymentID)", "bank_status": "\(answer.status)"])
        }
        log.info("refund succeeded", metadata: ["refund_id": "\(refund.id)", "payment_id": "\(refund.paymentID)",
                                                "amount_kopecks": "\(refund.amount)", "refunded_total": "\(refundedTotal)",
                                                "bank_status": "\(answer.status)"])
    }

    /// The bank refused for good: `failed`, counted, and an alert for the operator (key
    /// `refund-failed:<id>`), in one transaction: never a silent loss.
    func recordFailed(_ refund: ClaimedRefund, code: String, message: String, _ report: inout Report) throws {
        let error = "T-Bank error \(code): \(message)"
        let chatID = deps.config.adminTelegramChatID
        let failed = try deps.db().withTransaction { tx -> Bool in
            guard try tx.execute("""
                UPDATE refunds SET state = 'failed', finished_at = now(), last_error = left($3, 500), lease_token = NULL, lease_until = NULL
                WHERE id = $1 AND state = 'requested' AND lease_token = $2::uuid
                """, [refund.id, refund.lease, error]) == 1 else { return false }
            try Counters.increment(tx, "refunds.failed")
            try Alerts.raise(tx, chatID: chatID, key: "refund-failed:\(refund.id)", text: """
                Refund \(refund.id) of \(Money(kopecks: refund.amount)) for payment \(refund.paymentID) (T-Bank \(refund.bankPaymentID)) \
                failed: \(error). Fix the cause, then: pinglass requeue-refund \(refund.id)
                """)
            return true
        }
        guard failed else { report.leaseLost += 1; return }
        report.failed += 1
        log.error("refund refused by the bank", metadata: ["refund_id": "\(refund.id)", "payment_id": "\(refund.paymentID)",
                                                            "code": "\(code)", "message": "\(message)"])
    }

    /// Unknown outcome or a retryable refusal: the refund stays `requested` (its next claim
    /// asks `GetState` first), its lease released and its next try after `retryDelay`. From
    /// `alertAfterAttempts` on, an alert per hour says it is stuck.
    func retryLater(_ refund: ClaimedRefund, why: String, _ report: inout Report) throws {
        let delay = retryDelay(attempt: refund.attempts)
        let chatID = deps.config.adminTelegramChatID
        let deferred = try deps.db().withTransaction { tx -> Bool in
            guard try tx.execute("""
                UPDATE refunds SET run_at = now() + make_interval(secs => $3::float8), last_error = left($4, 500),
                       lease_token = NULL, lease_until = NULL
                WHERE id = $1 AND state = 'requested' AND lease_token = $2::uuid
                """, [refund.id, refund.lease, delay, why]) == 1 else { return false }
            if refund.attempts >= config.alertAfterAttempts {
                try Alerts.raise(tx, chatID: chatID, key: "refund-stuck:\(refund.id)", text: """
                    Refund \(refund.id) of \(Money(kopecks: refund.amount)) for payment \(refund.paymentID) is still unresolved after \
                    \(refund.attempts) attempts: \(why). It keeps being retried with the same ExternalRequestId.
                    """)
            }
            return true
        }
        guard deferred else { report.leaseLost += 1; return }
        report.retried += 1
        log.warning("refund outcome unknown or retryable; retrying later",
                    metadata: ["refund_id": "\(refund.id)", "attempt": "\(refund.attempts)", "retry_in_s": "\(Int(delay))", "why": "\(why)"])
    }

    /// The backoff schedule of refunds: capped exponential with jitter and a non-zero base
    /// (reliability rule 7), the shared `Backoff` with this duty's base and cap.
    func retryDelay(attempt: Int) -> Double {
        Backoff.seconds(attempt: attempt, base: config.retryBaseSeconds, cap: config.retryCapSeconds)
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

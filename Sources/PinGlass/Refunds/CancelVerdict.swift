import ProviderWire

/// What one T-Bank `Cancel` attempt means for a refund row: the one place its answers and
/// errors are classified (docs/reliability.md#R7: permanent versus transient).
///
/// ```swift
/// let verdict = CancelVerdict.classify(Result { try bank.cancel(…) }, paymentID: "700", externalRequestID: id, paid: 49_900)
/// if case .refunded(let answer) = verdict { /* record answer.newAmount */ }
/// ```
public enum CancelVerdict: Equatable, Sendable {
    /// The bank gave money back (`Success: true`, `ErrorCode` "0", a refund or reversal
    /// status, usable `OriginalAmount` and `NewAmount`): record it with the bank's own amounts.
    case refunded(BankCancel)
    /// The bank answered `Success: false` for a reason a retry cannot fix (wrong amount,
    /// payment not refundable or not found, receipt refused, bad Token or terminal): the
    /// refund fails and an operator is alerted. After an earlier unknown outcome the sender
    /// first checks the bank's state (`RefundLanding`): the refusal may only mean that
    /// money already went back.
    case refused(code: String, message: String)
    /// No usable answer (timeout, network, HTTP error, unparsable body), a bank error that
    /// asks for a retry, an operation still in progress, or an answer that contradicts
    /// itself: the refund may or may not have happened, so it stays `requested`; its next
    /// attempt asks `GetState` first and sends again only when `RefundLanding` says so or
    /// the same `ExternalRequestId` is known to return the first outcome.
    case retry(String)

    /// Statuses after a Cancel that gave money back (docs/providers.md#tbank-cancel: CONFIRMED → PARTIAL_REFUNDED /
    /// REFUNDED; AUTHORIZED → PARTIAL_REVERSED / REVERSED).
    public static let moneyBackStatuses: Set<String> = ["REFUNDED", "PARTIAL_REFUNDED", "REVERSED", "PARTIAL_REVERSED"]
    /// Statuses of an operation the bank has not finished (docs/providers.md#tbank-statuses, SBP's ASYNC_REFUNDING):
    /// asked again later, never sent anew meanwhile.
    public static let inProgressStatuses: Set<String> = ["REFUNDING", "ASYNC_REFUNDING", "REVERSING"]
    /// `Success: false` codes that ask for a retry: 9999, the bank's internal error. Every
    /// other refusal is the bank's decision about this request (104 wrong amount, 308
    /// receipt, 7 unknown payment, 9 status does not allow it, 202/204/205 terminal or Token;
    /// docs/providers.md#tbank-cancel and the simulator): failed, with an alert, and an operator
    /// re-queues it once the cause is fixed. (The bank's full code table is not published
    /// in a form we have; an unlisted code therefore reaches a person instead of looping.)
    public static let retryableCodes: Set<String> = ["9999"]

    public static func classify(_ result: Result<BankCancel, Error>, paymentID: String, externalRequestID: String,
                                paid: Int) -> CancelVerdict {
        let answer: BankCancel
        switch result {
        case .failure(TBankError.rejected(let code, let message, let details)):
            let text = message + (details.map { " (\($0))" } ?? "")
            return retryableCodes.contains(code) ? .retry("T-Bank error \(code): \(text)") : .refused(code: code, message: text)
        case .failure(let error):
            return .retry("\(error)")
        case .success(let a):
            answer = a
        }
        guard answer.errorCode == "0" else { return .retry("Success true but ErrorCode \(answer.errorCode)") }
        if let echoed = answer.paymentID, echoed != paymentID { return .retry("the answer names PaymentId \(echoed)") }
        if let echoed = answer.externalRequestID, echoed.lowercased() != externalRequestID.lowercased() {
            return .retry("the answer names ExternalRequestId \(echoed)")
        }
        if inProgressStatuses.contains(answer.status) { return .retry("the bank is still processing (\(answer.status))") }
        guard moneyBackStatuses.contains(answer.status) else { return .retry("unexpected status \(answer.status.prefix(40))") }
        // NewAmount is what stays charged; OriginalAmount what was charged before this Cancel.
        guard let left = answer.newAmount, let before = answer.originalAmount, left >= 0, left < before, before <= paid else {
            return .retry("\(answer.status) without usable amounts (OriginalAmount \(answer.originalAmount.map(String.init) ?? "none"), "
                          + "NewAmount \(answer.newAmount.map(String.init) ?? "none"))")
        }
        return .refunded(answer)
    }
}

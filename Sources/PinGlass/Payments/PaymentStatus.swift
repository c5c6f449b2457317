/// Our payment states (forward only; see architecture.md "State machines").
public enum PaymentStatus: String, Sendable, CaseIterable {
    case new, initFailed = "init_failed", pending, succeeded, rejected, canceled, expired
    case partiallyRefunded = "partially_refunded", refunded

    /// Paid: the money reached us (possibly partly refunded since).
    public var isPaid: Bool { [.succeeded, .partiallyRefunded, .refunded].contains(self) }
}

/// What one T-Bank status means for a payment: the state it moves to and the states it
/// may move from. The one place this rule lives: the webhook, the status poll and the
/// reconciler all apply it.
public struct BankTransition: Equatable, Sendable {
    public let target: PaymentStatus
    public let from: [PaymentStatus]

    /// nil: a status we record but never act on (NEW, FORM_SHOWED, 3DS_CHECKING, RECEIPT, …).
    public static func forBankStatus(_ status: String) -> BankTransition? {
        switch status {
        // One-stage payments report AUTHORIZED then CONFIRMED, in any order. A late
        // CONFIRMED revives an expired payment: the bank is authoritative.
        case "AUTHORIZED", "CONFIRMED":
            return BankTransition(target: .succeeded, from: [.new, .pending, .expired])
        case "REJECTED", "AUTH_FAIL":
            return BankTransition(target: .rejected, from: [.new, .pending])
        case "CANCELED", "REVERSED", "PARTIAL_REVERSED":
            return BankTransition(target: .canceled, from: [.new, .pending])
        case "DEADLINE_EXPIRED", "ATTEMPTS_EXPIRED":
            return BankTransition(target: .expired, from: [.new, .pending])
        // A refund implies the payment was confirmed, so it also applies when it overtakes
        // CONFIRMED: any order of the same notifications ends in the same state. A later
        // AUTHORIZED/CONFIRMED can never move a refunded payment back.
        case "PARTIAL_REFUNDED":
            return BankTransition(target: .partiallyRefunded, from: [.new, .pending, .expired, .succeeded, .partiallyRefunded])
        case "REFUNDED":
            return BankTransition(target: .refunded, from: [.new, .pending, .expired, .succeeded, .partiallyRefunded])
        default:
            return nil
        }
    }

    public var isRefund: Bool { target == .partiallyRefunded || target == .refunded }
}

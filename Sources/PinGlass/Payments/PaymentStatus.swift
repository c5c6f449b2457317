/// Our payment states (forward only; see docs/architecture.md#state-machines).
///
/// `authorized` is a hold on the card, not money yet: only `succeeded` (the bank's
/// CONFIRMED) can be consumed by a generation.
public enum PaymentStatus: String, Sendable, CaseIterable {
    case new, initFailed = "init_failed", pending, authorized, succeeded, rejected, canceled, expired
    case partiallyRefunded = "partially_refunded", refunded

    /// Money is held for us: what `paid` means in the API. A refunded payment is not paid.
    public var holdsMoney: Bool { self == .succeeded || self == .partiallyRefunded }

    /// The bank may still move it; the status endpoint and the reconciler ask when it is late.
    public var awaitsBank: Bool { self == .new || self == .pending || self == .authorized }

    /// The states a payment passes through before this one in a normal life (new → pending
    /// → authorized → succeeded → partially_refunded → refunded; a hold released → canceled;
    /// rejected or expired before paying). A notification for one of them arriving late is
    /// a normal reordering.
    var earlierStates: Set<PaymentStatus> {
        switch self {
        case .new: return []
        case .initFailed, .pending: return [.new]
        case .authorized, .rejected, .expired: return [.new, .pending]
        case .succeeded, .canceled: return [.new, .pending, .authorized]
        case .partiallyRefunded: return [.new, .pending, .authorized, .succeeded]
        case .refunded: return [.new, .pending, .authorized, .succeeded, .partiallyRefunded]
        }
    }

    /// A hold or money is (or was) involved.
    var involvesMoney: Bool { [.authorized, .succeeded, .partiallyRefunded, .refunded].contains(self) }

    /// Reads a stored status; an unknown one is an error, never a guess.
    public init(stored: String) throws {
        guard let s = PaymentStatus(rawValue: stored) else { throw StoredValueError(column: "payments.status", value: stored) }
        self = s
    }
}

/// A value read from the database that this code does not know (a newer schema, a manual
/// edit): reported, never replaced by a default.
public struct StoredValueError: Error, CustomStringConvertible {
    public let column: String
    public let value: String
    public var description: String { "unknown value '\(value.prefix(40))' in \(column)" }
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
        // A hold. A late AUTHORIZED never moves a confirmed, refunded or canceled payment back.
        // The bank is authoritative: a payment we expired while the payer was still paying
        // is revived.
        case "AUTHORIZED":
            return BankTransition(target: .authorized, from: [.new, .pending, .expired])
        case "CONFIRMED":
            return BankTransition(target: .succeeded, from: [.new, .pending, .authorized, .expired])
        case "REJECTED", "AUTH_FAIL":
            return BankTransition(target: .rejected, from: [.new, .pending])
        // The hold was released before the money moved.
        case "CANCELED", "REVERSED", "PARTIAL_REVERSED":
            return BankTransition(target: .canceled, from: [.new, .pending, .authorized])
        case "DEADLINE_EXPIRED", "ATTEMPTS_EXPIRED":
            return BankTransition(target: .expired, from: [.new, .pending])
        // A refund implies the payment was confirmed, so it also applies when it overtakes
        // AUTHORIZED/CONFIRMED: any order of the same notifications ends in the same state.
        case "PARTIAL_REFUNDED":
            return BankTransition(target: .partiallyRefunded,
                                  from: [.new, .pending, .authorized, .expired, .succeeded, .partiallyRefunded])
        case "REFUNDED":
            return BankTransition(target: .refunded, from: [.new, .pending, .authorized, .expired, .succeeded, .partiallyRefunded])
        default:
            return nil
        }
    }

    public var isRefund: Bool { target == .partiallyRefunded || target == .refunded }
    /// Moves money our way or back: needs `Success: true` and `ErrorCode "0"` in a notification.
    public var isPositive: Bool { target == .authorized || target == .succeeded || isRefund }

    /// Not applied to a payment in `current`: a normal late arrival (an earlier step of the
    /// payment's life) or, when money is involved, a refusal someone must look at (CONFIRMED
    /// after `rejected`, REVERSED after `succeeded`, …).
    public func isAnomalous(from current: PaymentStatus) -> Bool {
        if current == target || current.earlierStates.contains(target) { return false }
        return target.involvesMoney || current.involvesMoney
    }
}

import Postgres

/// Refunds an operator asks for (`pinglass manual-refund`, later the admin UI) and failed
/// refunds an operator sends again (`pinglass requeue-refund`). They go through the same
/// rows and rules as automatic ones: the row is what `pinglass refund` sends, the database
/// trigger (`refunds_guard`, migration 0009) refuses more than the payment can still give
/// back, counting refunds in flight, and each action leaves an `admin_audit` row and wakes
/// the sender (`NOTIFY refund`) in the same transaction.
///
/// ```swift
/// let queued = try ManualRefunds.request(db, payment: "7000000001", amount: Money(kopecks: 15_000),
///                                        reason: "portraits were blurry", actor: "cli:anna")
/// print(queued.refundID, queued.headroomAfter)
/// try ManualRefunds.requeue(db, refundID: 17, actor: "cli:anna")
/// ```
public enum ManualRefunds {
    /// A refund row written for an operator.
    public struct Queued: Equatable, Sendable {
        public let refundID: Int
        public let externalRequestID: String
        public let paymentID: Int
        public let orderID: String
        public let bankPaymentID: String?
        public let amount: Money
        /// What the payment took in, what the bank reports given back, and what our other
        /// refunds still in flight take (before this one).
        public let paid: Money
        public let refundedAtBank: Money
        public let inFlight: Money
        /// What can still be refunded once this one is through.
        public let headroomAfter: Money
    }

    /// Why an operator's refund action was refused: one line for the operator.
    public enum Refusal: Error, Equatable, CustomStringConvertible {
        case paymentNotFound(String)
        case notRefundable(paymentID: Int, status: String)
        case exceedsPayment(String)
        case refundNotFound(Int)
        case notFailed(refundID: Int, state: String)
        case badInput(String)

        public var description: String {
            switch self {
            case .paymentNotFound(let ref): return "no payment has T-Bank PaymentId or order id \"\(ref.prefix(64))\""
            case .notRefundable(let id, let status):
                return "payment \(id) is \(status): only a succeeded or partially refunded payment can be refunded"
            case .exceedsPayment(let why): return "refused by the database: \(why)"
            case .refundNotFound(let id): return "no refund has id \(id)"
            case .notFailed(let id, let state): return "refund \(id) is \(state): only a failed refund can be re-queued"
            case .badInput(let why): return why
            }
        }
    }

    /// The longest reason kept (it is shown to operators and in the audit trail).
    public static let maxReasonLength = 500

    /// Writes a `pending` refund of `amount` for the payment whose T-Bank PaymentId or our
    /// order id is `payment`, requested by `actor`, with its audit row, in one transaction.
    public static func request(_ db: Connection, payment reference: String, amount: Money, reason: String,
                               actor: String) throws -> Queued {
        let reason = reason.trimmingSpaces()
        guard !reason.isEmpty else { throw Refusal.badInput("a reason is required (it goes to the audit trail)") }
        guard reason.count <= maxReasonLength else { throw Refusal.badInput("the reason is longer than \(maxReasonLength) characters") }
        guard amount.kopecks > 0 else { throw Refusal.badInput("the amount must be positive") }
        return try refusingOverRefund {
            try db.withTransaction { tx in
                // Locked first: the trigger takes the same lock, and the figures printed are the ones checked.
                guard let p = try tx.query("""
                    SELECT id, order_id, tbank_payment_id, status, amount_kopecks, refunded_kopecks,
                           (SELECT coalesce(sum(amount_kopecks), 0) FROM refunds r
                            WHERE r.payment_id = payments.id AND r.state IN ('pending', 'requested'))::int AS in_flight
                    FROM payments WHERE tbank_payment_id = $1 OR order_id = $1
                    ORDER BY (tbank_payment_id IS NOT DISTINCT FROM $1) DESC LIMIT 1 FOR UPDATE
                    """, [reference]).first else { throw Refusal.paymentNotFound(reference) }
                let paymentID = p.requiredInt("id")
                let status = p.requiredString("status")
                guard status == PaymentStatus.succeeded.rawValue || status == PaymentStatus.partiallyRefunded.rawValue else {
                    throw Refusal.notRefundable(paymentID: paymentID, status: status)
                }
                let row = try tx.query("""
                    INSERT INTO refunds (payment_id, amount_kopecks, reason, requested_by) VALUES ($1, $2, $3, $4)
                    RETURNING id, external_request_id::text AS erid, refund_headroom(payment_id) AS headroom
                    """, [paymentID, amount.kopecks, reason, actor])[0]
                let refundID = row.requiredInt("id")
                try Audit.record(tx, actor: actor, action: "refund.manual", target: "refund:\(refundID)",
                                 details: ["paymentId": .int(paymentID), "amountKopecks": .int(amount.kopecks), "reason": .string(reason)])
                try tx.execute("SELECT pg_notify('refund', $1)", [String(refundID)])
                return Queued(refundID: refundID, externalRequestID: row.requiredString("erid"), paymentID: paymentID,
                              orderID: p.requiredString("order_id"), bankPaymentID: p.string("tbank_payment_id"), amount: amount,
                              paid: Money(kopecks: p.requiredInt("amount_kopecks")),
                              refundedAtBank: Money(kopecks: p.requiredInt("refunded_kopecks")),
                              inFlight: Money(kopecks: p.requiredInt("in_flight")),
                              headroomAfter: Money(kopecks: row.int("headroom") ?? 0))
            }
        }
    }

    /// A failed refund back to `pending` (guarded: only from `failed`) after the operator
    /// fixed its cause; the trigger checks again that it still fits the payment. Returns the
    /// error it failed with.
    @discardableResult
    public static func requeue(_ db: Connection, refundID: Int, actor: String) throws -> String? {
        try refusingOverRefund {
            try db.withTransaction { tx in
                guard let r = try tx.query("""
                    SELECT r.state, r.last_error, r.payment_id, p.status AS payment_status
                    FROM refunds r JOIN payments p ON p.id = r.payment_id WHERE r.id = $1 FOR UPDATE OF r
                    """, [refundID]).first else { throw Refusal.refundNotFound(refundID) }
                let paymentStatus = r.requiredString("payment_status")
                guard paymentStatus == PaymentStatus.succeeded.rawValue || paymentStatus == PaymentStatus.partiallyRefunded.rawValue else {
                    throw Refusal.notRefundable(paymentID: r.requiredInt("payment_id"), status: paymentStatus)
                }
                guard try tx.execute("""
                    UPDATE refunds SET state = 'pending', finished_at = NULL, run_at = now(), last_error = NULL,
                           lease_token = NULL, lease_until = NULL
                    WHERE id = $1 AND state = 'failed'
                    """, [refundID]) == 1 else { throw Refusal.notFailed(refundID: refundID, state: r.requiredString("state")) }
                let lastError = r.string("last_error")
                try Audit.record(tx, actor: actor, action: "refund.requeue", target: "refund:\(refundID)",
                                 details: ["previousError": lastError.map { .string($0) } ?? .null])
                try tx.execute("SELECT pg_notify('refund', $1)", [String(refundID)])
                return lastError
            }
        }
    }

    /// The trigger's refusal (SQLSTATE 23514 from `refunds_guard`) as the operator's message.
    static func refusingOverRefund<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch PostgresError.server(let state, let message) where state == "23514" {
            throw Refusal.exceedsPayment(message)
        }
    }
}

/// An amount an operator types: a whole number of kopecks (`15000`), or roubles with a `₽`,
/// `rub` or `руб` suffix and at most two decimals (`150₽`, `150.50 rub`, `150,5 руб`).
///
/// ```swift
/// RefundAmount.parse("150.50 ₽")   // Money(kopecks: 15_050)
/// RefundAmount.parse("15050")      // Money(kopecks: 15_050)
/// ```
public enum RefundAmount {
    public static let suffixes = ["₽", "rub", "руб"]

    public static func parse(_ text: String) -> Money? {
        var s = text.trimmingSpaces().lowercased()
        var roubles = false
        for suffix in suffixes where s.hasSuffix(suffix) {
            s = String(s.dropLast(suffix.count)).trimmingSpaces()
            roubles = true
            break
        }
        guard !s.isEmpty, s.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == "." || $0 == ",") }) else { return nil }
        let parts = s.split(separator: s.contains(",") ? "," : ".", omittingEmptySubsequences: false)
        guard parts.count <= (roubles ? 2 : 1), let whole = Int(parts[0]), parts[0].count <= 9 else { return nil }
        guard roubles else { return whole > 0 && whole <= Int(Int32.max) ? Money(kopecks: whole) : nil }
        var kopecks = whole * 100
        if parts.count == 2 {
            let fraction = parts[1]
            guard (1...2).contains(fraction.count), let f = Int(fraction), !fraction.contains(".") else { return nil }
            kopecks += fraction.count == 1 ? f * 10 : f
        }
        return kopecks > 0 && kopecks <= Int(Int32.max) ? Money(kopecks: kopecks) : nil
    }
}

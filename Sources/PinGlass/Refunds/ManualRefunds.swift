import Postgres
import Platform

/// Refunds an operator asks for (`pinglass manual-refund`, later the admin UI) and failed
/// refunds an operator sends again (`pinglass requeue-refund`). They go through the same
/// rows and rules as automatic ones: the row is what `pinglass refund` sends, the database
/// trigger (`refunds_guard`, migration 0009) refuses more than the payment can still give
/// back, counting refunds in flight, and each action leaves an `admin_audit` row and wakes
/// the sender (`NOTIFY refund`) in the same transaction.
///
/// Guards against an operator's mistakes: a reason is required; the operator's `ticket` is
/// the idempotency key (one refund per ticket and payment, a unique index: running the
/// same command again after a dropped session returns the refund made the first time,
/// `repeated`, and writes nothing); and a payment a generation consumed, or one that has
/// any refund already, needs `force` (`PaymentView` shows the operator what is there).
///
/// ```swift
/// let queued = try ManualRefunds.request(db, payment: "7000000001", amount: Money(kopecks: 15_000),
///                                        reason: "portraits were blurry", ticket: "412", actor: "cli:anna")
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
        /// The ticket had made this refund already: nothing new was written.
        public var repeated = false
    }

    /// What an operator sees before refunding: the payment, its generation job (whether the
    /// payment was consumed, and how far the job's photos were delivered) and its refunds.
    public struct PaymentView: Equatable, Sendable {
        public let paymentID: Int
        public let orderID: String
        public let bankPaymentID: String?
        public let status: String
        public let paid: Money
        public let refundedAtBank: Money
        /// The job that consumed the payment: id, status, photos made of total.
        public let job: String?
        public let consumed: Bool
        /// The job's Telegram deliveries: sent of all (nil without a job).
        public let delivered: (sent: Int, total: Int)?
        /// Every refund of the payment: "id amount state (ticket)".
        public let refunds: [String]

        public static func == (a: Self, b: Self) -> Bool { a.lines == b.lines }

        public var lines: [String] {
            let delivery = delivered.map { d in d.total == 0 ? "nothing to deliver yet" : d.sent == d.total ? "delivered (\(d.sent) of \(d.total) messages sent)"
                : "not fully delivered (\(d.sent) of \(d.total) messages sent)" }
            return ["payment \(paymentID) (order \(orderID), T-Bank \(bankPaymentID ?? "-")): \(status), paid \(paid), refunded at the bank \(refundedAtBank)",
                    consumed ? "  consumed by generation job \(job ?? "?"); \(delivery ?? "")" : "  not consumed by a generation",
                    refunds.isEmpty ? "  no refunds yet" : "  refunds: " + refunds.joined(separator: "; ")]
        }
    }

    /// Why an operator's refund action was refused: one line for the operator.
    public enum Refusal: Error, Equatable, CustomStringConvertible {
        case paymentNotFound(String)
        case notRefundable(paymentID: Int, status: String)
        case exceedsPayment(String)
        case refundNotFound(Int)
        case notFailed(refundID: Int, state: String)
        case badInput(String)
        case needsForce(String)
        case ticketReused(String)

        public var description: String {
            switch self {
            case .paymentNotFound(let ref): return "no payment has T-Bank PaymentId or order id \"\(ref.prefix(64))\""
            case .notRefundable(let id, let status):
                return "payment \(id) is \(status): only a succeeded or partially refunded payment can be refunded"
            case .exceedsPayment(let why): return "refused by the database: \(why)"
            case .refundNotFound(let id): return "no refund has id \(id)"
            case .notFailed(let id, let state): return "refund \(id) is \(state): only a failed refund can be re-queued"
            case .badInput(let why): return why
            case .needsForce(let why): return why + "; if you are sure, run it again with --force"
            case .ticketReused(let why): return why
            }
        }
    }

    /// The longest reason kept (it is shown to operators and in the audit trail).
    public static let maxReasonLength = 500
    /// The longest ticket (the operator's idempotency key).
    public static let maxTicketLength = 100

    /// The payment whose T-Bank PaymentId or our order id is `reference`, as an operator
    /// should see it before refunding.
    public static func inspect(_ db: Connection, payment reference: String) throws -> PaymentView {
        guard let p = try db.query("""
            SELECT p.id, p.order_id, p.tbank_payment_id, p.status, p.amount_kopecks, p.refunded_kopecks, p.consumed_by_job,
                   j.id AS job_id, j.status AS job_status, j.succeeded, j.total_photos,
                   (SELECT count(*) FILTER (WHERE d.state = 'sent') FROM telegram_deliveries d WHERE d.job_id = j.id)::int AS sent,
                   (SELECT count(*) FROM telegram_deliveries d WHERE d.job_id = j.id)::int AS deliveries,
                   (SELECT string_agg(r.id || ' ' || (r.amount_kopecks / 100.0)::numeric(12, 2) || ' RUB ' || r.state
                                      || coalesce(' (ticket ' || r.ticket || ')', ''), chr(10) ORDER BY r.id)
                    FROM refunds r WHERE r.payment_id = p.id) AS refunds
            FROM payments p LEFT JOIN generation_jobs j ON j.payment_id = p.id
            WHERE p.tbank_payment_id = $1 OR p.order_id = $1
            ORDER BY (p.tbank_payment_id IS NOT DISTINCT FROM $1) DESC LIMIT 1
            """, [reference], retry: .idempotent).first else { throw Refusal.paymentNotFound(reference) }
        let job = p.int("job_id").map { "\($0) (\(p.string("job_status") ?? "?"), \(p.int("succeeded") ?? 0) of \(p.int("total_photos") ?? 0) photos)" }
        return PaymentView(paymentID: p.requiredInt("id"), orderID: p.requiredString("order_id"), bankPaymentID: p.string("tbank_payment_id"),
                           status: p.requiredString("status"), paid: Money(kopecks: p.requiredInt("amount_kopecks")),
                           refundedAtBank: Money(kopecks: p.requiredInt("refunded_kopecks")), job: job,
                           consumed: p.int("consumed_by_job") != nil || p.int("job_id") != nil,
                           delivered: p.int("job_id") == nil ? nil : (p.requiredInt("sent"), p.requiredInt("deliveries")),
                           refunds: p.string("refunds").map { $0.split(separator: "\n").map(String.init) } ?? [])
    }

    /// Writes a `pending` refund of `amount` for the payment whose T-Bank PaymentId or our
    /// order id is `payment`, requested by `actor`, with its audit row, in one transaction.
    public static func request(_ db: Connection, payment reference: String, amount: Money, reason: String, ticket: String,
                               force: Bool = false, actor: String) throws -> Queued {
        let reason = reason.trimmingSpaces()
        let ticket = ticket.trimmingSpaces()
        guard !ticket.isEmpty, ticket.count <= maxTicketLength else {
            throw Refusal.badInput("a ticket is required (1 to \(maxTicketLength) characters): it makes a repeated command do nothing new")
        }
        guard !reason.isEmpty else { throw Refusal.badInput("a reason is required (it goes to the audit trail)") }
        guard reason.count <= maxReasonLength else { throw Refusal.badInput("the reason is longer than \(maxReasonLength) characters") }
        guard amount.kopecks > 0 else { throw Refusal.badInput("the amount must be positive") }
        return try refusingOverRefund {
            try db.withTransaction { tx in
                // Locked first: the trigger takes the same lock, and the figures printed are the ones checked.
                guard let p = try tx.query("""
                    SELECT id, order_id, tbank_payment_id, status, amount_kopecks, refunded_kopecks, consumed_by_job,
                           (SELECT coalesce(sum(amount_kopecks), 0) FROM refunds r
                            WHERE r.payment_id = payments.id AND r.state IN ('pending', 'requested'))::int AS in_flight,
                           (SELECT count(*) FROM refunds r WHERE r.payment_id = payments.id)::int AS refunds,
                           refund_headroom(id) AS headroom
                    FROM payments WHERE tbank_payment_id = $1 OR order_id = $1
                    ORDER BY (tbank_payment_id IS NOT DISTINCT FROM $1) DESC LIMIT 1 FOR UPDATE
                    """, [reference]).first else { throw Refusal.paymentNotFound(reference) }
                let paymentID = p.requiredInt("id")
                func queued(_ id: Int, _ erid: String, headroomAfter: Int, repeated: Bool) -> Queued {
                    Queued(refundID: id, externalRequestID: erid, paymentID: paymentID, orderID: p.requiredString("order_id"),
                           bankPaymentID: p.string("tbank_payment_id"), amount: amount, paid: Money(kopecks: p.requiredInt("amount_kopecks")),
                           refundedAtBank: Money(kopecks: p.requiredInt("refunded_kopecks")), inFlight: Money(kopecks: p.requiredInt("in_flight")),
                           headroomAfter: Money(kopecks: headroomAfter), repeated: repeated)
                }
                // The same ticket again (a dropped session, a second try): the first refund, nothing new.
                if let same = try tx.query("""
                    SELECT id, amount_kopecks, external_request_id::text AS erid FROM refunds WHERE payment_id = $1 AND ticket = $2
                    """, [paymentID, ticket]).first {
                    guard same.requiredInt("amount_kopecks") == amount.kopecks else {
                        throw Refusal.ticketReused("ticket \"\(ticket)\" already made refund \(same.requiredInt("id")) of "
                                                   + "\(Money(kopecks: same.requiredInt("amount_kopecks"))) on this payment; use another ticket for another refund")
                    }
                    return queued(same.requiredInt("id"), same.requiredString("erid"), headroomAfter: p.int("headroom") ?? 0, repeated: true)
                }
                let status = p.requiredString("status")
                guard status == PaymentStatus.succeeded.rawValue || status == PaymentStatus.partiallyRefunded.rawValue else {
                    throw Refusal.notRefundable(paymentID: paymentID, status: status)
                }
                if !force, let job = p.int("consumed_by_job") {
                    throw Refusal.needsForce("payment \(paymentID) was consumed by generation job \(job): its photos may have been made and delivered")
                }
                if !force, p.requiredInt("refunds") > 0 {
                    throw Refusal.needsForce("payment \(paymentID) has \(p.requiredInt("refunds")) refund(s) already: this would be another one")
                }
                let row = try tx.query("""
                    INSERT INTO refunds (payment_id, amount_kopecks, reason, requested_by, ticket) VALUES ($1, $2, $3, $4, $5)
                    RETURNING id, external_request_id::text AS erid, refund_headroom(payment_id) AS headroom
                    """, [paymentID, amount.kopecks, reason, actor, ticket])[0]
                let refundID = row.requiredInt("id")
                try AdminAudit.record(tx, actor: actor, action: "refund.manual", target: "refund:\(refundID)",
                                 details: ["paymentId": .int(paymentID), "amountKopecks": .int(amount.kopecks), "reason": .string(reason),
                                           "ticket": .string(ticket), "force": .bool(force)])
                try tx.execute("SELECT pg_notify('refund', $1)", [String(refundID)])
                return queued(refundID, row.requiredString("erid"), headroomAfter: row.int("headroom") ?? 0, repeated: false)
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
                           \(LeasedQueue.release)
                    WHERE id = $1 AND state = 'failed'
                    """, [refundID]) == 1 else { throw Refusal.notFailed(refundID: refundID, state: r.requiredString("state")) }
                let lastError = r.string("last_error")
                try AdminAudit.record(tx, actor: actor, action: "refund.requeue", target: "refund:\(refundID)",
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

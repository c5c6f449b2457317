import Postgres
import PinGlassConfig

/// A payment row as the payment code needs it.
public struct PaymentRecord: Equatable, Sendable {
    public let id: Int
    public let userID: Int
    public let orderID: String
    public let tbankPaymentID: String?
    public let terminal: TerminalMode
    public let terminalKey: String
    public let status: PaymentStatus
    public let amountKopecks: Int
    public let refundedKopecks: Int
    public let photoCount: Int
    public let tier: String
    public let consumed: Bool
    /// No refund row and nothing given back (`PaymentEligibility.untouchedByRefunds`).
    public let untouchedByRefunds: Bool
    public let paymentURL: String?
    public let createdAt: Double
    /// When the payment link stops working (T-Bank `RedirectDueDate`).
    public let redirectDueAt: Double
    /// The id of the request that created it (`Trace`), when kept.
    public let requestID: String?

    static let columns = """
        id, user_id, order_id, tbank_payment_id, terminal, terminal_key, status, amount_kopecks, refunded_kopecks,
        photo_count, tier, consumed_by_job IS NOT NULL AS consumed, \(PaymentEligibility.untouchedByRefunds) AS untouched,
        payment_url, extract(epoch FROM created_at)::float8 AS created,
        extract(epoch FROM redirect_due_at)::float8 AS redirect_due, request_id
        """

    package init(_ r: Row) throws {
        id = r.requiredInt("id")
        userID = r.requiredInt("user_id")
        orderID = r.requiredString("order_id")
        tbankPaymentID = r.string("tbank_payment_id")
        let storedTerminal = r.requiredString("terminal")
        guard let terminal = TerminalMode(rawValue: storedTerminal) else {
            throw StoredValueError(column: "payments.terminal", value: storedTerminal)
        }
        self.terminal = terminal
        terminalKey = r.requiredString("terminal_key")
        status = try PaymentStatus(stored: r.requiredString("status"))
        amountKopecks = r.requiredInt("amount_kopecks")
        refundedKopecks = r.requiredInt("refunded_kopecks")
        photoCount = r.requiredInt("photo_count")
        tier = r.requiredString("tier")
        consumed = r.bool("consumed") ?? false
        untouchedByRefunds = r.bool("untouched") ?? false
        paymentURL = r.string("payment_url")
        createdAt = r.double("created") ?? 0
        redirectDueAt = r.double("redirect_due") ?? 0
        requestID = r.string("request_id")
    }
}

/// The outcome of applying a bank status to a payment (also the `webhook_logs.outcome`).
public enum TransitionOutcome: String, Sendable {
    /// The payment moved.
    case applied
    /// Already in that state.
    case duplicate
    /// A normal late arrival (an earlier step of the payment's life): nothing to do.
    case stale
    /// A status we record but never act on, or a notification that may not move money.
    case ignored
    /// The state machine refused a money-relevant status (CONFIRMED after `rejected`, …):
    /// logged at error level and counted (`payments.refused_transitions`) for the alerts.
    case refused
}

/// Reads and moves payment rows. Every state change is a guarded UPDATE whose row count
/// decides the outcome (docs/reliability.md#R3): duplicates and late events are no-ops.
public enum PaymentLedger {
    public static func find(_ db: Connection, id: Int) throws -> PaymentRecord? {
        try db.query("SELECT \(PaymentRecord.columns) FROM payments WHERE id = $1", [id], retry: .idempotent).first.map { try PaymentRecord($0) }
    }

    /// A user's payment by its bank id, or (nil) the user's latest one.
    public static func latest(_ db: Connection, userID: Int, bankPaymentID: String?) throws -> PaymentRecord? {
        try db.query(latestSQL(user: "$1", bankPaymentID: "$2"), [userID, bankPaymentID], retry: .idempotent)
            .first.map { try PaymentRecord($0) }
    }

    /// The SELECT behind `latest`, with the user and the bank id as SQL expressions (so the
    /// status endpoint can run it in the statement that finds the user).
    package static func latestSQL(user: String, bankPaymentID: String) -> String {
        """
        SELECT \(PaymentRecord.columns) FROM payments
        WHERE user_id = \(user) AND (\(bankPaymentID)::text IS NULL OR tbank_payment_id = \(bankPaymentID))
        ORDER BY created_at DESC, id DESC LIMIT 1
        """
    }

    /// The payment a notification names: by PaymentId, else by OrderId while the bank id is
    /// not recorded yet (the notification raced the Init answer). Locked for the transaction.
    public static func findForNotification(_ db: Transaction, paymentID: String?, orderID: String?) throws -> PaymentRecord? {
        if let paymentID, let p = try db.query("SELECT \(PaymentRecord.columns) FROM payments WHERE tbank_payment_id = $1 FOR UPDATE",
                                               [paymentID]).first {
            return try PaymentRecord(p)
        }
        guard let orderID else { return nil }
        return try db.query("SELECT \(PaymentRecord.columns) FROM payments WHERE order_id = $1 FOR UPDATE", [orderID])
            .first.map { try PaymentRecord($0) }
    }

    /// Applies a bank status (a notification's, or GetState's). A refund status moves the
    /// status forward only: a notification's or GetState's `Amount` is never read as a
    /// refunded sum (the bank does not say what it means after a partial refund, docs/providers.md#A1, and
    /// `refunded_kopecks` only ratchets up, so a wrong reading would cut every later refund).
    /// Partial sums come from `pinglass refund` alone (the bank's `Cancel` answer, or its
    /// state checked against our own refunds by `RefundLanding`); only REFUNDED, which is
    /// unambiguous (all of it back), sets `refunded_kopecks` to the amount.
    public static func apply(_ db: Transaction, payment: PaymentRecord, bankStatus: String,
                             bankPaymentID: String?) throws -> TransitionOutcome {
        guard let t = BankTransition.forBankStatus(bankStatus) else { return .ignored }
        if t.target == .refunded {
            return try applyRefund(db, payment: payment, refundedTotal: payment.amountKopecks, bankStatus: bankStatus,
                                   bankPaymentID: bankPaymentID)
        }
        // Guarded transition: only from the allowed predecessors (docs/reliability.md#R3).
        let changed = try db.execute("""
            UPDATE payments SET status = $2, bank_status = $3,
                   tbank_payment_id = COALESCE(tbank_payment_id, $4),
                   paid_at = CASE WHEN $2 IN ('succeeded', 'partially_refunded') THEN COALESCE(paid_at, now()) ELSE paid_at END,
                   updated_at = now()
            WHERE id = $1 AND status = ANY($5::text[]) AND status <> $2
            """, [payment.id, t.target.rawValue, bankStatus, bankPaymentID, t.from.map(\.rawValue)])
        return try outcome(db, changed: changed, payment: payment, t, bankStatus: bankStatus)
    }

    /// The one place a refunded SUM moves a payment: `pinglass refund` (the bank's `Cancel`
    /// answer, or its state read by `RefundLanding`) and a REFUNDED status (all of it back)
    /// come here. `refundedTotal` is everything the bank has given back for the payment (kopecks);
    /// `refunded_kopecks` only ever grows to it, and the status follows from the amounts:
    /// all of it back → `refunded`, part → `partially_refunded`, each from the predecessors
    /// the bank's status allows (a refund also overtakes a late CONFIRMED). A smaller total
    /// than already recorded (an old answer, a late notification) changes nothing.
    public static func applyRefund(_ db: Transaction, payment: PaymentRecord, refundedTotal: Int, bankStatus: String,
                                   bankPaymentID: String?) throws -> TransitionOutcome {
        guard refundedTotal > 0, refundedTotal <= payment.amountKopecks else { return try refuse(db, payment, bankStatus: bankStatus) }
        let target: PaymentStatus = refundedTotal == payment.amountKopecks ? .refunded : .partiallyRefunded
        guard let t = BankTransition.forBankStatus(target == .refunded ? "REFUNDED" : "PARTIAL_REFUNDED") else { return .ignored }
        // Guarded (docs/reliability.md#R3): from the allowed predecessors, and only upwards.
        let changed = try db.execute("""
            UPDATE payments SET status = $2, bank_status = $3,
                   tbank_payment_id = COALESCE(tbank_payment_id, $4),
                   refunded_kopecks = $5,
                   paid_at = COALESCE(paid_at, now()),
                   updated_at = now()
            WHERE id = $1 AND status = ANY($6::text[]) AND (status <> $2 OR refunded_kopecks < $5) AND refunded_kopecks <= $5
            """, [payment.id, target.rawValue, bankStatus, bankPaymentID, refundedTotal, t.from.map(\.rawValue)])
        return try outcome(db, changed: changed, payment: payment, t, bankStatus: bankStatus)
    }

    /// What a guarded transition's row count means.
    static func outcome(_ db: Transaction, changed: Int, payment: PaymentRecord, _ t: BankTransition,
                        bankStatus: String) throws -> TransitionOutcome {
        if changed == 1 { return .applied }
        if payment.status == t.target { return .duplicate }
        guard t.isAnomalous(from: payment.status) else { return .stale }
        return try refuse(db, payment, bankStatus: bankStatus)
    }

    /// A money-relevant status the payment cannot take: `.refused`, counted once per payment
    /// and bank status (re-checks and re-sends of the same answer do not inflate the alert).
    static func refuse(_ db: Transaction, _ payment: PaymentRecord, bankStatus: String) throws -> TransitionOutcome {
        let first = try db.execute("""
            UPDATE payments SET refused_bank_status = $2 WHERE id = $1 AND refused_bank_status IS DISTINCT FROM $2
            """, [payment.id, bankStatus])
        if first == 1 { try Counters.increment(db, "payments.refused_transitions") }
        return .refused
    }
}

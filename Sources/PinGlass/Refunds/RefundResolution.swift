import Postgres
import Platform

/// An operator's decision about a refund whose Cancel outcome the sender could not settle
/// (`pinglass resolve-refund`): where the bank ignores ExternalRequestId (SBP) and its state
/// does not show our refund, `RefundSender` never sends it again by itself and holds it.
/// The operator checks the payment in the bank's dashboard (the command shows GetState
/// first) and says which it is:
///
/// - **landed**: the refund `succeeded` with the figures our records give (what was charged
///   before it, counting our succeeded refunds, and that less this refund), and the payment
///   moved (`PaymentLedger.applyRefund`, upwards only), in one transaction;
/// - **not landed**: no Cancel of it reached the bank, so it may be sent again: it stays
///   `requested` (its share stays reserved), is due now, and `cancel_sent_at` is cleared,
///   so the sender's next GetState showing nothing sends it (with the same key).
///
/// Either way only a `requested` refund no sender holds, guarded in one statement, with an
/// `admin_audit` row in the same transaction. The operator's word is checked against what
/// the bank's state, read just before (`reading`; nil when GetState failed), and our records
/// say:
/// - "landed" is refused outright when no Cancel of the refund went out (`cancel_sent_at`
///   NULL: nothing of ours reached the bank, so nothing can have landed), and needs `force`
///   when the reading is "not landed";
/// - "not landed" is refused outright when the reading is "landed" (the duty records it),
///   and needs `force` unless the reading is "not landed" (GetState failed, a refund in
///   progress, or figures that cannot tell): sending it again may refund twice.
///
/// ```swift
/// let subject = try RefundResolution.inspect(db, refundID: 17)
/// let done = try RefundResolution.resolve(db, refundID: 17, verdict: .landed, reason: "seen in the dashboard",
///                                         actor: "cli:anna", bank: "GetState CONFIRMED", reading: .notLanded, force: true)
/// ```
public enum RefundResolution {
    public enum Verdict: String, Sendable {
        case landed
        case notLanded = "not-landed"
    }

    /// The refund as our records have it.
    public struct Subject: Equatable, Sendable {
        public let refundID: Int
        public let paymentID: Int
        public let bankPaymentID: String
        public let terminalKey: String
        public let amount: Int
        public let paid: Int
        public let state: String
        public let attempts: Int
        public let lastError: String?
        /// When its last Cancel went out (UTC), if one did.
        public let cancelSentAt: String?
        /// A sender holds it right now (mid-call).
        public let leased: Bool
    }

    public enum Refusal: Error, Equatable, CustomStringConvertible {
        case refundNotFound(Int)
        case notRequested(refundID: Int, state: String)
        case leased(Int)
        case bankSaysLanded(refundID: Int)
        case noCancelSent(refundID: Int)
        case readingDisagrees(refundID: Int, verdict: Verdict, reading: String)
        case doesNotFit(String)
        case badInput(String)

        public var description: String {
            switch self {
            case .refundNotFound(let id): return "no refund has id \(id)"
            case .notRequested(let id, let state):
                return "refund \(id) is \(state): only a requested refund (outcome unknown) can be resolved"
            case .leased(let id): return "refund \(id) is being sent right now; try again in a few minutes"
            case .bankSaysLanded(let id):
                return "refund \(id): T-Bank's state shows it landed; refusing --not-landed (the refund duty records it by itself)"
            case .noCancelSent(let id):
                return "refund \(id): no Cancel of it went out since it was queued (or since it was last found not landed), "
                    + "so it cannot have landed; refusing --landed (the refund duty sends it)"
            case .readingDisagrees(let id, let verdict, let reading):
                return "refund \(id): T-Bank's state just read does not support --\(verdict.rawValue) (\(reading)); "
                    + "check the bank's dashboard, and if you are sure, repeat with --force"
            case .doesNotFit(let why): return why
            case .badInput(let why): return why
            }
        }
    }

    public static func inspect(_ db: Connection, refundID: Int) throws -> Subject {
        guard let r = try db.query("""
            SELECT r.id, r.payment_id, r.amount_kopecks, r.state, r.attempts, r.last_error, coalesce(p.tbank_payment_id, '') AS bank_id,
                   p.terminal_key, p.amount_kopecks AS paid, \(LeasedQueue.isHeld("r")) AS leased,
                   to_char(r.cancel_sent_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS sent_at
            FROM refunds r JOIN payments p ON p.id = r.payment_id WHERE r.id = $1
            """, [refundID], retry: .idempotent).first else { throw Refusal.refundNotFound(refundID) }
        return Subject(refundID: refundID, paymentID: r.requiredInt("payment_id"), bankPaymentID: r.requiredString("bank_id"),
                       terminalKey: r.requiredString("terminal_key"), amount: r.requiredInt("amount_kopecks"), paid: r.requiredInt("paid"),
                       state: r.requiredString("state"), attempts: r.requiredInt("attempts"), lastError: r.string("last_error"),
                       cancelSentAt: r.string("sent_at"), leased: r.bool("leased") ?? false)
    }

    /// What our records say about the refund's payment besides the refund itself (the input
    /// of `RefundLanding`): what our succeeded refunds gave back by the bank's figures, and
    /// the amounts of our other refunds still `requested`.
    public static func known(_ db: some Queryable, refundID: Int, paymentID: Int, bankPaymentID: String,
                             paid: Int) throws -> RefundLanding.Known {
        let rows = try db.query("""
            SELECT state, amount_kopecks, coalesce(bank_original_kopecks - bank_remaining_kopecks, amount_kopecks) AS back
            FROM refunds WHERE payment_id = $1 AND id <> $2 AND state IN ('succeeded', 'requested')
            """, [paymentID, refundID], retry: .idempotent)
        return RefundLanding.Known(
            bankPaymentID: bankPaymentID, paid: paid,
            knownBack: rows.filter { $0.string("state") == "succeeded" }.map { $0.requiredInt("back") }.reduce(0, +),
            open: rows.filter { $0.string("state") == "requested" }.map { $0.requiredInt("amount_kopecks") })
    }

    /// Applies the operator's verdict (see the type). `bank` is what GetState said (for the
    /// audit row), `reading` how our records read it (nil: GetState failed or was not asked);
    /// `force` overrides a reading that disagrees, as the type says. Returns one line for the operator.
    public static func resolve(_ db: Connection, refundID: Int, verdict: Verdict, reason: String, actor: String,
                               bank: String, reading: RefundLanding?, force: Bool) throws -> String {
        let reason = reason.trimmingSpaces()
        guard !reason.isEmpty else { throw Refusal.badInput("a reason is required (it goes to the audit trail)") }
        guard reason.count <= ManualRefunds.maxReasonLength else {
            throw Refusal.badInput("the reason is longer than \(ManualRefunds.maxReasonLength) characters")
        }
        try check(refundID: refundID, verdict: verdict, reading: reading, force: force)
        return try db.withTransaction { tx in
            guard let r = try tx.query("""
                SELECT r.state, r.payment_id, r.amount_kopecks, \(LeasedQueue.isHeld("r")) AS leased,
                       r.cancel_sent_at IS NOT NULL AS cancel_sent, p.amount_kopecks AS paid, coalesce(p.tbank_payment_id, '') AS bank_id
                FROM refunds r JOIN payments p ON p.id = r.payment_id WHERE r.id = $1 FOR UPDATE OF r
                """, [refundID]).first else { throw Refusal.refundNotFound(refundID) }
            let state = r.requiredString("state")
            guard state == "requested" else { throw Refusal.notRequested(refundID: refundID, state: state) }
            guard r.bool("leased") != true else { throw Refusal.leased(refundID) }
            // Read under the row lock: a sender marks a Cancel only while it holds the lease.
            if verdict == .landed && r.bool("cancel_sent") != true { throw Refusal.noCancelSent(refundID: refundID) }
            let free = "id = $1 AND state = 'requested' AND \(LeasedQueue.free)"
            let summary: String
            switch verdict {
            case .notLanded:
                guard try tx.execute("""
                    UPDATE refunds SET cancel_sent_at = NULL, run_at = now(), \(LeasedQueue.release),
                           last_error = left('an operator found that no Cancel landed; to be sent again: ' || $2, 500)
                    WHERE \(free)
                    """, [refundID, reason]) == 1 else { throw Refusal.leased(refundID) }
                try tx.execute("SELECT pg_notify('refund', $1)", [String(refundID)])
                summary = "refund \(refundID) will be sent again (the same ExternalRequestId) on the refund duty's next pass"
            case .landed:
                summary = try recordLanded(tx, refundID: refundID, row: r, free: free)
            }
            try AdminAudit.record(tx, actor: actor, action: "refund.resolve", target: "refund:\(refundID)",
                             details: ["verdict": .string(verdict.rawValue), "reason": .string(reason), "bank": .string(String(bank.prefix(500))),
                                       "force": .bool(force)])
            return summary
        }
    }

    /// The operator's verdict against the bank's state just read (see the type).
    static func check(refundID: Int, verdict: Verdict, reading: RefundLanding?, force: Bool) throws {
        let seen = reading?.summary ?? "GetState gave no answer"
        switch (verdict, reading) {
        case (.notLanded, .landed?):
            throw Refusal.bankSaysLanded(refundID: refundID)
        case (.notLanded, .notLanded?):
            return
        case (.notLanded, _):
            if !force { throw Refusal.readingDisagrees(refundID: refundID, verdict: verdict, reading: seen) }
        case (.landed, .notLanded?):
            if !force { throw Refusal.readingDisagrees(refundID: refundID, verdict: verdict, reading: seen) }
        case (.landed, _):
            return
        }
    }

    /// "Landed": succeeded with the figures our records give, and the payment moved.
    static func recordLanded(_ tx: Transaction, refundID: Int, row r: Row, free: String) throws -> String {
        let amount = r.requiredInt("amount_kopecks"), paid = r.requiredInt("paid"), bankID = r.requiredString("bank_id")
        let known = try known(tx, refundID: refundID, paymentID: r.requiredInt("payment_id"), bankPaymentID: bankID, paid: paid)
        let before = paid - known.knownBack
        let left = before - amount
        guard left >= 0 else {
            throw Refusal.doesNotFit("refund \(refundID) of \(amount) kopecks does not fit: our succeeded refunds leave \(before) kopecks charged")
        }
        let status = left == 0 ? "REFUNDED" : "PARTIAL_REFUNDED"
        guard try tx.execute("""
            UPDATE refunds SET state = 'succeeded', bank_status = $2, bank_original_kopecks = $3, bank_remaining_kopecks = $4,
                   finished_at = now(), last_error = NULL, \(LeasedQueue.release)
            WHERE \(free)
            """, [refundID, status, before, left]) == 1 else { throw Refusal.leased(refundID) }
        guard let payment = try PaymentLedger.findForNotification(tx, paymentID: bankID, orderID: nil) else {
            throw RefundError.paymentVanished(r.requiredInt("payment_id"))
        }
        if try PaymentLedger.applyRefund(tx, payment: payment, refundedTotal: paid - left, bankStatus: status,
                                         bankPaymentID: bankID) == .refused {
            throw Refusal.doesNotFit("payment \(payment.id) is \(payment.status.rawValue): it cannot take this refund; check it in the bank's dashboard")
        }
        return "refund \(refundID) recorded as succeeded (\(Money(kopecks: amount)) back; \(Money(kopecks: left)) stays charged by our records)"
    }
}

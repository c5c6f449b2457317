import Logging
import Postgres
import PinGlassConfig
import ProviderWire

/// Asking the bank about one payment (`GetState`) and applying its answer with the same
/// guarded transition as the webhook. Used by the status endpoint and the reconciler.
///
/// ```swift
/// if try PaymentCheck.claim(db, paymentID: p.id, interval: 5) {
///     _ = try PaymentCheck.refresh(deps, p, timeout: 3)
/// }
/// ```
public enum PaymentCheck {
    public static let log = Logger(label: "payments")

    /// Claims the right to ask the bank about a payment now: one guarded statement that
    /// moves `last_checked_at` only when the last check is older than `interval` seconds.
    /// It commits before the bank is called, so however many requests poll a late payment,
    /// and however slow or failing the bank is, it is asked at most once per interval.
    public static func claim(_ db: Connection, paymentID: Int, interval: Double) throws -> Bool {
        try db.execute("""
            UPDATE payments SET last_checked_at = now()
            WHERE id = $1 AND status IN ('new', 'pending', 'authorized') AND tbank_payment_id IS NOT NULL
              AND COALESCE(last_checked_at, created_at) < now() - make_interval(secs => $2)
            """, [paymentID, interval], retry: .idempotent) == 1
    }

    /// The configured terminal a payment was made on (by its recorded TerminalKey, not the
    /// mode in force now: a switch to production must not change how old payments are asked).
    public static func terminal(of payment: PaymentRecord, in config: Config) -> TBankTerminal? {
        terminal(key: payment.terminalKey, in: config)
    }

    /// The configured terminal with this recorded TerminalKey (GetState, Cancel).
    public static func terminal(key: String, in config: Config) -> TBankTerminal? {
        config.terminals.first { $0.key == key }
    }

    /// Asks `GetState` (outside any transaction) and applies the answer. `.ignored` when the
    /// payment has no bank id yet or its terminal is no longer configured (logged).
    public static func refresh(_ deps: Dependencies, _ payment: PaymentRecord, timeout: Double,
                               log: Logger = PaymentCheck.log) throws -> TransitionOutcome {
        guard let state = try ask(deps, payment, timeout: timeout, log: log) else { return .ignored }
        return try apply(deps, payment, state, log: log)
    }

    /// The bank's state of a payment, asked with the payment's own terminal; nil when it
    /// cannot be asked (no bank id yet, or its terminal is no longer configured: logged).
    public static func ask(_ deps: Dependencies, _ payment: PaymentRecord, timeout: Double,
                           log: Logger = PaymentCheck.log) throws -> BankState? {
        guard let bankID = payment.tbankPaymentID else { return nil }
        guard let terminal = terminal(of: payment, in: deps.config) else {
            log.error("the payment's terminal is not configured: cannot ask the bank",
                      metadata: ["payment_id": "\(payment.id)", "terminal": "\(payment.terminal.rawValue)"])
            return nil
        }
        return try deps.bank(terminal, timeout).getState(paymentID: bankID)
    }

    /// Applies a state the bank reported (by `ask`) in one short transaction, with the same
    /// guarded transition as the webhook.
    public static func apply(_ deps: Dependencies, _ payment: PaymentRecord, _ state: BankState,
                             log: Logger = PaymentCheck.log) throws -> TransitionOutcome {
        guard let bankID = payment.tbankPaymentID else { return .ignored }
        return try deps.db().withTransaction { tx in
            guard let current = try PaymentLedger.findForNotification(tx, paymentID: bankID, orderID: nil) else { return .ignored }
            // The same cross-checks as a notification: an answer about another order or
            // another amount moves nothing.
            if let problem = PaymentNotifications.mismatch(current, terminalKey: current.terminalKey, bankPaymentID: state.paymentID,
                                                           orderID: state.orderID, amount: state.amount, status: state.status) {
                log.error("GetState does not match its payment", metadata: ["payment_id": "\(current.id)", "reason": "\(problem)"])
                try Counters.increment(tx, "payments.mismatched_notifications")
                return .ignored
            }
            let outcome = try PaymentLedger.apply(tx, payment: current, bankStatus: state.status, bankPaymentID: bankID)
            if outcome == .refused {
                log.error("the bank reports a status the payment cannot take",
                          metadata: ["payment_id": "\(payment.id)", "status": "\(current.status.rawValue)", "bank_status": "\(state.status)"])
            }
            return outcome
        }
    }
}

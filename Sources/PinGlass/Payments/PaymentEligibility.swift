import PinGlassConfig

/// Which paid payments may start a generation.
///
/// Only `succeeded` and unconsumed (enforced by the consume statement and a trigger), not
/// touched by any refund (`untouchedByRefunds`), and, for a payment made on the test
/// terminal (money nobody really paid), only for the staff ids in `TEST_TELEGRAM_IDS`, or
/// for anyone while test mode is in force on a local install (`PUBLIC_BASE_URL` loopback).
/// A public install never lets a stranger spend test money, whatever the mode: a test
/// payment made before going live, a forgotten switch, or a public server left in test mode
/// can never hand out free generations.
///
/// ```swift
/// let allowTest = PaymentEligibility.allowsTestPayments(mode: mode, telegramID: user.telegramID, config: config)
/// // UPDATE payments SET consumed_by_job = … WHERE … AND (terminal = 'production' OR $n)   -- $n = allowTest
/// ```
public enum PaymentEligibility {
    /// A payment a generation may consume has given nothing back and has no refund row:
    /// none done, none in flight (`pending`, `requested`: an operator's refund whose Cancel
    /// has not landed yet; consuming it would give the user the photos AND the money), and
    /// none failed (a failed refund is re-queued once its cause is fixed). Its refund
    /// headroom is its full amount. A condition over `payments`, for SQL that reads it.
    public static let untouchedByRefunds = """
        (payments.refunded_kopecks = 0 AND NOT EXISTS (SELECT 1 FROM refunds WHERE refunds.payment_id = payments.id))
        """

    /// Whether this user may consume test-terminal payments under the mode in force.
    public static func allowsTestPayments(mode: TerminalMode, telegramID: Int64, config: Config) -> Bool {
        if config.testTelegramIDs.contains(telegramID) { return true }
        return mode == .test && !config.isPublicInstall
    }

    /// Whether `payment` may be consumed by this user now.
    public static func isConsumable(_ payment: PaymentRecord, mode: TerminalMode, telegramID: Int64, config: Config) -> Bool {
        payment.status == .succeeded && !payment.consumed && payment.untouchedByRefunds
            && (payment.terminal == .production || allowsTestPayments(mode: mode, telegramID: telegramID, config: config))
    }
}

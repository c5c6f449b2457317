/// Which paid payments may start a generation.
///
/// Only `succeeded` and unconsumed (enforced by the consume statement and a trigger), and,
/// for a payment made on the test terminal (money nobody really paid), only while test mode
/// is in force or for the staff ids in `TEST_TELEGRAM_IDS`: a test payment made before going
/// live, or a forgotten switch, can never hand out free generations in production.
///
/// ```swift
/// let allowTest = PaymentEligibility.allowsTestPayments(mode: mode, telegramID: user.telegramID, config: config)
/// // UPDATE payments SET consumed_by_job = … WHERE … AND (terminal = 'production' OR $n)   -- $n = allowTest
/// ```
public enum PaymentEligibility {
    /// Whether this user may consume test-terminal payments under the mode in force.
    public static func allowsTestPayments(mode: TerminalMode, telegramID: Int64, config: Config) -> Bool {
        mode == .test || config.testTelegramIDs.contains(telegramID)
    }

    /// Whether `payment` may be consumed by this user now.
    public static func isConsumable(_ payment: PaymentRecord, mode: TerminalMode, telegramID: Int64, config: Config) -> Bool {
        payment.status == .succeeded && !payment.consumed
            && (payment.terminal == .production || allowsTestPayments(mode: mode, telegramID: telegramID, config: config))
    }
}

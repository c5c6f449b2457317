import Logging
import PinGlassConfig
import Postgres
import ProviderWire

/// What the Mini App's payment status poll learns about a payment of its user: the payment
/// as it stands (asked of the bank first when it may still move and nobody asked lately)
/// and whether a generation may use it now. The HTTP handler only parses the query, finds
/// the payment (`PaymentLedger.latestSQL`, in the statement that resolves the user) and
/// renders this.
///
/// ```swift
/// let status = try PaymentStatusPoll.check(deps, payment, telegramID: user.telegramID, log: log)
/// status.payment.status; status.usable
/// ```
public enum PaymentStatusPoll {
    /// A payment the bank may still move is asked about at most once per this interval,
    /// however many status calls arrive.
    public static let checkIntervalSeconds = 5.0
    public static let checkTimeout = 3.0

    /// The terminal mode `usable` is judged by, cached per worker for this long (only the
    /// answer depends on it: a generation reads the mode afresh in its own transaction).
    public static let modeCacheSeconds = 1.0

    public struct Status {
        public let payment: PaymentRecord
        /// A generation may consume this payment now (`PaymentEligibility.isConsumable`).
        public let usable: Bool
    }

    /// `payment` as it stands after at most one brief `GetState` (claimed with
    /// `PaymentCheck.claim`, so the bank is asked once per interval whatever the polling
    /// rate): the notification may be late or lost. A failing bank call is logged and the
    /// payment answered as stored.
    public static func check(_ deps: Dependencies, _ payment: PaymentRecord, telegramID: Int64,
                             log: Logger) throws -> Status {
        let db = try deps.db()
        var payment = payment
        if payment.status.awaitsBank, try PaymentCheck.claim(db, paymentID: payment.id, interval: checkIntervalSeconds) {
            do {
                _ = try PaymentCheck.refresh(deps, payment, timeout: checkTimeout, log: log)
                payment = try PaymentLedger.find(db, id: payment.id) ?? payment
            } catch let e as TBankError {
                log.warning("GetState failed during status check", metadata: ["error": "\(e)"])
            }
        }
        let mode = try deps.cache.value("tbank_mode", ttl: modeCacheSeconds) { try PaymentSettings.terminalMode(db) }
        return Status(payment: payment,
                      usable: PaymentEligibility.isConsumable(payment, mode: mode, telegramID: telegramID, config: deps.config))
    }
}

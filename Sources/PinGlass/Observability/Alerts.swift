import Logging
import Postgres

/// Critical events for the operator: refund failed permanently, Kie out of
/// credits, a duty silent for 5 minutes, a queue older than its deadline, a delivery
/// failed permanently, sustained 5xx. An alert is a `telegram_deliveries` row of kind
/// `alert` to `ADMIN_TELEGRAM_CHAT_ID`, sent by `pinglass deliver` like any other message,
/// at most once per alert key per hour (or per day: `once`): `dedupe_key` is
/// `alert:<key>:<hour>` (`alert:<key>:<day>`), unique, so raising the same alert again within
/// the hour (the day) from any process inserts nothing.
///
/// Raise inside the transaction that records the event, so the alert commits with it. It
/// is always logged at error level too, also when no admin chat is configured.
///
/// ```swift
/// try Alerts.raise(tx, chatID: config.adminTelegramChatID, key: "refund-failed:\(refundID)",
///                  text: "Refund \(refundID) failed permanently: \(reason)")
/// ```
public enum Alerts {
    static let log = Logger(label: "pinglass.alerts")

    /// How often one key may alert.
    public enum Period: Sendable {
        case perHour, perDay

        /// The UTC time stamp format that names the period in `dedupe_key`.
        var format: String { self == .perHour ? #"YYYY-MM-DD"T"HH24"# : "YYYY-MM-DD" }
        var unit: String { self == .perHour ? "hour" : "day" }
    }

    /// Returns true when a new alert row was written (false: no admin chat configured, or the
    /// same key already alerted this hour, or this day).
    @discardableResult
    public static func raise(_ db: some Queryable, chatID: Int64?, key: String, once period: Period = .perHour,
                             text: String) throws -> Bool {
        log.error("alert", metadata: ["alert": "\(key)", "text": "\(text)"])
        guard let chatID else { return false }
        let inserted = try db.execute("""
            INSERT INTO telegram_deliveries (chat_id, kind, payload, give_up_at, dedupe_key)
            VALUES ($1, 'alert', jsonb_build_object('key', $2::text, 'text', $3::text), now() + interval '24 hours',
                    'alert:' || $2::text || ':' || to_char(date_trunc($4, now() AT TIME ZONE 'UTC'), $5))
            ON CONFLICT (dedupe_key) DO NOTHING
            """, [chatID, key, text, period.unit, period.format])
        if inserted == 1 { try db.execute("SELECT pg_notify('deliver', 'alert')") }
        return inserted == 1
    }
}

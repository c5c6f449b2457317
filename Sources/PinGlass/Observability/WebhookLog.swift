import JSON
import Postgres

/// The record of every provider notification received, refused or not: one row in
/// `webhook_logs` for each T-Bank notification (`PaymentNotifications`) and each Kie
/// callback (`KieCallback`), with where it came from. The caller decides what the payload
/// keeps (an allow-list of fields: never a Token, a signature or card data).
///
/// ```swift
/// try WebhookLog.record(tx, .kie, source, event: state, payload: ["taskId": "task_1"], outcome: "applied", reason: nil)
/// ```
public enum WebhookLog {
    /// Who sent the notification (`webhook_logs.source`).
    public enum Provider: String, Sendable {
        case tbank, kie
    }

    /// Where a notification came from, recorded with it.
    public struct Source: Sendable {
        public var remoteAddress: String
        public var requestID: String
        public init(remoteAddress: String, requestID: String) {
            self.remoteAddress = remoteAddress
            self.requestID = requestID
        }
    }

    /// One row; the event type, reason and request id are cut to the column's useful length,
    /// and an empty remote address is recorded as none.
    static func record(_ db: some Queryable, _ provider: Provider, _ source: Source, paymentID: Int? = nil, event: String?,
                       payload: JSON, outcome: String, reason: String?) throws {
        try db.execute("""
            INSERT INTO webhook_logs (source, payment_id, event_type, payload, outcome, reason, remote_addr, request_id)
            VALUES ($1, $2, left($3, 64), $4::jsonb, $5, left($6, 500), NULLIF($7, '')::inet, left($8, 64))
            """, [provider.rawValue, paymentID, event, payload.serialized, outcome, reason, source.remoteAddress, source.requestID])
    }
}

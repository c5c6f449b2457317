import JSON
import Postgres
import ProviderWire

/// Kie's `callBackUrl` notification, received: only a hint (recordInfo is authoritative and
/// the Market callback body is not documented: docs/providers.md#kie-callback). Nothing in the body is trusted beyond the
/// task id. A callback that names a task and carries a signature that verifies with
/// `KIE_WEBHOOK_HMAC_KEY` within 5 minutes of our clock makes that task due now
/// (`KiePoller.markDue`), so the next poll pass asks recordInfo at once instead of up to a
/// poll interval later. An unknown task id changes nothing (a late or repeated callback is
/// normal). Every callback, refused or not, is one row in `webhook_logs` (source `kie`):
/// the task id and Kie's state only.
///
/// ```swift
/// let signature = KieCallback.Signature(timestamp: ts, value: sig)
/// let outcome = try KieCallback.receive(db, body: json, signature: signature, key: key, now: now, source: source)
/// ```
public enum KieCallback {
    /// The signature headers as received (either may be missing).
    public struct Signature: Sendable {
        public var timestamp: String?
        public var value: String?
        public init(timestamp: String?, value: String?) {
            self.timestamp = timestamp
            self.value = value
        }
    }

    /// Where the callback came from, recorded with it.
    public typealias Source = WebhookLog.Source

    public enum Outcome: Equatable, Sendable {
        /// A running task with this id was made due now.
        case applied
        /// No running task has this id.
        case ignored
    }

    /// Why a callback was refused (recorded before it is thrown).
    public enum Refusal: Error, Equatable {
        /// No usable `data.taskId` (or `taskId`).
        case noTaskID
        /// Signature missing, wrong or stale.
        case badSignature
    }

    /// Verifies the callback, then applies it and records it in one transaction. The task id
    /// is read before the signature (it is what is signed); a refusal is recorded, then thrown.
    public static func receive(_ db: Connection, body: JSON, signature: Signature, key: String, now: Double,
                               source: Source) throws -> Outcome {
        let data = body["data"]
        guard let taskID = (data?["taskId"] ?? body["taskId"])?.scalarText, (1...128).contains(taskID.count) else {
            try record(db, taskID: nil, state: nil, outcome: "malformed", reason: "no taskId", source)
            throw Refusal.noTaskID
        }
        let state = data?["state"]?.scalarText
        guard let timestamp = signature.timestamp, let value = signature.value,
              KieWebhookSignature.verify(taskID: taskID, timestamp: timestamp, signature: value, key: key, now: now)
        else {
            try record(db, taskID: taskID, state: state, outcome: "bad_signature", reason: "missing, wrong or stale signature", source)
            throw Refusal.badSignature
        }
        return try db.withTransaction { tx in
            let marked = try KiePoller.markDue(tx, kieTaskID: taskID)
            try record(tx, taskID: taskID, state: state, outcome: marked ? "applied" : "ignored",
                       reason: marked ? nil : "no running task with this id", source)
            return marked ? .applied : .ignored
        }
    }

    static func record(_ db: some Queryable, taskID: String?, state: String?, outcome: String, reason: String?,
                       _ source: Source) throws {
        var payload: [(String, JSON)] = []
        if let taskID { payload.append(("taskId", .string(taskID))) }
        if let state { payload.append(("state", .string(String(state.prefix(32))))) }
        try WebhookLog.record(db, .kie, source, event: state, payload: .object(payload), outcome: outcome, reason: reason)
    }
}

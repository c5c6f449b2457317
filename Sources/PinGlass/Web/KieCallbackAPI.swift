import HTTPCore
import Postgres
import JSON
import ProviderWire

/// `POST /api/kie/callback`: Kie's `callBackUrl`. Only a hint (docs/providers.md#kie-callback: the
/// Market callback body is not documented, and recordInfo is authoritative): it makes the
/// named task due now, so the next poll pass (woken by `NOTIFY poll-kie`) asks recordInfo at
/// once instead of up to a poll interval later. Nothing in the body is trusted beyond the
/// task id. The signature headers must verify with `KIE_WEBHOOK_HMAC_KEY` and the timestamp
/// be within 5 minutes of our clock; otherwise 401. Without that key the endpoint does not
/// exist: 404 as for any unknown path, before the body is read and with nothing logged or
/// stored (an unsigned hint anyone could send is worth nothing, and the dispatcher then
/// hands Kie no callback URL). Unknown task ids are answered 200 like known ones (a late or
/// duplicated callback is normal) and change nothing.
///
/// ```
/// POST /api/kie/callback  {"code":200,"data":{"taskId":"task_123","state":"success",…}}
/// → 200 {"received":true}
/// ```
enum KieCallbackAPI {
    static func callback(_ ctx: Context) throws -> Response {
        guard let key = ctx.config.kieWebhookHMACKey else {
            throw APIError.notFound("no such endpoint: \(ctx.request.method) \(ctx.request.path)")
        }
        let body = try ctx.jsonBody()
        let data = body["data"]
        guard let taskID = (data?["taskId"] ?? body["taskId"])?.scalarText, (1...128).contains(taskID.count) else {
            try record(ctx, taskID: nil, state: nil, outcome: "malformed", reason: "no taskId")
            throw APIError.validation("taskId is required (data.taskId)")
        }
        let state = data?["state"]?.scalarText
        guard let timestamp = ctx.request.header(KieWebhookSignature.timestampHeader),
              let signature = ctx.request.header(KieWebhookSignature.signatureHeader),
              KieWebhookSignature.verify(taskID: taskID, timestamp: timestamp, signature: signature, key: key, now: ctx.now)
        else {
            try record(ctx, taskID: taskID, state: state, outcome: "bad_signature", reason: "missing, wrong or stale signature")
            throw APIError.unauthorized("invalid or stale webhook signature")
        }
        let db = try ctx.db()
        try db.withTransaction { tx in
            let marked = try KiePoller.markDue(tx, kieTaskID: taskID)
            try record(tx, ctx, taskID: taskID, state: state, outcome: marked ? "applied" : "ignored",
                       reason: marked ? nil : "no running task with this id")
        }
        return .json(["received": true])
    }

    /// The callback in `webhook_logs` (source `kie`): the task id and Kie's state only.
    static func record(_ ctx: Context, taskID: String?, state: String?, outcome: String, reason: String) throws {
        try record(ctx.db(), ctx, taskID: taskID, state: state, outcome: outcome, reason: reason)
    }

    static func record(_ db: some Queryable, _ ctx: Context, taskID: String?, state: String?, outcome: String,
                       reason: String?) throws {
        var payload: [(String, JSON)] = []
        if let taskID { payload.append(("taskId", .string(taskID))) }
        if let state { payload.append(("state", .string(String(state.prefix(32))))) }
        try db.execute("""
            INSERT INTO webhook_logs (source, event_type, payload, outcome, reason, remote_addr, request_id)
            VALUES ('kie', left($1, 64), $2::jsonb, $3, left($4, 500), NULLIF($5, '')::inet, left($6, 64))
            """, [state, JSON.object(payload).serialized, outcome, reason, ctx.request.remoteAddress, ctx.request.requestID])
    }
}

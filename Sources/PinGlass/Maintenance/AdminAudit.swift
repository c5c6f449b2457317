import JSON
import Postgres

/// The audit trail of operator actions (`admin_audit`: manual refunds, requeues, acknowledged
/// alerts, settings changed, accounts and sessions, from the admin pages and the CLI): who did
/// what to which row, the state before and after, from which address and in which request,
/// written in the transaction that does it (docs/admin.md#audit). Not to be confused with
/// `InvariantAudit`, the hourly check of the money invariants (`pinglass audit`).
public enum AdminAudit {
    public static func record(_ db: some Queryable, actor: String, action: String, target: String?, details: JSON,
                              before: JSON? = nil, after: JSON? = nil, address: String? = nil, requestID: String? = nil) throws {
        try db.execute("""
            INSERT INTO admin_audit (actor, action, target, details, before, after, address, request_id)
            VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6::jsonb, $7, $8)
            """, [actor, action, target, details.serialized, before?.serialized, after?.serialized, address, requestID])
    }

    /// One row of the trail, as the audit page shows it.
    public struct Entry: Sendable {
        public let id: Int
        public let at: String
        public let actor: String
        public let action: String
        public let target: String?
        public let details: String
        public let before: String?
        public let after: String?
        public let address: String?
        public let requestID: String?
    }

    /// The newest `limit` rows, newest first.
    public static func recent(_ db: some Queryable, limit: Int = 200) throws -> [Entry] {
        try db.query("""
            SELECT id, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS at, actor, action, target,
                   details::text AS details, before::text AS before, after::text AS after, address, request_id
            FROM admin_audit ORDER BY created_at DESC, id DESC LIMIT $1
            """, [limit]).map {
            Entry(id: $0.requiredInt("id"), at: $0.requiredString("at"), actor: $0.requiredString("actor"),
                  action: $0.requiredString("action"), target: $0.string("target"), details: $0.requiredString("details"),
                  before: $0.string("before"), after: $0.string("after"), address: $0.string("address"),
                  requestID: $0.string("request_id"))
        }
    }
}

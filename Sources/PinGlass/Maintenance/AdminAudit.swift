import JSON
import Postgres

/// The audit trail of operator actions (`admin_audit`: manual refunds, requeues, acknowledged
/// alerts, settings changed, from the admin UI and the CLI): who did what to which row, written
/// in the transaction that does it. Not to be confused with `InvariantAudit`, the hourly check
/// of the money invariants (`pinglass audit`).
public enum AdminAudit {
    public static func record(_ db: some Queryable, actor: String, action: String, target: String?, details: JSON) throws {
        try db.execute("INSERT INTO admin_audit (actor, action, target, details) VALUES ($1, $2, $3, $4::jsonb)",
                       [actor, action, target, details.serialized])
    }
}

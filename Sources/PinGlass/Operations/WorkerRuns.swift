import Postgres

/// The heartbeat of every cron duty (`worker_runs`), shown by `/api/health`.
public enum WorkerRuns {
    public static func started(_ db: Connection, name: String) throws {
        try db.execute("""
            INSERT INTO worker_runs (name, host, started_at) VALUES ($1, $2, now())
            ON CONFLICT (name) DO UPDATE SET host = EXCLUDED.host, started_at = now()
            """, [name, System.hostname()], retry: .idempotent)
    }

    public static func finished(_ db: Connection, name: String, ok: Bool, summary: JSON) throws {
        try db.execute("""
            INSERT INTO worker_runs (name, host, started_at, finished_at, ok, summary) VALUES ($1, $2, now(), now(), $3, $4::jsonb)
            ON CONFLICT (name) DO UPDATE SET host = EXCLUDED.host, finished_at = now(), ok = $3, summary = $4::jsonb
            """, [name, System.hostname(), ok, summary.serialized], retry: .idempotent)
    }
}

/// Audit trail of operator actions (admin UI and CLI).
public enum Audit {
    public static func record(_ db: some Queryable, actor: String, action: String, target: String?, details: JSON) throws {
        try db.execute("INSERT INTO admin_audit (actor, action, target, details) VALUES ($1, $2, $3, $4::jsonb)",
                       [actor, action, target, details.serialized])
    }
}

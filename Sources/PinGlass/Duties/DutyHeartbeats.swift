import Postgres
import JSON

/// The heartbeat of every cron duty (`worker_runs`, one row per duty and host), shown by
/// `/api/health`. Keyed by host too, since every VM runs the same duties: one host's
/// successes must not overwrite (and hide) another's failures.
///
/// "Worker" elsewhere means a FastCGI worker of the pool; these rows are duty passes. The
/// table keeps its older name `worker_runs` (as do health's `checks.workers` and the
/// `worker-silent:<duty>` alert key): renaming them would take a migration, new grants and a
/// changed HTTP answer and alert key for operators, for a name only the SQL sees.
public enum DutyHeartbeats {
    public static func started(_ db: Connection, duty: DutyName, host: String) throws {
        try db.execute("""
            INSERT INTO worker_runs (name, host, started_at) VALUES ($1, $2, now())
            ON CONFLICT (name, host) DO UPDATE SET started_at = now()
            """, [duty.rawValue, host], retry: .idempotent)
    }

    public static func finished(_ db: Connection, duty: DutyName, host: String, ok: Bool, summary: JSON) throws {
        try db.execute("""
            INSERT INTO worker_runs (name, host, started_at, finished_at, ok, summary) VALUES ($1, $2, now(), now(), $3, $4::jsonb)
            ON CONFLICT (name, host) DO UPDATE SET finished_at = now(), ok = $3, summary = $4::jsonb
            """, [duty.rawValue, host, ok, summary.serialized], retry: .idempotent)
    }

    /// The last finished pass of one duty on one host.
    public struct LastRun: Equatable, Sendable {
        public let host: String
        /// ISO 8601 UTC, nil while the first pass is still running.
        public let finishedAt: String?
        public let ok: Bool?
    }

    /// Every duty's runs, latest first (across hosts), by duty name.
    public static func lastRuns(_ db: Connection) throws -> [String: [LastRun]] {
        let rows = try db.query("""
            SELECT name, host, to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS last, ok
            FROM worker_runs ORDER BY name, finished_at DESC NULLS LAST, host
            """, retry: .idempotent)
        var runs: [String: [LastRun]] = [:]
        for r in rows {
            runs[r.requiredString("name"), default: []].append(LastRun(host: r.requiredString("host"), finishedAt: r.string("last"), ok: r.bool("ok")))
        }
        return runs
    }
}

import Postgres

/// What the operator's dashboard (`GET /admin`) shows: money taken today, in 7 and in 30
/// days, jobs by status and the queues' depths (the same reads as `/metrics`,
/// `DatabaseMetrics`). Money in is what succeeded payments took (refunded ones included,
/// their refunds shown beside), in kopecks; "today" is the UTC day of `now`.
public struct AdminDashboard: Sendable {
    public struct Window: Sendable {
        public let name: String
        public let paidKopecks: Int
        public let payments: Int
        public let refundedKopecks: Int
    }

    public let money: [Window]
    public let jobs: [(status: String, count: Int)]
    public let queues: [(queue: String, state: String, count: Int)]

    public static func read(_ db: some Queryable, now: Double) throws -> AdminDashboard {
        let windows = [("today", "date_trunc('day', to_timestamp($1::float8) AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"),
                       ("7 days", "to_timestamp($1::float8) - interval '7 days'"),
                       ("30 days", "to_timestamp($1::float8) - interval '30 days'")]
        let columns = windows.enumerated().map { i, w in
            """
            coalesce(sum(p.amount_kopecks) FILTER (WHERE p.paid_at >= \(w.1)), 0)::bigint AS paid\(i),
            count(*) FILTER (WHERE p.paid_at >= \(w.1))::int AS n\(i),
            coalesce(sum(p.refunded_kopecks) FILTER (WHERE p.paid_at >= \(w.1)), 0)::bigint AS refunded\(i)
            """
        }.joined(separator: ",\n")
        let row = try db.query("""
            SELECT \(columns) FROM payments p
            WHERE p.paid_at >= to_timestamp($1::float8) - interval '30 days' AND p.paid_at <= to_timestamp($1::float8)
              AND p.status IN ('succeeded', 'partially_refunded', 'refunded')
            """, [now], retry: .idempotent)[0]
        let money = windows.enumerated().map { i, w in
            Window(name: w.0, paidKopecks: row.int("paid\(i)") ?? 0, payments: row.int("n\(i)") ?? 0,
                   refundedKopecks: row.int("refunded\(i)") ?? 0)
        }
        let m = try DatabaseMetrics.read(db)
        let jobs = DatabaseMetrics.jobStatuses.map { ($0, m.jobs[$0] ?? 0) }
        let queues = DatabaseMetrics.queues.flatMap { q in q.states.map { (q.table, $0, m.queueDepth[q.table]?[$0] ?? 0) } }
        return AdminDashboard(money: money, jobs: jobs, queues: queues)
    }
}

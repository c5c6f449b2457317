import SharedCounters

/// HTTP requests by route and status, counted in a `SharedCounterTable` that the pool's
/// master maps before it forks: every worker adds into the same table, so `/metrics` shows
/// the same numbers whichever worker answers (no per-process registry). The counts survive a
/// worker's death or recycling (they live in the master's mapping) and start again at zero
/// when the pool itself restarts (Prometheus treats that as a counter reset). Each pool
/// counts its own requests: with several VMs, each instance is scraped on its own.
///
/// Labels are the route table's templates (`/api/jobs/{id}`), never raw paths, and a fixed
/// set of statuses, so the number of series is bounded: one row per route plus `unmatched`
/// (no route, or a method the path does not allow), and one column per status of
/// `exactStatuses` plus one per class (`4xx`) for any other status. `HEAD` is counted on its
/// `GET` route.
///
/// ```swift
/// let metrics = try RequestMetrics(routes: router.table)             // in the master, before fork
/// metrics.record(route: 3, status: 200)                            // App.handle, in a worker
/// for s in metrics.samples() { print(s.route, s.status, s.count) }
/// ```
public final class RequestMetrics: Sendable {
    /// One series: a route (method and template) and a status, with its count.
    public struct Sample: Equatable, Sendable {
        public let method: String
        public let route: String
        public let status: String
        public let count: UInt64
    }

    /// Statuses this API answers, each its own series; anything else is counted by class.
    public static let exactStatuses = [200, 201, 202, 204, 301, 302, 303, 304, 400, 401, 402, 403, 404, 405,
                                       409, 413, 415, 422, 429, 500, 502, 503, 504]
    static let classes = ["1xx", "2xx", "3xx", "4xx", "5xx"]
    static let columns = exactStatuses.count + classes.count
    /// The row for requests no route answers.
    public static let unmatched = (method: "*", route: "unmatched")

    /// (method, template) per row; the last row is `unmatched`.
    let rows: [(method: String, route: String)]
    let table: SharedCounterTable

    /// `routes` as the router lists them (`Router.table`); `:name` becomes `{name}`.
    public init(routes: [(method: String, pattern: String)]) throws {
        rows = routes.map { ($0.method, Self.template($0.pattern)) } + [Self.unmatched]
        table = try SharedCounterTable(count: rows.count * Self.columns)
    }

    /// Counts one answered request; `route` is the router's index, nil when none matched.
    public func record(route: Int?, status: Int) {
        // An index past the table (a router other than the one it was made for) lands in
        // `unmatched` rather than in another route's row.
        let row = route.map { $0 >= 0 && $0 < rows.count - 1 ? $0 : rows.count - 1 } ?? rows.count - 1
        table.add(row * Self.columns + Self.column(status))
    }

    /// Every non-zero series, in table order.
    public func samples() -> [Sample] {
        var out: [Sample] = []
        for (r, row) in rows.enumerated() {
            for c in 0..<Self.columns {
                let n = table[r * Self.columns + c]
                if n > 0 { out.append(Sample(method: row.method, route: row.route, status: Self.statusLabel(c), count: n)) }
            }
        }
        return out
    }

    static func column(_ status: Int) -> Int {
        if let i = exactStatuses.firstIndex(of: status) { return i }
        return exactStatuses.count + min(max(status / 100 - 1, 0), classes.count - 1)
    }

    static func statusLabel(_ column: Int) -> String {
        column < exactStatuses.count ? String(exactStatuses[column]) : classes[column - exactStatuses.count]
    }

    /// `/api/avatars/:id` → `/api/avatars/{id}` (the OpenAPI spelling).
    static func template(_ pattern: String) -> String {
        pattern.split(separator: "/", omittingEmptySubsequences: false)
            .map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }.joined(separator: "/")
    }
}

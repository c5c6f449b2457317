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
/// How long each answer took is a histogram per route (`latencyBuckets`, 5 ms to 10 s), in a
/// second shared table: per row one slot per bucket (not cumulative; the reader adds them
/// up), one for answers slower than the last bound, and the sum of durations in whole
/// microseconds. That is `rows × 13` slots of 8 bytes: about 3 KB for the 30-odd routes the
/// application has, beside the status table's `rows × 28` slots (about 7 KB).
///
/// ```swift
/// let metrics = try RequestMetrics(routes: router.table)             // in the master, before fork
/// metrics.record(route: 3, status: 200, seconds: 0.012)            // App.handle, in a worker
/// for s in metrics.samples() { print(s.route, s.status, s.count) }
/// for h in metrics.latencies() { print(h.route, h.count, h.sum) }
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

    /// One route's latency histogram: cumulative counts per upper bound (`latencyBuckets`,
    /// then `+Inf`, which equals `count`), and the sum of the durations in seconds.
    public struct Latency: Equatable, Sendable {
        public let method: String
        public let route: String
        public let buckets: [(le: Double, count: UInt64)]
        public let sum: Double
        public var count: UInt64 { buckets.last?.count ?? 0 }

        public static func == (a: Latency, b: Latency) -> Bool {
            a.method == b.method && a.route == b.route && a.sum == b.sum
                && a.buckets.map(\.le) == b.buckets.map(\.le) && a.buckets.map(\.count) == b.buckets.map(\.count)
        }
    }

    /// Upper bounds (seconds) of the latency buckets; `+Inf` follows.
    public static let latencyBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
    /// Slots per row of the latency table: the buckets, the overflow, the sum in microseconds.
    static let latencySlots = latencyBuckets.count + 2

    /// (method, template) per row; the last row is `unmatched`.
    let rows: [(method: String, route: String)]
    let table: SharedCounterTable
    let latency: SharedCounterTable

    /// `routes` as the router lists them (`Router.table`); `:name` becomes `{name}`.
    public init(routes: [(method: String, pattern: String)]) throws {
        rows = routes.map { ($0.method, Self.template($0.pattern)) } + [Self.unmatched]
        table = try SharedCounterTable(count: rows.count * Self.columns)
        latency = try SharedCounterTable(count: rows.count * Self.latencySlots)
    }

    /// Counts one answered request; `route` is the router's index, nil when none matched.
    /// `seconds`, how long the answer took, goes into the route's histogram (none: not timed).
    public func record(route: Int?, status: Int, seconds: Double? = nil) {
        // An index past the table (a router other than the one it was made for) lands in
        // `unmatched` rather than in another route's row.
        let row = route.map { $0 >= 0 && $0 < rows.count - 1 ? $0 : rows.count - 1 } ?? rows.count - 1
        table.add(row * Self.columns + Self.column(status))
        if let seconds { observe(row: row, seconds: seconds) }
    }

    func observe(row: Int, seconds: Double) {
        let s = seconds.isFinite ? max(0, seconds) : 0
        // The first bound the duration does not exceed (Prometheus buckets are `le`).
        let bucket = Self.latencyBuckets.firstIndex { s <= $0 } ?? Self.latencyBuckets.count
        let base = row * Self.latencySlots
        latency.add(base + bucket)
        latency.add(base + Self.latencySlots - 1, UInt64(min(s, 1e9) * 1e6 + 0.5))
    }

    /// The histogram of every route that has answered at least once, in table order. Slots are
    /// read one by one while workers add: a scrape may see a request in a bucket and not yet
    /// in the sum (never the reverse order's harm: buckets stay cumulative and non-decreasing).
    public func latencies() -> [Latency] {
        var out: [Latency] = []
        for (r, row) in rows.enumerated() {
            let base = r * Self.latencySlots
            var total: UInt64 = 0
            var buckets: [(le: Double, count: UInt64)] = []
            for (i, le) in (Self.latencyBuckets + [.infinity]).enumerated() {
                total += latency[base + i]
                buckets.append((le, total))
            }
            guard total > 0 else { continue }
            out.append(Latency(method: row.method, route: row.route, buckets: buckets,
                               sum: Double(latency[base + Self.latencySlots - 1]) / 1e6))
        }
        return out
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

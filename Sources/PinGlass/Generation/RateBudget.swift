import Postgres

/// A sliding-window budget kept in PostgreSQL (table `rate_events`), so several dispatchers
/// on several machines together never exceed a provider's limit. A fixed window would let
/// twice the limit through across a window boundary; here every grant looks back exactly
/// one window from the moment it is made (`clock_timestamp()`, taken after the lock).
///
/// ```swift
/// let grant = try RateBudget(name: "kie.create", limit: 20, window: 11).reserve(db, want: 5)
/// // grant.granted calls may be made now; grant.retryAfter seconds until a slot frees
/// ```
public struct RateBudget: Sendable {
    public let name: String
    public let limit: Int
    /// Seconds. Slightly longer than the provider's window: our clock stamps the call before
    /// it reaches them.
    public let window: Double

    public init(name: String, limit: Int, window: Double) {
        self.name = name
        self.limit = limit
        self.window = window
    }

    public struct Grant: Equatable, Sendable {
        public var granted: Int { slots.count }
        /// The slots taken (`rate_events` ids): stamp each when its call goes out, release
        /// the ones not used. Only this grant's own rows are ever touched.
        public var slots: [Int]
        /// Seconds until the oldest call in the window leaves it (0 when slots are free).
        public let retryAfter: Double
    }

    /// Takes up to `want` slots now. Serialised per budget by a transaction-scoped advisory
    /// lock, so two dispatchers never both see the same free slot.
    public func reserve(_ db: Connection, want: Int) throws -> Grant {
        try db.withTransaction { tx in
            try tx.execute("SELECT pg_advisory_xact_lock(hashtext('rate:' || $1))", [name])
            try tx.execute("DELETE FROM rate_events WHERE name = $1 AND at < clock_timestamp() - make_interval(secs => $2::float8 * 2)",
                           [name, window])
            let r = try tx.query("""
                SELECT count(*)::int AS used,
                       COALESCE(extract(epoch FROM min(at) + make_interval(secs => $2::float8) - clock_timestamp()), 0)::float8 AS wait
                FROM rate_events WHERE name = $1 AND at > clock_timestamp() - make_interval(secs => $2::float8)
                """, [name, window])[0]
            let used = r.requiredInt("used")
            let granted = max(0, min(want, limit - used))
            var slots: [Int] = []
            if granted > 0 {
                slots = try tx.query("INSERT INTO rate_events (name) SELECT $1 FROM generate_series(1, $2) RETURNING id",
                                     [name, granted]).map { $0.requiredInt("id") }
            }
            let wait = used + granted >= limit ? max(0, r.double("wait") ?? window) : 0
            return Grant(slots: slots, retryAfter: granted == 0 && wait == 0 ? window : wait)
        }
    }

    /// Gives back slots taken but not used.
    public func release(_ db: Connection, _ slots: some Collection<Int>) throws {
        guard !slots.isEmpty else { return }
        try db.execute("DELETE FROM rate_events WHERE id = ANY($1::bigint[])", [slots.map(String.init)], retry: .idempotent)
    }

    /// Moves a slot to now, right before its call goes out: the provider counts when calls
    /// arrive, and a batch whose first call was slow must not send the rest inside a window
    /// that, by our stamps, has already moved on.
    public func stamp(_ db: Connection, _ slot: Int) throws {
        try stamp(db, [slot])
    }

    /// Moves the slots of one call (an album takes several) to now in one statement, so they
    /// all carry the moment right before the call, not one round trip apart each.
    public func stamp(_ db: Connection, _ slots: some Collection<Int>) throws {
        guard !slots.isEmpty else { return }
        try db.execute("UPDATE rate_events SET at = clock_timestamp() WHERE id = ANY($1::bigint[])", [slots.map(String.init)],
                       retry: .idempotent)
    }

    /// The provider said 429: it counts its window differently from us (another client on
    /// the same account, clock skew), or told us how long to wait. Fill the window so nobody
    /// calls again for `seconds` (default: one full window): `limit` events stamped so that
    /// they leave the window only then.
    public func exhaust(_ db: some Queryable, for seconds: Double? = nil) throws {
        try db.execute("""
            INSERT INTO rate_events (name, at)
            SELECT $1, clock_timestamp() + make_interval(secs => greatest(0, $3::float8 - $4::float8)) FROM generate_series(1, $2)
            """, [name, limit, seconds ?? window, window], retry: .never)
    }

    /// Seconds until a slot is free (0: one is free now), for every process together: the
    /// events in the window leave it oldest first, and one must go for a call to fit.
    public func secondsUntilFree(_ db: some Queryable) throws -> Double {
        try db.query("""
            WITH w AS (SELECT at FROM rate_events WHERE name = $1 AND at > clock_timestamp() - make_interval(secs => $2::float8))
            SELECT CASE WHEN (SELECT count(*) FROM w) < $3 THEN 0
                        ELSE extract(epoch FROM (SELECT at FROM w ORDER BY at OFFSET (SELECT count(*) FROM w) - $3 LIMIT 1)
                                                + make_interval(secs => $2::float8) - clock_timestamp()) END::float8 AS wait
            """, [name, window, limit], retry: .idempotent)[0].double("wait").map { max(0, $0) } ?? 0
    }
}

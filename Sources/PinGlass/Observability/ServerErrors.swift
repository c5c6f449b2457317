import Postgres

/// 5xx answers per minute (table `http_5xx_minutes`), for the sweep's "sustained 5xx" alert.
/// The app writes only when it answers 5xx, one upsert on the current minute's row, so a
/// healthy system writes nothing and a failing one a row a minute. Every worker of every VM
/// adds to the same rows.
///
/// What cannot be counted: answers given because PostgreSQL itself is unreachable (the app
/// does not even try: a reconnect attempt would slow every such answer), and answers nginx
/// gives on its own (502/504 when the pool is down). Those show up as silent workers, in
/// health, and in nginx's log.
///
/// ```swift
/// try ServerErrors.record(db)                      // in the app, after a 5xx answer
/// let n = try ServerErrors.recent(db, seconds: 300) // in the sweep
/// ```
public enum ServerErrors {
    /// Adds one to this minute's count. Never sent twice (not idempotent): a lost answer
    /// loses at most this one count.
    public static func record(_ db: some Queryable) throws {
        try db.execute("""
            INSERT INTO http_5xx_minutes (minute, answers) VALUES (date_trunc('minute', now()), 1)
            ON CONFLICT (minute) DO UPDATE SET answers = http_5xx_minutes.answers + 1
            """)
    }

    /// 5xx answers in the minutes that started within the last `seconds`.
    public static func recent(_ db: some Queryable, seconds: Int) throws -> Int {
        try db.query("""
            SELECT coalesce(sum(answers), 0)::int AS n FROM http_5xx_minutes WHERE minute > now() - make_interval(secs => $1::int)
            """, [seconds], retry: .idempotent)[0].requiredInt("n")
    }
}

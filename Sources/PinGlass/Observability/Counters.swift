import Postgres

/// Event counters kept in PostgreSQL (table `counters`), so every worker and every VM adds
/// to the same number; health, `/metrics` and the alerts read them. Call inside the
/// transaction that records the event, so the count commits with it.
///
/// Most count failures and anomalies; the deliver duty also counts its successes
/// (`telegram.sent`, deliveries sent, and `telegram.messages`, the Telegram messages
/// they took). `/metrics` exports every row as `pinglass_events_total{name="…"}` with no code
/// change, and some also as a named family (`DatabaseMetrics`): `kie.rate_limited`,
/// `kie.poll_rate_limited`, `storage.upload_failures`, and every other `telegram.<reason>` as
/// `pinglass_telegram_failures_total{reason="<reason>"}` (the two successes are not failures).
///
/// ```swift
/// try Counters.increment(tx, "payments.refused_transitions")
/// ```
public enum Counters {
    public static func increment(_ db: some Queryable, _ name: String, by n: Int = 1) throws {
        try db.execute("""
            INSERT INTO counters (name, value) VALUES ($1, $2)
            ON CONFLICT (name) DO UPDATE SET value = counters.value + EXCLUDED.value, updated_at = now()
            """, [name, n])
    }

    public static func value(_ db: some Queryable, _ name: String) throws -> Int {
        try db.query("SELECT value FROM counters WHERE name = $1", [name], retry: .idempotent).first?.int("value") ?? 0
    }
}

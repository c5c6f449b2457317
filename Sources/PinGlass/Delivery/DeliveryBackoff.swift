/// When a delivery that failed for a transient reason (5xx, timeout, network, storage
/// unavailable) is tried again: 1 min, 5 min, 15 min, then every hour, each with ±10 % jitter
/// so rows that failed together do not come back together (docs/reliability.md#R7: a non-zero
/// base, capped, jittered). The row gives up at its `give_up_at` (24 h by default). A 429 is
/// not a failure of the row: it waits Telegram's `retry_after` instead.
///
/// ```swift
/// DeliveryBackoff.seconds(afterAttempt: 1)   // 54…66
/// DeliveryBackoff.seconds(afterAttempt: 7)   // 3240…3960
/// ```
public enum DeliveryBackoff {
    /// The waits before the second, third and fourth attempts; later ones wait `cap`.
    public static let schedule: [Double] = [60, 300, 900]
    public static let cap: Double = 3600
    /// The jitter's half-width, as a share of the wait.
    public static let jitter = 0.1

    /// Seconds to wait after the `attempt`-th attempt failed (1 = the first). `unit` is a
    /// value in 0...1 (random by default; tests pass the bounds).
    public static func seconds(afterAttempt attempt: Int, unit: Double = Double.random(in: 0...1)) -> Double {
        let base = attempt >= 1 && attempt <= schedule.count ? schedule[attempt - 1] : (attempt < 1 ? schedule[0] : cap)
        return base * (1 - jitter + 2 * jitter * min(max(unit, 0), 1))
    }
}

/// When a queued row whose call failed for a transient reason is tried again: a wait that
/// doubles with each attempt from a non-zero `base`, is capped at `cap`, and is cut by a
/// random share of up to a quarter, so rows that failed together do not come back together
/// (docs/reliability.md#R7). `dispatch` uses it for a Kie submit that failed transiently,
/// `refund` for a Cancel or GetState whose outcome is unknown (with its `--retry-base` and
/// `--retry-cap`); deliveries follow their own schedule (`DeliveryBackoff`).
///
/// ```swift
/// Backoff.seconds(attempt: 1)                      // 3.75…5
/// Backoff.seconds(attempt: 4)                      // 30…40
/// Backoff.seconds(attempt: 9, base: 5, cap: 300)   // 225…300
/// ```
public enum Backoff {
    /// Seconds to wait after the `attempt`-th attempt (1 = the first): `base × 2^(attempt−1)`,
    /// at most `cap`, times a random factor in 0.75…1.
    public static func seconds(attempt: Int, base: Double = 5, cap: Double = 300) -> Double {
        let raw = min(cap, base * Double(1 << min(max(attempt - 1, 0), 16)))
        return raw * (0.75 + Double(UInt32.random(in: 0...1000)) / 4000)
    }
}

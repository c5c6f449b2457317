import Postgres
import Platform

/// Time as the domain reads it, carried by `Dependencies.clock`: the wall clock (`now`), a
/// clock that never goes back (`monotonic`, for measuring how long something took or how
/// long a lease is surely still ours) and a way to wait (`sleep`). Duties and handlers take
/// it from `Dependencies` and never call libc's clocks themselves, so a test can hold time
/// still or move it (`TestClock`) instead of waiting.
///
/// The process clock is not the authority for anything shared between processes
/// (docs/reliability.md#R14): a lease (`lease_until`), a retry time (`run_at`) or a
/// deadline is written and compared by PostgreSQL's `now()` in the guarded statement
/// itself, so machines whose clocks disagree still agree on who holds a row. The domain's
/// clock only decides local things: when a pass stops taking work, how long to wait, what a
/// signed link's expiry says, and (on the monotonic clock) until when a lease just renewed
/// is surely still this process's.
///
/// ```swift
/// let deps = Dependencies(config: config, database: database)     // Clock.system
/// guard deps.clock() < deadline else { return report }            // the wall clock
/// let heldUntil = deps.clock.monotonic() + Double(config.leaseSeconds)
/// deps.clock.sleep(0.5)
/// ```
public struct Clock {
    /// Seconds since the Unix epoch (may jump when the system clock is set).
    public var now: () -> Double
    /// Seconds from an arbitrary start that never go back (`CLOCK_MONOTONIC`).
    public var monotonic: () -> Double
    /// Waits this many seconds (returns at once for zero or less).
    public var sleep: (Double) -> Void

    public init(now: @escaping () -> Double, monotonic: @escaping () -> Double, sleep: @escaping (Double) -> Void) {
        self.now = now
        self.monotonic = monotonic
        self.sleep = sleep
    }

    /// The operating system's clocks.
    public static var system: Clock { Clock(now: System.now, monotonic: System.monotonic, sleep: System.sleep) }

    /// `clock()` reads the wall clock: `deps.clock()` is `deps.clock.now()`.
    public func callAsFunction() -> Double { now() }
}

extension KnownOutcome {
    /// Retries on this clock: `heldUntil` is compared with `clock.monotonic` (take it from
    /// the same clock) and the waits between tries are `clock.sleep`.
    public init(clock: Clock) {
        self.init()
        self.clock = clock.monotonic
        self.sleep = clock.sleep
    }
}

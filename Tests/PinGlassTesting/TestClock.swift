import Foundation
import PinGlass

/// A clock tests move by hand, for `DutyRunner` and `Dependencies.clock`: its `sleep`
/// records the wait and advances time at once, so loops run in microseconds and the test
/// sees exactly when each pass started.
///
/// ```swift
/// let clock = TestClock(now: 1_000)
/// var runner = DutyRunner(database: database, schedule: try DutySchedule(runFor: 55, every: 10),
///                         clock: clock.clock)
/// deps.clock = clock.clock          // the duty reads the same time
/// clock.advance(3600)               // an hour later, at once
/// ```
public final class TestClock: @unchecked Sendable {
    private let lock = NSLock()
    private var _now: Double
    private var _sleeps: [Double] = []

    public init(now: Double = 1_000_000) { _now = now }

    public var now: Double {
        get { lock.lock(); defer { lock.unlock() }; return _now }
        set { lock.lock(); _now = newValue; lock.unlock() }
    }

    /// Every wait asked of `sleep`, in order.
    public var sleeps: [Double] { lock.lock(); defer { lock.unlock() }; return _sleeps }

    public func advance(_ seconds: Double) { lock.lock(); _now += seconds; lock.unlock() }

    public var read: () -> Double { { self.now } }

    /// This clock as the domain takes it: `now` and `monotonic` both read the hand-moved
    /// time, `sleep` advances it.
    public var clock: Clock { Clock(now: read, monotonic: read, sleep: sleep) }

    public var sleep: (Double) -> Void {
        { seconds in
            self.lock.lock()
            self._sleeps.append(seconds)
            self._now += max(0, seconds)
            self.lock.unlock()
        }
    }
}

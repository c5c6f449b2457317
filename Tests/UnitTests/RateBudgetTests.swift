import PinGlassTesting
import Postgres
import XCTest
@testable import PinGlass

/// The sliding budget in PostgreSQL: grants never exceed the limit inside a window, a
/// release gives back only the grant's own slots, and a slot stamped at send time counts
/// from then.
final class RateBudgetTests: DatabaseTestCase {
    var c: Connection!
    override func setUpWithError() throws {
        try super.setUpWithError()
        c = try db.connect()
    }

    func testGrantsReleasesAndStamps() throws {
        let budget = RateBudget(name: "test", limit: 5, window: 10)
        let other = try db.connect()
        let a = try budget.reserve(c, want: 3)
        let b = try budget.reserve(other, want: 3)
        XCTAssertEqual([a.granted, b.granted], [3, 2], "never more than the limit together")
        XCTAssertEqual(try budget.reserve(c, want: 1).granted, 0)
        XCTAssertGreaterThan(try budget.reserve(c, want: 1).retryAfter, 9, "a full window until the oldest slot leaves")
        // A releases its last two: B's slots stay.
        try budget.release(c, a.slots.dropFirst())
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM rate_events WHERE id = ANY($1::bigint[])", [b.slots.map(String.init)])[0].int("n"), 2)
        XCTAssertEqual(try budget.reserve(c, want: 5).granted, 2)
        // Slots taken 9 s ago have left the window 1 s from now, unless stamped at send time.
        try c.execute("UPDATE rate_events SET at = at - interval '9.5 seconds'")
        try budget.stamp(c, b.slots[0])
        try c.execute("UPDATE rate_events SET at = at - interval '1 second' WHERE id <> $1", [b.slots[0]])
        XCTAssertEqual(try budget.reserve(c, want: 5).granted, 4, "only the stamped slot still counts")
    }

    /// The slots of one call (an album's) are stamped together, in one statement: each moves
    /// to now, the others stay as they were.
    func testTheSlotsOfOneCallAreStampedTogether() throws {
        let budget = RateBudget(name: "test", limit: 5, window: 10)
        let grant = try budget.reserve(c, want: 5)
        try c.execute("UPDATE rate_events SET at = at - interval '9.5 seconds'")
        try budget.stamp(c, grant.slots.prefix(3))
        try c.execute("UPDATE rate_events SET at = at - interval '1 second' WHERE NOT (id = ANY($1::bigint[]))",
                      [grant.slots.prefix(3).map(String.init)])
        XCTAssertEqual(try budget.reserve(c, want: 5).granted, 2, "the three stamped slots still count, the other two left")
    }

    /// A provider's "wait N seconds" fills the budget until then, for every process, and
    /// `secondsUntilFree` says how long that is (not just until the oldest slot leaves).
    func testExhaustForAWaitAndSecondsUntilFree() throws {
        let budget = RateBudget(name: "test", limit: 5, window: 1)
        XCTAssertEqual(try budget.secondsUntilFree(c), 0)
        XCTAssertEqual(try budget.reserve(c, want: 2).granted, 2)
        XCTAssertEqual(try budget.secondsUntilFree(c), 0, "three slots are free")
        try budget.exhaust(c, for: 30)
        XCTAssertEqual(try budget.reserve(c, want: 1).granted, 0)
        XCTAssertEqual(try budget.secondsUntilFree(c), 30, accuracy: 1, "the pause, not the oldest slot's second")
        try c.execute("UPDATE rate_events SET at = at - interval '29.5 seconds'")
        XCTAssertEqual(try budget.reserve(c, want: 1).granted, 0, "still paused")
        try c.execute("UPDATE rate_events SET at = at - interval '1 second'")
        XCTAssertEqual(try budget.reserve(c, want: 5).granted, 5, "the pause is over")
        XCTAssertGreaterThan(try budget.secondsUntilFree(c), 0.5, "now spent for a window")
    }
}

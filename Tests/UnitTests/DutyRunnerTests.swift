import XCTest
import Postgres
import PinGlassTesting
import JSON
import PinGlassConfig
@testable import PinGlass
@testable import PinGlassWeb

/// A duty that takes work items of a fixed length on the test clock until its deadline,
/// and fails the passes it is told to.
final class ScriptedDuty: Duty {
    static let name = DutyName.prune

    struct Config: DutyConfig {
        /// Test-clock seconds one item takes.
        var itemSeconds = 0.0
        /// Items offered per pass.
        var items = 1
        static var settings: [DutySetting<Self>] {
            [.seconds("item-seconds", \.itemSeconds, in: 0...3600, "Test-clock seconds one item takes."),
             .count("items", \.items, in: 0...1000, "Items offered per pass.")]
        }
    }

    struct Report: DutyReport {
        var done: Int
        var json: JSON { ["done": .int(done)] }
    }

    struct Boom: Error, CustomStringConvertible { var description: String { "scripted failure" } }

    let config: Config
    let clock: TestClock
    var failing: Set<Int> = []
    private(set) var passes: [(now: Double, deadline: Double, done: Int)] = []

    init(config: Config, clock: TestClock) throws {
        try config.validate()
        self.config = config
        self.clock = clock
    }

    func runOnce(now: Double, deadline: Double) throws -> Report {
        var done = 0
        defer { passes.append((now, deadline, done)) }
        if failing.contains(passes.count + 1) { throw Boom() }
        for _ in 0..<config.items {
            guard clock.now < deadline else { break }
            clock.advance(config.itemSeconds)
            done += 1
        }
        return Report(done: done)
    }
}

final class DutyRunnerTests: DatabaseTestCase {
    var database: Database!
    let clock = TestClock(now: 1_000)

    override func setUpWithError() throws {
        try super.setUpWithError()
        database = Database(url: db.url, applicationName: "test")
    }
    override func tearDown() {
        database?.close()
        super.tearDown()
    }

    func runner(for runFor: Double, every: Double, host: String = "vm-a") throws -> DutyRunner {
        DutyRunner(database: database, schedule: try DutySchedule(runFor: runFor, every: every), host: host,
                   clock: clock.clock)
    }

    func duty(items: Int = 1, itemSeconds: Double = 0) throws -> ScriptedDuty {
        try ScriptedDuty(config: .init(itemSeconds: itemSeconds, items: items), clock: clock)
    }

    func testForAndEveryDecideThePasses() throws {
        let d = try duty()
        let outcome = try runner(for: 55, every: 10).run(d)
        XCTAssertEqual(outcome, DutyRunOutcome(passes: 6, failedPasses: 0))
        XCTAssertEqual(outcome.exitCode, 0)
        XCTAssertEqual(d.passes.map(\.now), [1_000, 1_010, 1_020, 1_030, 1_040, 1_050])
        XCTAssertEqual(Set(d.passes.map(\.deadline)), [1_055], "every pass must be done by the end of --for")
        XCTAssertEqual(clock.sleeps, [10, 10, 10, 10, 10], "no sleep after the last pass")
    }

    /// The wait between passes is the clock's at the time of the wait: a clock set after
    /// `init` (as a caller replacing `deps.clock`) is the one that sleeps.
    func testAClockSetAfterInitIsTheOneThatWaits() throws {
        var r = DutyRunner(database: database, schedule: try DutySchedule(runFor: 25, every: 10), host: "vm-a", clock: .system)
        r.clock = clock.clock
        XCTAssertEqual(r.run(try duty()).passes, 3)
        XCTAssertEqual(clock.sleeps, [10, 10], "the test clock waited, not the system's")
    }

    func testWithoutForOnePassRunsWithTheSinglePassLimit() throws {
        let d = try duty()
        XCTAssertEqual(try runner(for: 0, every: 10).run(d).passes, 1)
        XCTAssertEqual(d.passes.first?.deadline, 1_000 + DutySchedule.singlePassLimit)
        XCTAssertEqual(clock.sleeps, [])
    }

    /// Passes of 6 s every 10 s for 55 s: the pass that would start at 50 could not finish
    /// by 55, so it is not started, and the loop never sleeps past the end.
    func testNoPassStartsThatCannotFinish() throws {
        let d = try duty(itemSeconds: 6)
        XCTAssertEqual(try runner(for: 55, every: 10).run(d).passes, 5)
        XCTAssertEqual(d.passes.map(\.now), [1_000, 1_010, 1_020, 1_030, 1_040])
        XCTAssertLessThanOrEqual(clock.now, 1_055)
    }

    /// A pass slower than `--every` and than `--for`: it stops taking items at its deadline,
    /// and no further pass starts.
    func testASlowPassStopsTakingWorkAtTheDeadline() throws {
        let d = try duty(items: 100, itemSeconds: 7)
        XCTAssertEqual(try runner(for: 20, every: 10).run(d).passes, 1)
        XCTAssertEqual(d.passes.first?.done, 3, "items started at 0, 7 and 14 s; none at 21")
        XCTAssertLessThan(clock.now, 1_020 + 7, "overrun by at most the item in hand")
        XCTAssertEqual(clock.sleeps, [])
    }

    func testAFailedPassMakesTheExitCodeNonZeroAndTheLoopGoesOn() throws {
        let d = try duty()
        d.failing = [2]
        let outcome = try runner(for: 25, every: 10).run(d)
        XCTAssertEqual(outcome, DutyRunOutcome(passes: 3, failedPasses: 1))
        XCTAssertEqual(outcome.exitCode, 1)
        let row = try db.connect().query("SELECT ok, summary->>'done' AS done FROM worker_runs WHERE name = 'prune'")[0]
        XCTAssertEqual(row.bool("ok"), true, "the last pass succeeded")
        XCTAssertEqual(row.string("done"), "1")

        d.failing = [4]
        XCTAssertEqual(try runner(for: 0, every: 10).run(d).exitCode, 1)
        let failed = try db.connect().query("SELECT ok, summary->>'error' AS error FROM worker_runs WHERE name = 'prune'")[0]
        XCTAssertEqual(failed.bool("ok"), false)
        XCTAssertEqual(failed.string("error"), "scripted failure")
    }

    /// Two VMs run the same duty: each keeps its own heartbeat row, and health shows the
    /// latest run across hosts plus each host's, for every registered duty.
    func testHeartbeatsOfTwoHostsSideBySideAndHealth() throws {
        let d = try duty()
        XCTAssertEqual(try runner(for: 0, every: 10, host: "vm-a").run(d).exitCode, 0)
        d.failing = [2]
        XCTAssertEqual(try runner(for: 0, every: 10, host: "vm-b").run(d).exitCode, 1)
        let conn = try db.connect()
        let rows = try conn.query("SELECT host, ok FROM worker_runs WHERE name = 'prune' ORDER BY host")
        XCTAssertEqual(rows.map { $0.requiredString("host") }, ["vm-a", "vm-b"])
        XCTAssertEqual(rows.map { $0.bool("ok") }, [true, false])

        try conn.execute("UPDATE worker_runs SET finished_at = '2026-01-01T10:00:00Z' WHERE host = 'vm-a'")
        try conn.execute("UPDATE worker_runs SET finished_at = '2026-01-01T09:00:00Z' WHERE host = 'vm-b'")
        let app = try InProcessApp(database: db)
        let workers = try XCTUnwrap(try JSON.parse(try app.client.get("/api/health").body)["checks"]?["workers"])
        XCTAssertEqual(workers.objectValue?.map(\.0), DutyName.allCases.map(\.rawValue), "the registry, in order")
        XCTAssertEqual(workers["prune"]?["lastRunAt"]?.stringValue, "2026-01-01T10:00:00Z")
        XCTAssertEqual(workers["prune"]?["ok"], true)
        XCTAssertEqual(workers["prune"]?["hosts"]?["vm-b"]?["ok"], false)
        XCTAssertEqual(workers["prune"]?["hosts"]?["vm-b"]?["lastRunAt"]?.stringValue, "2026-01-01T09:00:00Z")
        XCTAssertEqual(workers["dispatch"]?["lastRunAt"], .null, "a duty that never ran is listed")
    }

    func testScheduleAndConfigAreValidatedAtConstruction() throws {
        XCTAssertThrowsError(try DutySchedule(runFor: -1, every: 10)) { error in
            XCTAssertEqual((error as? DutyConfigError)?.setting, "for")
        }
        XCTAssertThrowsError(try DutySchedule(runFor: 55, every: 0)) { error in
            XCTAssertEqual("\(error)", "--every must be between 0.1s and 3600s (got 0)")
        }
        XCTAssertThrowsError(try ScriptedDuty(config: .init(items: -1), clock: clock)) { error in
            XCTAssertEqual((error as? DutyConfigError)?.setting, "items")
        }
        XCTAssertEqual(try DutySchedule(), try DutySchedule(runFor: DutySchedule.runForDefault, every: DutySchedule.everyDefault))
    }

    /// An idle pass is a debug line, a pass that did something an info line.
    func testIdlePassesAreQuiet() {
        XCTAssertTrue(DutyRunner.didNothing(["checked": 0, "applied": 0, "stoppedAtDeadline": false]))
        XCTAssertFalse(DutyRunner.didNothing(["checked": 1, "applied": 0]))
        XCTAssertFalse(DutyRunner.didNothing(["note": "x"]))
    }
}

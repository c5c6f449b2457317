import Foundation
import HTTPClient
import PinGlassTesting
import Postgres
import XCTest
@testable import PinGlass

/// Two real `pinglass dispatch` processes against the simulated Kie's sliding 20-per-10-s
/// limiter (which answers 429 and drops the call): over more than two windows, every task is
/// submitted once and Kie never says 429. Then a 429 storm (another client on the account)
/// is waited out, not hammered.
final class DispatchBudgetTests: XCTestCase {
    func testTwoDispatchersStayUnderKiesLimiterAndRideOutA429Storm() throws {
        let db = try makeDatabase()
        let simPort = Subprocess.freePort()
        let simURL = "http://127.0.0.1:\(simPort)"
        let stack = try Stack(database: db, workers: 1, env: Fixtures.kieEnv(simURL: simURL), withSimulator: true, simPort: simPort)
        defer { stack.stop() }
        let sim = KieSimulator(simURL: simURL)
        try sim.set(["generatingSeconds": .double(3600), "latencyMs": .double(50), "callbacks": false])
        let c = try db.connect()
        for n in 0..<3 {
            _ = try JobFixtures.job(c, telegramID: Int64(42_000 + n), photos: 15, tasks: .queued, deadlineIn: 3600)
        }
        let env = Fixtures.kieEnv(simURL: simURL).merging([
            "PATH": "/usr/bin:/bin", "PINGLASS_ENV_FILE": "/dev/null", "DATABASE_URL": db.url, "LOG_FORMAT": "text",
            "MEDIA_KEY_SECRET": GenerationFixtures.mediaSecret, "STORAGE_DIR": try TestEnvironment.makeTempDir("budget-media"),
        ]) { $1 }
        let bin = try TestEnvironment.binDir() + "/pinglass"
        // 45 tasks at 20 per window: three windows. Both dispatchers run the whole time.
        let runs = (0..<2).map { _ in InFlightCommand { try Subprocess.capture(bin, ["dispatch", "--for", "24s", "--every", "1s"], environment: env) } }
        let results = runs.map { $0.wait() }
        XCTAssertEqual(results.map(\.0), [0, 0], results.map { $0.1 + $0.2 }.joined())
        let counters = try sim.counters()
        XCTAssertEqual(counters["createTask.429"] ?? 0, 0, "never over Kie's limit: \(counters)")
        XCTAssertEqual(counters["createTask"], 45, "each task submitted once")
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM generation_tasks WHERE state = 'running'")[0].int("n"), 45)
        XCTAssertEqual(try c.query("SELECT count(DISTINCT kie_task_id)::int AS n FROM generation_tasks")[0].int("n"), 45)

        // Another client fills the account's window (every call of ours now gets 429).
        try sim.set(["createLimit": 0])
        let job = try JobFixtures.job(c, telegramID: 42_100, photos: 3, tasks: .queued, deadlineIn: 3600).id
        try c.execute("DELETE FROM rate_events")
        let (s, o, e) = try Subprocess.capture(bin, ["dispatch", "--for", "5s", "--every", "1s"], environment: env)
        XCTAssertEqual(s, 0, o + e)
        let storm = try sim.counters()["createTask.429"] ?? 0
        XCTAssertEqual(storm, 1, "one 429, then a full window of waiting, not a call per task or per second")
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM generation_tasks WHERE job_id = $1 AND state = 'queued' AND attempts = 0", [job])[0].int("n"), 3,
                       "the tasks wait, none failed or charged an attempt")
    }
}

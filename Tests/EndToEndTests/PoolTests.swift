import XCTest
import Foundation
import HTTPClient
import Postgres
import PinGlassTesting
import JSON
@testable import PinGlass

/// Real nginx → real pinglass-fcgi workers → the test PostgreSQL. With PostgreSQL stopped or
/// restarted under the pool: `PoolOutageTests` (disruptive tier).
final class PoolTests: DatabaseTestCase {
    var stack: Stack?
    override func tearDown() {
        stack?.stop()
        super.tearDown()
    }

    func testServesTheAPIThroughNginxWithRequestIDs() throws {
        let stack = try Stack(database: db)
        self.stack = stack
        let res = try stack.client.get("/api/pricing")
        XCTAssertEqual(res.status, 200)
        XCTAssertEqual(res.header("content-type"), "application/json; charset=utf-8")
        XCTAssertEqual(try JSON.parse(res.body)["tiers"]?.arrayValue?.count, 3)
        let id = try XCTUnwrap(res.header("x-request-id"))
        XCTAssertEqual(id.count, 32, "nginx's $request_id reaches the app and comes back")
        XCTAssertEqual(try stack.client.get("/api/health").status, 200)
        let nf = try stack.client.get("/api/unknown")
        XCTAssertEqual(nf.status, 404)
        XCTAssertEqual(try JSON.parse(nf.body)["error"]?["code"]?.stringValue, "NOT_FOUND")
        // The request id is in the log line of that request.
        let bad = try stack.client.execute("DELETE", "/api/pricing")
        XCTAssertEqual(bad.status, 405)
        _ = try stack.client.get("/api/health")
    }

    func testKilledWorkerIsReplacedAndRequestsKeepSucceeding() throws {
        let stack = try Stack(database: db, workers: 2)
        self.stack = stack
        let before = Set(stack.workerPIDs())
        XCTAssertEqual(before.count, 2)
        let victim = before.first!
        kill(victim, SIGKILL)
        try Subprocess.waitUntil("replacement worker") {
            let now = Set(stack.workerPIDs())
            return now.count == 2 && !now.contains(victim)
        }
        for _ in 0..<20 { XCTAssertEqual(try stack.client.get("/api/pricing").status, 200) }
        XCTAssertTrue(stack.log().contains("worker \(victim) killed by signal 9"))
    }

    func testMaxRequestsRecyclesWorkers() throws {
        let stack = try Stack(database: db, workers: 1, poolArgs: ["--max-requests", "3"])
        self.stack = stack
        let first = stack.workerPIDs()
        for _ in 0..<7 { XCTAssertEqual(try stack.client.get("/api/pricing").status, 200) }
        try Subprocess.waitUntil("recycled worker") { stack.workerPIDs().count == 1 && stack.workerPIDs() != first }
    }

    /// A request blocked on a table lock is in flight when the pool is told to stop; it
    /// still completes with 200, then the pool exits.
    func testGracefulStopFinishesInFlightRequests() throws {
        let stack = try Stack(database: db, workers: 2)
        self.stack = stack
        XCTAssertEqual(try stack.client.get("/api/health").status, 200)  // warm the connection
        let locker = try db.connect()
        try locker.execute("BEGIN")
        try locker.execute("LOCK TABLE worker_runs IN ACCESS EXCLUSIVE MODE")
        let result = InFlight { try stack.client.get("/api/health") }
        // pg_stat_activity is snapshotted per transaction: watch from another connection.
        let watcher = try db.connect()
        try Subprocess.waitUntil("health request waiting on the lock") {
            try watcher.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()")[0].int("n") == 1
        }
        kill(stack.masterPID, SIGTERM)
        try Subprocess.waitUntil("stop signal delivered") { stack.log().contains("graceful stop") }
        XCTAssertTrue(stack.pool!.isRunning, "the pool waits for the busy worker")
        try locker.execute("COMMIT")
        let response = try result.wait()
        XCTAssertEqual(response.status, 200)
        stack.pool!.waitUntilExit()
        XCTAssertEqual(stack.pool!.terminationStatus, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: stack.socket), "socket removed on stop")
    }

    func testRequestTimeLimitEndsTheWorkerAndItIsReplaced() throws {
        let stack = try Stack(database: db, workers: 1, poolArgs: ["--request-timeout", "1"])
        self.stack = stack
        XCTAssertEqual(try stack.client.get("/api/health").status, 200)
        let before = stack.workerPIDs()
        let locker = try db.connect()
        try locker.execute("BEGIN")
        try locker.execute("LOCK TABLE worker_runs IN ACCESS EXCLUSIVE MODE")
        let res = try stack.client.get("/api/health")
        try locker.execute("ROLLBACK")
        XCTAssertEqual(res.status, 502, "nginx reports the worker that was stopped")
        try Subprocess.waitUntil("replacement") { stack.workerPIDs().count == 1 && stack.workerPIDs() != before }
        XCTAssertTrue(stack.log().contains("(request time limit)"))
        XCTAssertEqual(try stack.client.get("/api/health").status, 200)
    }

    /// Workers that die as they start are respawned with a growing delay, never in a tight
    /// loop, and the master stays up.
    func testWorkersDyingAtStartAreRespawnedWithBackoff() throws {
        let bin = try TestEnvironment.binDir()
        let dir = try TestEnvironment.makeTempDir("backoff")
        var env = ProcessInfo.processInfo.environment
        env["DATABASE_URL"] = db.url
        env["PINGLASS_ENV_FILE"] = "/dev/null"
        env["CRASHPOINT"] = "worker.start"
        let pool = try Subprocess.start(bin + "/pinglass-fcgi", ["--socket", dir + "/s.sock", "--workers", "2"],
                                        environment: env, logPath: dir + "/pool.log")
        defer { pool.signal(SIGINT); pool.wait() }
        func log() -> String { (try? String(contentsOfFile: dir + "/pool.log", encoding: .utf8)) ?? "" }
        try Subprocess.waitUntil(timeout: 15, "back-off reaching 0.8 s") { log().contains("respawn in 0.8s") }
        XCTAssertTrue(pool.isRunning, "the master survives")
        let deaths = log().components(separatedBy: "exited with code 137").count - 1
        XCTAssertLessThan(deaths, 12, "respawns are spaced out, not a fork loop")
        for step in ["respawn in 0.1s", "respawn in 0.2s", "respawn in 0.4s", "respawn in 0.8s"] {
            XCTAssertTrue(log().contains(step), step)
        }
    }

    func testNginxRefusesOversizedBodies() throws {
        let stack = try Stack(database: db)
        self.stack = stack
        let big = String(repeating: "x", count: 13 << 20)
        XCTAssertEqual(try stack.http.send(.json("POST", stack.baseURL + "/api/pricing", body: Array(big.utf8))).status, 413)
    }
}

import XCTest
import Foundation
import HTTPClient
import Postgres
import PinGlassTesting
import JSON
@testable import PinGlass

/// The pool while the shared PostgreSQL is stopped or restarted under it: 503s with the
/// request id logged, routing still answering, and at most one failed request per worker
/// after a restart. The pool's other behaviour: `PoolTests` (end-to-end tier).
final class PoolOutageTests: DatabaseTestCase {
    var stack: Stack?
    override func tearDown() {
        stack?.stop()
        super.tearDown()
    }

    func testRequestIDAppearsInTheWorkersLog() throws {
        let stack = try Stack(database: db, env: ["DATABASE_URL": db.url + " connect_timeout=1"])
        self.stack = stack
        try TestEnvironment.pgControl("stop")
        defer { try? TestEnvironment.pgControl("start") }
        let res = try stack.client.get("/api/pricing")
        XCTAssertEqual(res.status, 503)
        let id = try XCTUnwrap(res.header("x-request-id"))
        try Subprocess.waitUntil("log line with the request id") { stack.log().contains("\"request_id\":\"\(id)\"") }
    }

    func testHealthIs503WhileTheDatabaseIsDownAndThePoolKeepsAnswering() throws {
        let stack = try Stack(database: db, workers: 2)
        self.stack = stack
        XCTAssertEqual(try stack.client.get("/api/health").status, 200)
        try TestEnvironment.pgControl("stop")
        var restarted = false
        defer { if !restarted { try? TestEnvironment.pgControl("start") } }
        for _ in 0..<6 {
            let res = try stack.client.get("/api/health")
            XCTAssertEqual(res.status, 503)
            XCTAssertEqual(try JSON.parse(res.body)["status"]?.stringValue, "down")
        }
        XCTAssertEqual(try stack.client.get("/api/nothing-here").status, 404, "routing still works")
        try TestEnvironment.pgControl("start")
        restarted = true
        XCTAssertEqual(try stack.client.get("/api/health").status, 200)
        XCTAssertEqual(try stack.client.get("/api/health").status, 200)
    }

    /// PostgreSQL restarted while requests are flowing: after it is back, at most one
    /// request per worker may fail before every worker has reconnected.
    func testPostgresRestartUnderLoadCostsAtMostOneRequestPerWorker() throws {
        let workers = 3
        let stack = try Stack(database: db, workers: workers)
        self.stack = stack
        for _ in 0..<20 { XCTAssertEqual(try stack.client.get("/api/health").status, 200) }
        let load = Load(stack: stack, path: "/api/health", concurrency: 4)
        try TestEnvironment.pgControl("restart")
        let duringRestart = load.stop()
        XCTAssertGreaterThan(duringRestart.total, 0)
        var failures = 0
        for _ in 0..<60 where try stack.client.get("/api/health").status != 200 { failures += 1 }
        XCTAssertLessThanOrEqual(failures, workers)
        XCTAssertEqual(try stack.client.get("/api/health").status, 200)
    }
}

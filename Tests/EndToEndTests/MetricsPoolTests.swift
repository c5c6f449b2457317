import XCTest
import Foundation
import Postgres
import PinGlassTesting
@testable import PinGlass

/// `/metrics` through real nginx and a real pool of two workers: every worker reports the
/// same request counts (the table is shared memory made by the master), the counts outlive a
/// killed worker and start over with a new pool; nginx refuses other addresses.
final class MetricsPoolTests: DatabaseTestCase {
    var stack: Stack?
    override func tearDown() {
        stack?.stop()
        super.tearDown()
    }

    static let pricing = #"pinglass_http_requests_total{method="GET",route="/api/pricing",status="200"}"#
    static let health = #"pinglass_http_requests_total{method="GET",route="/api/health",status="200"}"#
    static let scrapes = #"pinglass_http_requests_total{method="GET",route="/metrics",status="200"}"#
    static let webhook400 = #"pinglass_http_requests_total{method="POST",route="/api/payment/webhook",status="400"}"#

    func scrape(_ stack: Stack, file: StaticString = #filePath, line: UInt = #line) throws -> PrometheusScrape {
        let res = try stack.client.get("/metrics")
        XCTAssertEqual(res.status, 200, file: file, line: line)
        XCTAssertEqual(res.header("content-type"), "text/plain; version=0.0.4; charset=utf-8", file: file, line: line)
        let s = PrometheusScrape(String(decoding: res.body, as: UTF8.self))
        XCTAssertEqual(s.problems, [], file: file, line: line)
        return s
    }

    /// Which worker answers is forced, not hoped for: with one worker held by a request
    /// waiting on a table lock, the scrape can only go to the other; then the roles swap.
    func testEachWorkerReportsTheSameCounts() throws {
        let stack = try Stack(database: db, workers: 2)
        self.stack = stack
        for _ in 0..<7 { XCTAssertEqual(try stack.client.get("/api/pricing").status, 200) }
        for _ in 0..<4 { XCTAssertEqual(try scrape(stack)[Self.pricing], 7) }

        let watcher = try db.connect()
        func waitForLockWaiters(_ n: Int) throws {
            try Subprocess.waitUntil("\(n) requests waiting on a lock") {
                try watcher.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()")[0].int("n") == n
            }
        }
        // Worker A: a health check blocked on `settings` (which /metrics never reads).
        let lockA = try db.connect()
        try lockA.execute("BEGIN")
        try lockA.execute("LOCK TABLE settings IN ACCESS EXCLUSIVE MODE")
        let held = InFlight { try stack.client.get("/api/health") }
        try waitForLockWaiters(1)
        let heldSince = Date()   // the health check started before this and ends after the COMMIT below
        let fromB = try scrape(stack)
        XCTAssertEqual(fromB[Self.pricing], 7)
        XCTAssertNil(fromB[Self.health], "still in flight")
        XCTAssertEqual(fromB[Self.scrapes], 4)

        // Worker B: a webhook blocked on `webhook_logs`; then A is let go and must answer.
        let lockB = try db.connect()
        try lockB.execute("BEGIN")
        try lockB.execute("LOCK TABLE webhook_logs IN ACCESS EXCLUSIVE MODE")
        let heldB = InFlight { try stack.client.post("/api/payment/webhook", body: "not json") }
        try waitForLockWaiters(2)
        let heldFor = Date().timeIntervalSince(heldSince)
        try lockA.execute("COMMIT")
        XCTAssertEqual(try held.wait().status, 200)
        let fromA = try scrape(stack)
        XCTAssertEqual(fromA[Self.pricing], 7)
        XCTAssertEqual(fromA[Self.health], 1)
        XCTAssertEqual(fromA[Self.scrapes], 5)
        XCTAssertNil(fromA[Self.webhook400], "still in flight")

        try lockB.execute("COMMIT")
        XCTAssertEqual(try heldB.wait().status, 400)
        let after = try scrape(stack)
        XCTAssertEqual(after[Self.webhook400], 1)
        XCTAssertEqual(after[Self.scrapes], 6)
        XCTAssertEqual(after["pinglass_database_up"], 1)

        // Latency: worker A timed the health check, worker B the webhook; one scrape has both.
        XCTAssertEqual(after[#"pinglass_http_request_duration_seconds_count{method="GET",route="/api/health"}"#], 1)
        XCTAssertEqual(after[#"pinglass_http_request_duration_seconds_count{method="POST",route="/api/payment/webhook"}"#], 1)
        XCTAssertEqual(after[#"pinglass_http_request_duration_seconds_count{method="GET",route="/api/pricing"}"#], 7)
        XCTAssertEqual(after[#"pinglass_http_request_duration_seconds_count{method="GET",route="/metrics"}"#], 6)
        let healthSum = try XCTUnwrap(after[#"pinglass_http_request_duration_seconds_sum{method="GET",route="/api/health"}"#])
        XCTAssertGreaterThanOrEqual(healthSum, heldFor, "the held check took at least as long as it was held")
        // Every bound below the time it was held saw nothing of it.
        for le in RequestMetrics.latencyBuckets where le < heldFor {
            let key = #"pinglass_http_request_duration_seconds_bucket{method="GET",route="/api/health",le="\#(PrometheusText.format(le))"}"#
            XCTAssertEqual(after[key], 0, key)
        }
    }

    /// The counts live in the master's mapping: a worker killed and replaced loses none of
    /// them; a new pool starts from zero (Prometheus reads that as a counter reset).
    func testCountsOutliveAWorkerAndStartOverWithANewPool() throws {
        let stack = try Stack(database: db, workers: 2)
        self.stack = stack
        for _ in 0..<5 { XCTAssertEqual(try stack.client.get("/api/pricing").status, 200) }
        let before = Set(stack.workerPIDs())
        for pid in before { kill(pid, SIGKILL) }
        try Subprocess.waitUntil("replacement workers") {
            let now = Set(stack.workerPIDs())
            return now.count == 2 && now.isDisjoint(with: before)
        }
        XCTAssertEqual(try scrape(stack)[Self.pricing], 5)
        XCTAssertEqual(try scrape(stack)[Self.pricing], 5)

        stack.stopPool()
        try stack.startPool()
        let fresh = try scrape(stack)
        XCTAssertNil(fresh[Self.pricing])
        XCTAssertNil(fresh[Self.scrapes])
    }

    /// nginx answers /metrics only to the allowed address (the local config: 127.0.0.1); a
    /// request from 127.0.0.2 gets nginx's 403, and `/metrics/`, which nginx lets through its
    /// open location, gets the app's 404, never the metrics.
    func testOtherAddressesAreRefused() throws {
        let stack = try Stack(database: db, workers: 2)
        self.stack = stack
        func status(_ path: String, from source: String) throws -> String {
            try Subprocess.capture("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--interface", source,
                                                     stack.baseURL + path]).1
        }
        XCTAssertEqual(try status("/metrics", from: "127.0.0.1"), "200")
        XCTAssertEqual(try status("/metrics", from: "127.0.0.2"), "403")
        XCTAssertEqual(try status("/metrics?x=1", from: "127.0.0.2"), "403")
        XCTAssertEqual(try status("/%6Detrics", from: "127.0.0.2"), "403")
        XCTAssertEqual(try status("/metrics/", from: "127.0.0.2"), "404")
        XCTAssertEqual(try status("//metrics", from: "127.0.0.2"), "403")
        XCTAssertEqual(try status("/api/pricing", from: "127.0.0.2"), "200")
    }
}

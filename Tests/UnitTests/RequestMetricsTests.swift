import XCTest
import HTTPCore
import SharedCounters
import PinGlassTesting
@testable import PinGlass
@testable import PinGlassWeb
#if canImport(Glibc)
import Glibc
#endif

/// Requests by route and status in the table a pool's workers share.
final class RequestMetricsTests: XCTestCase {
    func testCountsByRouteTemplateAndStatusWithClassesForOtherStatuses() throws {
        let m = try RequestMetrics(routes: [("GET", "/api/jobs/:id"), ("POST", "/api/avatars/:id/references/:refId")])
        m.record(route: 0, status: 200)
        m.record(route: 0, status: 200)
        m.record(route: 0, status: 404)
        m.record(route: 1, status: 418)     // not an exact column: its class
        m.record(route: 1, status: 599)
        m.record(route: nil, status: 404)
        XCTAssertEqual(m.samples().map { "\($0.method) \($0.route) \($0.status) \($0.count)" }, [
            "GET /api/jobs/{id} 200 2",
            "GET /api/jobs/{id} 404 1",
            "POST /api/avatars/{id}/references/{refId} 4xx 1",
            "POST /api/avatars/{id}/references/{refId} 5xx 1",
            "* unmatched 404 1",
        ])
    }

    func testEveryStatusHasAColumnAndColumnsAreDistinct() {
        var seen = Set<Int>()
        for s in RequestMetrics.exactStatuses { XCTAssertTrue(seen.insert(RequestMetrics.column(s)).inserted, "\(s)") }
        for (status, label) in [(100, "1xx"), (299, "2xx"), (307, "3xx"), (451, "4xx"), (511, "5xx"), (0, "1xx"), (999, "5xx")] {
            XCTAssertEqual(RequestMetrics.statusLabel(RequestMetrics.column(status)), label, "\(status)")
        }
        XCTAssertEqual(RequestMetrics.statusLabel(RequestMetrics.column(429)), "429")
    }

    /// Two processes forked after the table was made add at once: every add lands, and the
    /// parent reads the exact total (the same memory, atomic adds).
    func testForkedProcessesCountIntoTheSameTable() throws {
        let table = try SharedCounterTable(count: 4)
        let perChild = 200_000
        var children: [pid_t] = []
        for _ in 0..<2 {
            let pid = fork()
            if pid == 0 {
                for _ in 0..<perChild { table.add(1) }
                _exit(0)
            }
            XCTAssertGreaterThan(pid, 0)
            children.append(pid)
        }
        for pid in children {
            var status: Int32 = 0
            XCTAssertEqual(waitpid(pid, &status, 0), pid)
            XCTAssertEqual(status, 0)
        }
        XCTAssertEqual(table[1], UInt64(2 * perChild))
        XCTAssertEqual(table[0], 0)
        XCTAssertEqual(table[3], 0)
    }

    /// Through `App.handle`: the matched route's template, HEAD on its GET route, unmatched
    /// paths and refused methods in one row, whatever the raw path was.
    func testTheAppCountsEveryAnswerOnce() throws {
        let db = try makeDatabase()
        let app = try InProcessApp(database: db)
        let metrics = try RequestMetrics.forApp()
        app.deps.requestMetrics = metrics
        XCTAssertEqual(try app.client.get("/api/pricing").status, 200)
        XCTAssertEqual(try app.client.execute("HEAD", "/api/pricing").status, 200)
        XCTAssertEqual(try app.client.get("/api/jobs/12345").status, 401)
        XCTAssertEqual(try app.client.get("/api/jobs/777").status, 401)
        XCTAssertEqual(try app.client.get("/no/such/thing").status, 404)
        XCTAssertEqual(try app.client.execute("DELETE", "/api/pricing").status, 405)
        let counts = Dictionary(uniqueKeysWithValues: metrics.samples().map { ("\($0.method) \($0.route) \($0.status)", $0.count) })
        XCTAssertEqual(counts, ["GET /api/pricing 200": 2, "GET /api/jobs/{id} 401": 2, "* unmatched 404": 1, "* unmatched 405": 1])

        let scrape = PrometheusScrape(try app.client.get("/metrics").text)
        XCTAssertEqual(scrape.problems, [])
        XCTAssertEqual(scrape[#"pinglass_http_requests_total{method="GET",route="/api/jobs/{id}",status="401"}"#], 2)
        XCTAssertEqual(scrape[#"pinglass_http_requests_total{method="GET",route="/metrics",status="200"}"#], nil,
                       "a scrape is counted after its own answer is made")
        XCTAssertEqual(PrometheusScrape(try app.client.get("/metrics").text)[#"pinglass_http_requests_total{method="GET",route="/metrics",status="200"}"#], 1)
        // Every answer is timed, under the same route rows.
        let timed = Dictionary(uniqueKeysWithValues: metrics.latencies().map { ("\($0.method) \($0.route)", $0.count) })
        XCTAssertEqual(timed, ["GET /api/pricing": 2, "GET /api/jobs/{id}": 2, "GET /metrics": 2, "* unmatched": 2])
        XCTAssertEqual(scrape[#"pinglass_http_request_duration_seconds_count{method="GET",route="/api/jobs/{id}"}"#], 2)
        XCTAssertEqual(scrape[#"pinglass_http_request_duration_seconds_bucket{method="GET",route="/api/jobs/{id}",le="+Inf"}"#], 2)
    }

    /// Each duration lands in the first bucket whose bound it does not exceed (`le`); the
    /// buckets read back cumulative, `+Inf` equal to the count, the sum in seconds.
    func testLatencyHistogramPerRoute() throws {
        let m = try RequestMetrics(routes: [("GET", "/api/jobs/:id"), ("POST", "/api/payment/webhook")])
        m.record(route: 0, status: 200, seconds: 0.004)
        m.record(route: 0, status: 200, seconds: 0.005)      // on the bound: that bucket
        m.record(route: 0, status: 404, seconds: 0.3)
        m.record(route: 0, status: 200, seconds: 42)         // past the last bound: +Inf only
        m.record(route: 1, status: 200)                       // not timed: counted, no observation
        m.record(route: nil, status: 404, seconds: -1)       // a clock step back counts as 0
        XCTAssertEqual(m.samples().reduce(0) { $0 + $1.count }, 6)
        let h = m.latencies()
        XCTAssertEqual(h.map { "\($0.method) \($0.route)" }, ["GET /api/jobs/{id}", "* unmatched"])
        XCTAssertEqual(h[0].buckets.map(\.le), RequestMetrics.latencyBuckets + [.infinity])
        XCTAssertEqual(h[0].buckets.map(\.count), [2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 4])
        XCTAssertEqual(h[0].count, 4)
        XCTAssertEqual(h[0].sum, 42.309, accuracy: 1e-6)
        XCTAssertEqual(h[1].buckets.map(\.count), Array(repeating: 1, count: 12))
        XCTAssertEqual(h[1].sum, 0)

        var text = PrometheusText()
        MetricsRoutes.writeRequests(m, into: &text)
        let scrape = PrometheusScrape(text.render())
        XCTAssertEqual(scrape.problems, [])
        XCTAssertEqual(scrape.types["pinglass_http_request_duration_seconds"], "histogram")
        let series = #"pinglass_http_request_duration_seconds_bucket{method="GET",route="/api/jobs/{id}",le="#
        XCTAssertEqual(scrape[series + #""0.005"}"#], 2)
        XCTAssertEqual(scrape[series + #""0.25"}"#], 2)
        XCTAssertEqual(scrape[series + #""0.5"}"#], 3)
        XCTAssertEqual(scrape[series + #""10"}"#], 3)
        XCTAssertEqual(scrape[series + #""+Inf"}"#], 4)
        XCTAssertEqual(scrape[#"pinglass_http_request_duration_seconds_count{method="GET",route="/api/jobs/{id}"}"#], 4)
        XCTAssertEqual(try XCTUnwrap(scrape[#"pinglass_http_request_duration_seconds_sum{method="GET",route="/api/jobs/{id}"}"#]),
                       42.309, accuracy: 1e-6)
        XCTAssertNil(scrape[#"pinglass_http_request_duration_seconds_count{method="POST",route="/api/payment/webhook"}"#],
                     "a route with no timed answer has no series")
    }

    /// Two forked processes observe into one latency table: the parent reads both.
    func testForkedProcessesObserveIntoTheSameHistogram() throws {
        let m = try RequestMetrics(routes: [("GET", "/api/pricing")])
        var children: [pid_t] = []
        for seconds in [0.002, 0.07] {
            let pid = fork()
            if pid == 0 {
                for _ in 0..<1000 { m.record(route: 0, status: 200, seconds: seconds) }
                _exit(0)
            }
            XCTAssertGreaterThan(pid, 0)
            children.append(pid)
        }
        for pid in children {
            var status: Int32 = 0
            XCTAssertEqual(waitpid(pid, &status, 0), pid)
            XCTAssertEqual(status, 0)
        }
        let h = try XCTUnwrap(m.latencies().first)
        XCTAssertEqual(h.count, 2000)
        XCTAssertEqual(h.buckets[0].count, 1000, "the 2 ms answers")
        XCTAssertEqual(h.buckets[4].count, 2000, "le=0.1 holds both")
        XCTAssertEqual(h.buckets[3].count, 1000, "le=0.05 only the fast ones")
        XCTAssertEqual(h.sum, 72, accuracy: 1e-6)
    }
}

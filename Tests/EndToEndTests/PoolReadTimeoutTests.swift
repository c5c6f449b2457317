import XCTest
import Foundation
import PinGlassTesting
@testable import PinGlass

/// Clients that connect to the pool's socket and then stall or hang up (send nothing, or only
/// part of a request) do not hold the workers, and an unfinished request never reaches the
/// handler: each such connection is cut after a short bound and the real requests queued
/// behind them are answered. Spoken straight to the socket (`FastCGIConnection`), timed with
/// the test's own clock.
extension PoolTests {
    /// Four times as many silent connections as workers, held open, then a real request: it is
    /// answered within 3 s. Before, libfcgi gave each silent connection 2 s, so the request
    /// waited 8 × 2 s / 2 workers = 8 s; now a silent connection is closed after 0.25 s.
    func testIdleConnectionsDoNotHoldTheWorkers() throws {
        let workers = 2
        let stack = try Stack(database: db, workers: workers)
        self.stack = stack
        let pricing = FastCGIConnection.params("GET", "/api/pricing")
        XCTAssertEqual(try FastCGIConnection(socketPath: stack.socket).request(params: pricing).status, 200)

        let idle = try (0..<4 * workers).map { _ in try FastCGIConnection(socketPath: stack.socket) }
        try assertAnsweredPromptly(stack, pricing, timeout: 20, "the request waited behind \(idle.count) silent connections")
        try Subprocess.waitUntil("every silent connection closed by the pool") { idle.allSatisfy { $0.isClosedByPeer() } }
        XCTAssertTrue(stack.log().contains("closed a connection that sent nothing within 0.25s"), stack.log())
    }

    /// One connection per worker stalls after its first record, another in the middle of its
    /// body: with `--read-timeout 1s` both are cut after a second (the second is answered 400,
    /// its body being short), and a real request sent meanwhile is answered within 3 s. Before,
    /// the first held its worker for ever (no time limit until the params were read) and the
    /// second for the whole request timeout (60 s), so no worker was left.
    func testStalledRequestsAreCutAfterTheReadTimeout() throws {
        let workers = 2
        let stack = try Stack(database: db, workers: workers, poolArgs: ["--read-timeout", "1s"])
        self.stack = stack
        let pricing = FastCGIConnection.params("GET", "/api/pricing")
        XCTAssertEqual(try FastCGIConnection(socketPath: stack.socket).request(params: pricing).status, 200)

        let inParams = try FastCGIConnection(socketPath: stack.socket)
        try inParams.sendBegin()
        let inBody = try FastCGIConnection(socketPath: stack.socket)
        try inBody.sendBegin()
        try inBody.sendParams(FastCGIConnection.params("POST", "/api/pricing", contentLength: 100, contentType: "application/json"))
        try inBody.sendStdinRecord(Array("{}".utf8))
        // Both are queued on the socket before the real request, so each worker takes one first.
        try assertAnsweredPromptly(stack, pricing, timeout: 20, "the request waited behind stalled connections")

        let cut = try inBody.readAnswer(timeout: 5)
        XCTAssertEqual(cut.status, 400, "the body stalled: the worker answers with what it has, never the handler")
        try Subprocess.waitUntil("the connection stalled in its params closed by the pool") { inParams.isClosedByPeer() }
        try Subprocess.waitUntil("the log says why") {
            stack.log().contains("cut a connection that had not sent its whole request within 1s")
        }
    }

    /// Every body byte sent, but not the empty stdin record that ends the request: that is not
    /// a whole request. The worker waits for the end only within `--read-timeout`, answers 400
    /// without the handler and is free again. Before, the handler ran as soon as CONTENT_LENGTH
    /// bytes were in, then the worker waited for the end under the request timeout (here 20 s),
    /// which killed it, and the request queued behind waited that long.
    func testRequestWithoutItsEndNeverReachesTheHandler() throws {
        let stack = try Stack(database: db, workers: 1, poolArgs: ["--read-timeout", "1s", "--request-timeout", "20s"])
        self.stack = stack
        let pricing = FastCGIConnection.params("GET", "/api/pricing")
        XCTAssertEqual(try FastCGIConnection(socketPath: stack.socket).request(params: pricing).status, 200)

        let unfinished = try FastCGIConnection(socketPath: stack.socket)
        try unfinished.sendBegin()
        try unfinished.sendParams(FastCGIConnection.params("GET", "/api/health", contentLength: 2, contentType: "application/json"))
        try unfinished.sendStdinRecord(Array("{}".utf8))
        // Queued before the real request: the only worker takes it first.
        try assertAnsweredPromptly(stack, pricing, timeout: 15, "the request waited behind an unfinished one")

        let cut = try unfinished.readAnswer(timeout: 5)
        XCTAssertEqual(cut.status, 400)
        XCTAssertTrue(cut.bodyText.contains("did not end"), cut.bodyText)
        try assertHealthNeverHandled(stack, pricingRequests: 2)
        XCTAssertTrue(stack.log().contains("cut a connection that had not sent its whole request within 1s"), stack.log())
    }

    /// A body above the worker's limit is refused (413) without being read, and what follows
    /// it is skipped on the read timer too: a client that then stalls is answered after
    /// `--read-timeout` and the worker is free. Before, the skipping ran after the answer,
    /// under the request timeout (20 s), which killed the worker with the 413 still unsent.
    func testTooLargeBodyThatStallsIsRefusedWithinTheReadTimeout() throws {
        let stack = try Stack(database: db, workers: 1, poolArgs: ["--read-timeout", "1s", "--request-timeout", "20s"])
        self.stack = stack
        let pricing = FastCGIConnection.params("GET", "/api/pricing")
        XCTAssertEqual(try FastCGIConnection(socketPath: stack.socket).request(params: pricing).status, 200)

        let huge = try FastCGIConnection(socketPath: stack.socket)
        try huge.sendBegin()
        try huge.sendParams(FastCGIConnection.params("POST", "/api/pricing", contentLength: 64 << 20, contentType: "application/json"))
        try huge.sendStdinRecord(Array("{}".utf8))
        let started = Date()
        let refused = try huge.readAnswer(timeout: 15)
        XCTAssertEqual(refused.status, 413)
        XCTAssertLessThan(Date().timeIntervalSince(started), 3, "the refusal waited for the request timeout")
        XCTAssertEqual(try FastCGIConnection(socketPath: stack.socket).request(params: pricing, timeout: 5).status, 200)
    }

    /// A client that hangs up between two params (whole pairs sent, not the empty record that
    /// ends them) is dropped unanswered at once (well before the 5 s read timeout) and the
    /// worker serves the next request. libfcgi takes that end of input for the end of the
    /// params; before, the handler got the half request and answered it.
    func testConnectionEndingBetweenParamsNeverReachesTheHandler() throws {
        let stack = try Stack(database: db, workers: 1, poolArgs: ["--read-timeout", "5s", "--request-timeout", "20s"])
        self.stack = stack
        let pricing = FastCGIConnection.params("GET", "/api/pricing")
        XCTAssertEqual(try FastCGIConnection(socketPath: stack.socket).request(params: pricing).status, 200)

        let halfway = try FastCGIConnection(socketPath: stack.socket)
        try halfway.sendBegin()
        try halfway.sendParamsRecord(FastCGIConnection.params("GET", "/api/health"))
        halfway.closeSending()
        let hungUp = Date()
        XCTAssertThrowsError(try halfway.readAnswer(timeout: 10)) { error in
            XCTAssertEqual("\(error)", "the worker closed the connection without an answer")
        }
        XCTAssertLessThan(Date().timeIntervalSince(hungUp), 3, "dropped for hanging up, not by the read timer")
        try assertAnsweredPromptly(stack, pricing, timeout: 15, "the worker was still busy with the half request")
        try assertHealthNeverHandled(stack, pricingRequests: 2)
        XCTAssertTrue(stack.log().contains("dropped a connection that ended in the middle of its params"), stack.log())
    }

    /// The handler counts every request it answers in `/metrics` (shared by all workers):
    /// the dropped `/api/health` must not be there, the real requests must.
    func assertHealthNeverHandled(_ stack: Stack, pricingRequests: Double, file: StaticString = #filePath, line: UInt = #line) throws {
        let res = try stack.client.get("/metrics")
        XCTAssertEqual(res.status, 200, file: file, line: line)
        let scrape = PrometheusScrape(String(decoding: res.body, as: UTF8.self))
        XCTAssertEqual(scrape[MetricsPoolTests.pricing], pricingRequests, file: file, line: line)
        let health = scrape.family("pinglass_http_requests_total").keys.filter { $0.contains(#"route="/api/health""#) }
        XCTAssertEqual(health, [], "the handler saw the incomplete request", file: file, line: line)
    }

    /// A real request, sent now, is answered 200 within 3 s (the old pool made it wait for the
    /// connections ahead of it); `timeout` bounds the wait for the answer itself.
    func assertAnsweredPromptly(_ stack: Stack, _ params: [(String, String)], timeout: Double, _ why: String,
                                file: StaticString = #filePath, line: UInt = #line) throws {
        let started = Date()
        let answer = try FastCGIConnection(socketPath: stack.socket).request(params: params, timeout: timeout)
        XCTAssertEqual(answer.status, 200, file: file, line: line)
        XCTAssertLessThan(Date().timeIntervalSince(started), 3, why, file: file, line: line)
    }
}

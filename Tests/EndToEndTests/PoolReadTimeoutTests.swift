import XCTest
import Foundation
import PinGlassTestSupport
@testable import PinGlass

/// Clients that connect to the pool's socket and then stall (send nothing, or only the start
/// of a request) do not hold the workers: each such connection is cut after a short bound and
/// the real requests queued behind them are answered. Spoken straight to the socket
/// (`FastCGIConnection`), timed with the test's own clock.
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
        let started = Date()
        let answer = try FastCGIConnection(socketPath: stack.socket).request(params: pricing, timeout: 20)
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertEqual(answer.status, 200)
        XCTAssertLessThan(elapsed, 3, "the request waited behind \(idle.count) silent connections")
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
        let started = Date()
        let answer = try FastCGIConnection(socketPath: stack.socket).request(params: pricing, timeout: 20)
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertEqual(answer.status, 200)
        XCTAssertLessThan(elapsed, 3, "the request waited behind stalled connections")

        let cut = try inBody.readAnswer(timeout: 5)
        XCTAssertEqual(cut.status, 400, "the body stalled: the worker answers with what it has, never the handler")
        try Subprocess.waitUntil("the connection stalled in its params closed by the pool") { inParams.isClosedByPeer() }
        try Subprocess.waitUntil("the log says why") {
            stack.log().contains("cut a connection that had not sent its whole request within 1s")
        }
    }
}

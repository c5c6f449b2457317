import XCTest
import HTTPClient
import PinGlassTesting

/// Streaming curl multi: results come back as each transfer completes, and starts are paced
/// per host. Timings are measured where the server sees them (arrival on a loopback server),
/// not from the client's own sleeps.
final class HTTPBatchTests: XCTestCase {
    let http = HTTPClient()

    static func echo(_ req: LoopbackHTTPServer.Received) -> LoopbackHTTPServer.Reply {
        .init(body: Array(req.path.utf8), delay: req.path.hasPrefix("/slow") ? 1.5 : 0)
    }

    /// The fast answer (and a follow-up added from its callback) is handed over while the
    /// slow one is still unanswered on the server.
    func testEachResultArrivesAsItsTransferCompletes() throws {
        let server = try LoopbackHTTPServer(handler: Self.echo)
        defer { server.stop() }
        let batch = HTTPBatch()
        batch.add(HTTPRequest(url: server.url + "/slow"))
        batch.add(HTTPRequest(url: server.url + "/fast"))
        var seen: [(path: String, slowAnswered: Bool)] = []
        batch.run { id, result in
            let path = (try? result.get().text) ?? "error"
            let slowAnswered = server.received.first { $0.path == "/slow" }?.answeredAt != nil
            seen.append((path, slowAnswered))
            if path == "/fast" { XCTAssertEqual(batch.add(HTTPRequest(url: server.url + "/fast-follow-up")), 2) }
        }
        XCTAssertEqual(seen.map(\.path), ["/fast", "/fast-follow-up", "/slow"])
        // The slow answer had not been sent when the fast results were handed over. (When the
        // slow one itself arrives, the server may not have noted its send yet: not asserted.)
        XCTAssertEqual(seen.prefix(2).map(\.slowAnswered), [false, false])
    }

    func testSendAllKeepsRequestOrderAndReportsFailures() throws {
        let server = try LoopbackHTTPServer(handler: Self.echo)
        defer { server.stop() }
        let closed = "http://127.0.0.1:\(Subprocess.freePort())/nobody"
        let results = http.sendAll([HTTPRequest(url: server.url + "/slow"), HTTPRequest(url: closed), HTTPRequest(url: server.url + "/b")])
        XCTAssertEqual(try results[0].get().text, "/slow")
        guard case .failure(.transport) = results[1] else { return XCTFail("\(results[1])") }
        XCTAssertEqual(try results[2].get().text, "/b")
    }

    /// At most N starts in any second on the server, at close to N per second, across two
    /// batches sharing one pacer; without a pacer the same requests arrive at once.
    func testPacerHoldsNPerSecondAtTheServer() throws {
        let server = try LoopbackHTTPServer(handler: Self.echo)
        defer { server.stop() }
        let pacer = HTTPPacer(perSecond: 10)
        let requests = (0..<12).map { HTTPRequest(url: server.url + "/r\($0)") }
        var done = 0
        http.stream(requests, pacer: pacer) { _, r in if (try? r.get().status) == 200 { done += 1 } }
        http.stream(requests, pacer: pacer) { _, r in if (try? r.get().status) == 200 { done += 1 } }
        XCTAssertEqual(done, 24)
        let arrivals = server.received.map(\.arrivedAt).sorted()
        assertPaced(arrivals, perSecond: 10)
        let rate = Double(arrivals.count - 1) / (arrivals.last! - arrivals.first!)
        // A loose floor: a pacer that waits a whole extra slot per request (5/s) fails it, while a
        // loaded machine's scheduling delays (8.4/s seen with every core busy) do not.
        XCTAssertGreaterThan(rate, 6.5, "paced far below the allowed rate")

        let unpaced = try LoopbackHTTPServer(handler: Self.echo)
        defer { unpaced.stop() }
        _ = http.sendAll((0..<12).map { HTTPRequest(url: unpaced.url + "/u\($0)") })
        let burst = unpaced.received.map(\.arrivedAt).sorted()
        XCTAssertLessThan(burst.last! - burst.first!, 0.5, "without a pacer the requests go out together")
    }

    /// Per host: each host gets its own N per second, so two hosts finish in half the time;
    /// `perHost: false` paces the batch as one stream.
    func testPacingIsPerHostUnlessAskedForTheBatch() throws {
        let a = try LoopbackHTTPServer(handler: Self.echo), b = try LoopbackHTTPServer(handler: Self.echo)
        defer { a.stop(); b.stop() }
        let mixed = (0..<8).flatMap { [HTTPRequest(url: a.url + "/a\($0)"), HTTPRequest(url: b.url + "/b\($0)")] }
        http.stream(mixed, pacer: HTTPPacer(perSecond: 5)) { _, _ in }
        for server in [a, b] { assertPaced(server.received.map(\.arrivedAt).sorted(), perSecond: 5) }
        let both = (a.received + b.received).map(\.arrivedAt).sorted()
        XCTAssertLessThan(both.last! - both.first!, 2.0, "two hosts are paced independently")

        let c = try LoopbackHTTPServer(handler: Self.echo), d = try LoopbackHTTPServer(handler: Self.echo)
        defer { c.stop(); d.stop() }
        let mixed2 = (0..<6).flatMap { [HTTPRequest(url: c.url + "/c\($0)"), HTTPRequest(url: d.url + "/d\($0)")] }
        http.stream(mixed2, pacer: HTTPPacer(perSecond: 10, perHost: false)) { _, _ in }
        assertPaced((c.received + d.received).map(\.arrivedAt).sorted(), perSecond: 10)
    }

    /// No `perSecond + 1` arrivals within one second, allowing 50 ms of transit jitter.
    func assertPaced(_ arrivals: [Double], perSecond n: Int, file: StaticString = #filePath, line: UInt = #line) {
        for i in 0..<max(0, arrivals.count - n) {
            XCTAssertGreaterThanOrEqual(arrivals[i + n] - arrivals[i], 0.95,
                                        "\(n + 1) requests arrived within one second (from #\(i))", file: file, line: line)
        }
    }
}

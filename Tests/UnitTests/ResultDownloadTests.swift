import Foundation
import HTTPClient
import PinGlassTesting
import Postgres
import XCTest
import PinGlassConfig
import ProviderWire
@testable import PinGlass

/// Where Kie's results may be downloaded from, and how: `KIE_RESULT_HOSTS` matched exactly
/// (or by an explicit `*.`), non-public addresses refused when the connection is made (a
/// real loopback server that must never see a connection), and a round's downloads at once.
final class ResultDownloadTests: PipelineTestCase {
    var kie: FakeKie!

    override func setUpWithError() throws {
        try super.setUpWithError()
        kie = FakeKie()
        deps.kie = kie
    }

    func pass(_ d: Dependencies) throws -> KiePoller.Report {
        try KiePoller(deps: d, config: .init()).runOnce(now: d.clock(), deadline: d.clock() + 55)
    }

    func succeed(_ task: (id: Int, kieID: String), _ url: String) {
        kie.states[task.kieID] = .success(KieTaskInfo(taskID: task.kieID, state: .success, resultURLs: [url]))
    }

    func state(_ taskID: Int) throws -> String? {
        try c.query("SELECT state FROM generation_tasks WHERE id = $1", [taskID])[0].string("state")
    }

    func testHostsMatchExactlyOrThroughAnExplicitWildcard() throws {
        let download = ResultDownload(allowedHosts: ["CDN.kie.test", "*.files.kie.test", "127.0.0.1"], maxBytes: 1 << 20, timeout: 5)
        XCTAssertTrue(download.allows("https://cdn.kie.test/r/1.png"))
        XCTAssertFalse(download.allows("https://a.cdn.kie.test/r/1.png"), "a subdomain of an exact entry")
        XCTAssertFalse(download.allows("https://evil.cdn.kie.test/r/1.png"))
        XCTAssertTrue(download.allows("https://a.files.kie.test/r/1.png"), "a subdomain of a *. entry")
        XCTAssertTrue(download.allows("https://a.b.files.kie.test:8443/r/1.png"))
        XCTAssertFalse(download.allows("https://files.kie.test/r/1.png"), "*. means subdomains, not the domain itself")
        XCTAssertFalse(download.allows("https://evilfiles.kie.test/r/1.png"))
        XCTAssertTrue(download.allows("http://127.0.0.1:8080/r/1.png"))

        for good in ["tempfile.aiquickdraw.com", "*.aiquickdraw.com", "127.0.0.1", "::1", "localhost", "cdn-1.example"] {
            XCTAssertTrue(Config.isValidResultHostEntry(good), good)
        }
        for bad in [".aiquickdraw.com", "*.", "*", "a.*.example", "https://cdn.example", "cdn.example/path", "cdn..example", "cdn.example."] {
            XCTAssertFalse(Config.isValidResultHostEntry(bad), bad)
        }
        XCTAssertThrowsError(try db.config(["KIE_RESULT_HOSTS": "tempfile.aiquickdraw.com, .aiquickdraw.com"])) {
            XCTAssertTrue("\($0)".contains("KIE_RESULT_HOSTS is invalid"), "\($0)")
        }
        // What doctor warns about: entries that relied on the old subdomain match.
        XCTAssertEqual(ResultDownload.entriesMatchingOnlyThemselves(
            ["aiquickdraw.com", "tempfile.aiquickdraw.com", "*.aiquickdraw.com", "127.0.0.1", "::1", "localhost", "Cdn.Example"]),
            ["aiquickdraw.com", "cdn.example"])
    }

    func testNonPublicAddressesAreClassified() {
        let nonPublic = ["127.0.0.1", "127.255.0.9", "0.0.0.0", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
                        "100.64.0.1", "100.127.255.255", "169.254.169.254", "224.0.0.1", "255.255.255.255",
                        "::", "::1", "fe80::1", "febf::1", "fc00::1", "fd12:3456::1", "ff02::1",
                        "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::127.0.0.1", "64:ff9b::a00:1"]
        let public_ = ["8.8.8.8", "1.1.1.1", "172.15.255.255", "172.32.0.1", "100.63.255.255", "100.128.0.1", "169.253.0.1",
                       "2001:4860:4860::8888", "2a00:1450::1", "::ffff:8.8.8.8", "64:ff9b::808:808"]
        for a in nonPublic { XCTAssertEqual(HTTPClient.isInternalAddress(a), true, a) }
        for a in public_ { XCTAssertEqual(HTTPClient.isInternalAddress(a), false, a) }
        XCTAssertNil(HTTPClient.isInternalAddress("cdn.example"))
    }

    /// The refusal is at connect time, on the resolved address: `localhost` (a name) and the
    /// IPv4-mapped form of 127.0.0.1 are refused like 127.0.0.1, and the server never sees a
    /// connection; the same request without the check reaches it.
    func testTheClientRefusesInternalAddressesBeforeConnecting() throws {
        let server = try LoopbackHTTPServer { _ in .init(status: 200, body: GenerationFixtures.jpeg(1)) }
        defer { server.stop() }
        let client = HTTPClient()
        for url in [server.url + "/r.jpg", "http://localhost:\(server.port)/r.jpg", "http://[::ffff:127.0.0.1]:\(server.port)/r.jpg"] {
            XCTAssertThrowsError(try client.send(HTTPRequest(url: url, timeout: 5, refuseInternalAddresses: true)), url) { error in
                guard case HTTPClientError.refusedAddress = error else { return XCTFail("\(url): \(error)") }
            }
        }
        XCTAssertEqual(server.accepted, 0, "no connection reached the server")
        XCTAssertEqual(try client.send(HTTPRequest(url: server.url + "/r.jpg", timeout: 5)).status, 200)
        XCTAssertEqual(server.accepted, 1)
    }

    /// A result URL on an allowed host that is a loopback address is refused at connect when
    /// Kie is not local: counted as a refused URL, the task keeps running, nothing reaches the
    /// server. With KIE_API_URL on loopback (the local simulator), the same URLs are taken.
    func testAResultOnALoopbackAddressIsRefusedUnlessKieIsLocal() throws {
        let server = try LoopbackHTTPServer { req in .init(status: 200, body: GenerationFixtures.jpeg(req.path.count)) }
        defer { server.stop() }
        let remote = try PollFixtures.deps(db, env: ["KIE_API_URL": "https://api.kie.ai", "KIE_RESULT_HOSTS": "127.0.0.1,localhost"])
        remote.kie = kie
        let job = try JobFixtures.running(remote, telegramID: 8901, photos: 7)
        succeed(job.tasks[0], server.url + "/r0.jpg")
        succeed(job.tasks[1], "http://localhost:\(server.port)/r1.jpg")

        let refused = try pass(remote)
        XCTAssertEqual(refused.succeeded, 0)
        XCTAssertEqual(refused.errors, 2)
        XCTAssertEqual(try Counters.value(c, "kie.result_url_refused"), 2)
        XCTAssertEqual(try state(job.tasks[0].id), "running")
        XCTAssertEqual(try state(job.tasks[1].id), "running")
        XCTAssertEqual(server.accepted, 0, "refused before any connection")
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM generated_photos")[0].requiredInt("n"), 0)

        let local = try PollFixtures.deps(db, env: ["KIE_RESULT_HOSTS": "127.0.0.1,localhost"])
        local.kie = kie
        try c.execute("UPDATE generation_tasks SET run_at = now() WHERE state = 'running'")
        XCTAssertEqual(try pass(local).succeeded, 2)
        XCTAssertEqual(server.accepted, 2)
    }

    /// The round's results download at once: the server answers only once all four
    /// downloads are open together (or, after 3 s, with 503). One after another, the first
    /// would wait alone and fail, and so would each after it.
    func testARoundsResultsDownloadAtOnce() throws {
        let barrier = Barrier(parties: 4, timeout: 3)
        let server = try LoopbackHTTPServer { req in
            barrier.arrive() ? .init(status: 200, body: GenerationFixtures.jpeg(req.path.count + 7)) : .init(status: 503)
        }
        defer { server.stop() }
        let job = try JobFixtures.running(deps, telegramID: 8902, photos: 7)
        for (i, t) in job.tasks.prefix(4).enumerated() { succeed(t, server.url + "/r\(i).jpg") }

        let report = try pass(deps)
        XCTAssertEqual(report.succeeded, 4, "all four open at once")
        XCTAssertEqual(report.errors, 0)
        XCTAssertEqual(barrier.mostWaiting, 4)
        for t in job.tasks.prefix(4) { XCTAssertEqual(try state(t.id), "succeeded") }
    }

    /// A slow store must not time out the round's other downloads: each upload takes 1.5 s,
    /// the results arrive 0, 0.5, 1 and 2 s after their requests, and a download may take
    /// 3 s. Taking each result inside the transfer loop stalled the others for the uploads'
    /// sum (4.5 s before the last was driven again): it timed out and its task went on.
    func testASlowStoreDoesNotTimeOutTheOtherDownloads() throws {
        let delays = [0.0, 0.5, 1.0, 2.0]
        let server = try LoopbackHTTPServer { req in
            let i = Int(req.path.dropFirst(2).prefix(1)) ?? 0
            return .init(status: 200, body: GenerationFixtures.jpeg(i + 11), delay: delays[i])
        }
        defer { server.stop() }
        let slow = SlowMediaStore(deps.media, delay: 1.5)
        deps.media = slow
        let job = try JobFixtures.running(deps, telegramID: 8903, photos: 7)
        for (i, t) in job.tasks.prefix(4).enumerated() { succeed(t, server.url + "/r\(i).jpg") }

        var config = KiePoller.Config()
        config.downloadTimeout = 3
        let report = try KiePoller(deps: deps, config: config).runOnce(now: deps.clock(), deadline: deps.clock() + 55)
        XCTAssertEqual(report.errors, 0, "no download timed out")
        XCTAssertEqual(report.succeeded, 4)
        XCTAssertEqual(try Counters.value(c, "kie.download_failures"), 0)
        XCTAssertEqual(slow.puts, 4)
        for t in job.tasks.prefix(4) { XCTAssertEqual(try state(t.id), "succeeded") }
    }
}

/// A store whose every upload takes `delay` seconds (a slow bucket), otherwise the real one.
final class SlowMediaStore: MediaStore, @unchecked Sendable {
    let inner: any MediaStore
    let delay: Double
    private(set) var puts = 0
    init(_ inner: any MediaStore, delay: Double) { self.inner = inner; self.delay = delay }
    func put(key: String, bytes: [UInt8], contentType: String) throws {
        Thread.sleep(forTimeInterval: delay)
        puts += 1
        try inner.put(key: key, bytes: bytes, contentType: contentType)
    }
    func get(key: String) throws -> [UInt8] { try inner.get(key: key) }
    func delete(key: String) throws { try inner.delete(key: key) }
    func signedURL(key: String, expiresIn: Int, now: Double) -> String { inner.signedURL(key: key, expiresIn: expiresIn, now: now) }
    func list(prefix: String, after: String?, limit: Int) throws -> [StoredObject] { try inner.list(prefix: prefix, after: after, limit: limit) }
}

/// Lets callers through once `parties` have arrived; one that waits longer than `timeout`
/// goes through alone (false). Records the most callers that were waiting together.
final class Barrier: @unchecked Sendable {
    let parties: Int
    let timeout: Double
    private let condition = NSCondition()
    private var arrived = 0
    private var most = 0
    /// The most callers that were inside `arrive` together.
    var mostWaiting: Int { condition.lock(); defer { condition.unlock() }; return most }

    init(parties: Int, timeout: Double) { self.parties = parties; self.timeout = timeout }

    func arrive() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        arrived += 1
        most = max(most, arrived)
        condition.broadcast()
        let until = Date(timeIntervalSinceNow: timeout)
        while arrived < parties {
            if !condition.wait(until: until) { arrived -= 1; return false }
        }
        return true
    }
}

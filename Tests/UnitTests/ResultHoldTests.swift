import Foundation
import HTTPClient
import PinGlassTesting
import Postgres
import XCTest
import ProviderWire
@testable import PinGlass

/// While a poller downloads a task's result, no other poller may claim the task, not even
/// after a Kie callback: it would download and store the same photo a second time.
final class ResultHoldTests: PipelineTestCase {
    var kie: FakeKie!

    override func setUpWithError() throws {
        try super.setUpWithError()
        kie = FakeKie()
        deps.kie = kie
    }

    /// The result server holds its answer until the test lets it go: meanwhile the task's
    /// `run_at` is past the download's time limit, a second poller's claim gets nothing, and a
    /// callback (`markDue`) does not make it due. Then the first poller stores the photo.
    func testASecondPollerCannotClaimATaskWhoseResultIsDownloading() throws {
        let arrived = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let server = try LoopbackHTTPServer { _ in
            arrived.signal()
            _ = release.wait(timeout: .now() + 20)
            return .init(status: 200, body: GenerationFixtures.jpeg(5))
        }
        defer { release.signal(); server.stop() }
        let job = try JobFixtures.running(deps, telegramID: 8911, photos: 7)
        let task = job.tasks[0]
        try c.execute("UPDATE generation_tasks SET run_at = now() + interval '1 hour' WHERE id <> $1", [task.id])
        kie.states[task.kieID] = .success(KieTaskInfo(taskID: task.kieID, state: .success, resultURLs: [server.url + "/r.jpg"]))

        let first = Locked(try KiePoller(deps: deps))
        let report = Locked<KiePoller.Report?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread {
            let poller = first.value
            let r = try? poller.runOnce(now: poller.deps.clock(), deadline: poller.deps.clock() + 55)
            report.mutate { $0 = r }
            done.signal()
        }.start()
        XCTAssertEqual(arrived.wait(timeout: .now() + 20), .success, "the download started")

        XCTAssertEqual(try c.query("""
            SELECT run_at > now() + make_interval(secs => $2) AS held FROM generation_tasks WHERE id = $1
            """, [task.id, KiePollerDefaults.downloadTimeout])[0].bool("held"), true, "run_at is past the download's limit")
        let secondDeps = try PollFixtures.deps(db)
        secondDeps.kie = FakeKie()
        let second = try KiePoller(deps: secondDeps)
        XCTAssertEqual(try second.claimDue(limit: 20).map(\.id), [], "the second poller claims nothing")
        XCTAssertTrue(try KiePoller.markDue(c, kieTaskID: task.kieID), "the callback finds the task")
        XCTAssertEqual(try second.claimDue(limit: 20).map(\.id), [], "nor after a Kie callback")

        release.signal()
        XCTAssertEqual(done.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(report.value?.succeeded, 1)
        let row = try c.query("SELECT state, lease_until IS NULL AS free FROM generation_tasks WHERE id = $1", [task.id])[0]
        XCTAssertEqual(row.string("state"), "succeeded")
        XCTAssertEqual(row.bool("free"), true)
        XCTAssertEqual(server.received.count, 1, "downloaded once")
    }

    /// A result that could not be downloaded lets the task go: due again one poll interval
    /// later (not at the end of the hold), and a callback makes it due at once again.
    func testAFailedDownloadReleasesTheHold() throws {
        let server = try LoopbackHTTPServer { _ in .init(status: 503) }
        defer { server.stop() }
        let job = try JobFixtures.running(deps, telegramID: 8912, photos: 7)
        let task = job.tasks[0]
        try c.execute("UPDATE generation_tasks SET run_at = now() + interval '1 hour' WHERE id <> $1", [task.id])
        kie.states[task.kieID] = .success(KieTaskInfo(taskID: task.kieID, state: .success, resultURLs: [server.url + "/r.jpg"]))

        let report = try KiePoller(deps: deps).runOnce(now: deps.clock(), deadline: deps.clock() + 55)
        XCTAssertEqual(report.errors, 1)
        let row = try c.query("""
            SELECT state, lease_until IS NULL AS free, run_at <= now() + make_interval(secs => $2) AS soon
            FROM generation_tasks WHERE id = $1
            """, [task.id, KiePollerDefaults.pollIntervalSeconds])[0]
        XCTAssertEqual(row.string("state"), "running")
        XCTAssertEqual(row.bool("free"), true)
        XCTAssertEqual(row.bool("soon"), true)
        XCTAssertTrue(try KiePoller.markDue(c, kieTaskID: task.kieID))
        XCTAssertEqual(try KiePoller(deps: deps).claimDue(limit: 20).map(\.id), [task.id])
    }

    /// A public install that reaches Kie through a local proxy (KIE_API_URL loopback) keeps
    /// the internal-address check: a result URL on loopback is refused at connect, and the
    /// server sees no connection. Only a local install (PUBLIC_BASE_URL loopback) skips it.
    func testAPublicInstallWithALoopbackKieURLRefusesInternalAddresses() throws {
        let server = try LoopbackHTTPServer { _ in .init(status: 200, body: GenerationFixtures.jpeg(9)) }
        defer { server.stop() }
        let proxied = try PollFixtures.deps(db, env: ["PUBLIC_BASE_URL": "https://pinglass.example",
                                                      "KIE_API_URL": "http://127.0.0.1:8899/kie", "KIE_RESULT_HOSTS": "127.0.0.1"])
        proxied.kie = kie
        XCTAssertFalse(ResultDownload.internalAddressesAllowed(proxied.config))
        let job = try JobFixtures.running(proxied, telegramID: 8913, photos: 7)
        let task = job.tasks[0]
        kie.states[task.kieID] = .success(KieTaskInfo(taskID: task.kieID, state: .success, resultURLs: [server.url + "/r.jpg"]))

        let report = try KiePoller(deps: proxied).runOnce(now: proxied.clock(), deadline: proxied.clock() + 55)
        XCTAssertEqual(report.succeeded, 0)
        XCTAssertEqual(try Counters.value(c, "kie.result_url_refused"), 1, "refused at connect")
        XCTAssertEqual(server.accepted, 0, "no connection reached the server")

        let local = try PollFixtures.deps(db, env: ["PUBLIC_BASE_URL": "http://127.0.0.1:8080", "KIE_API_URL": "http://127.0.0.1:8899/kie"])
        local.kie = kie
        XCTAssertTrue(ResultDownload.internalAddressesAllowed(local.config))
        try c.execute("UPDATE generation_tasks SET run_at = now() WHERE id = $1", [task.id])
        XCTAssertEqual(try KiePoller(deps: local).runOnce(now: local.clock(), deadline: local.clock() + 55).succeeded, 1)
        XCTAssertEqual(server.accepted, 1)
    }
}

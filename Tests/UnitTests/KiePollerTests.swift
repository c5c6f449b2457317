import Foundation
import PinGlassTesting
import Postgres
import XCTest
import PinGlassConfig
import ProviderWire
@testable import PinGlass

/// `pinglass poll-kie` in-process: FakeKie answers recordInfo, results are downloaded over
/// real HTTP from nginx on loopback and stored in a real folder.
final class KiePollerTests: DatabaseTestCase {
    var files: StaticFileServer!
    var deps: Dependencies!
    var kie: FakeKie!
    var c: Connection!

    override func setUpWithError() throws {
        try super.setUpWithError()
        files = try StaticFileServer()
        kie = FakeKie()
        deps = try makeDeps()
        c = try db.connect()
    }
    override func tearDown() {
        files?.stop()
        super.tearDown()
    }

    func makeDeps(_ env: [String: String] = [:]) throws -> Dependencies {
        let d = try PollFixtures.deps(db, env: env)
        d.kie = kie
        return d
    }

    @discardableResult
    func pass(_ deps: Dependencies? = nil, config: KiePoller.Config = .init()) throws -> KiePoller.Report {
        let d = deps ?? self.deps!
        return try KiePoller(deps: d, config: config).runOnce(now: d.clock(), deadline: d.clock() + 55)
    }

    /// Kie says the task succeeded with this URL.
    func succeed(_ task: (id: Int, kieID: String), _ url: String) {
        kie.states[task.kieID] = .success(KieTaskInfo(taskID: task.kieID, state: .success, resultURLs: [url]))
    }

    /// A distinct image per task, served by nginx; its bytes.
    func serveImage(_ task: (id: Int, kieID: String), png: Bool = false) throws -> [UInt8] {
        let bytes = png ? GenerationFixtures.png(task.id) : GenerationFixtures.jpeg(task.id, size: 4096)
        succeed(task, try files.put("results/\(task.kieID).\(png ? "png" : "jpg")", bytes: bytes))
        return bytes
    }

    func makeAllDue() throws { try c.execute("UPDATE generation_tasks SET run_at = now() WHERE state = 'running'") }
    func task(_ id: Int) throws -> Row { try c.query("SELECT state, fail_code, fail_message FROM generation_tasks WHERE id = $1", [id])[0] }
    func jobStatus(_ id: Int) throws -> String? { try c.query("SELECT status FROM generation_jobs WHERE id = $1", [id])[0].string("status") }
    func count(_ sql: String, _ params: [PostgresEncodable?] = []) throws -> Int { try c.query(sql, params)[0].requiredInt("n") }
    func counter(_ name: String) throws -> Int { try Counters.value(c, name) }

    func testASuccessIsStoredByteForByteUnderItsKeyAndTheJobFinishes() throws {
        let job = try JobFixtures.running(deps, telegramID: 8101, photos: 7)
        var served: [Int: [UInt8]] = [:]
        for (i, t) in job.tasks.enumerated() { served[t.id] = try serveImage(t, png: i % 2 == 0) }

        let report = try pass()
        XCTAssertEqual(report.polled, 7)
        XCTAssertEqual(report.succeeded, 7)
        XCTAssertEqual(report.jobsFinished, 1)
        XCTAssertEqual(report.errors, 0)

        let photos = try c.query("SELECT task_id, storage_key, content_type, byte_size, sha256 = sha256(''::bytea) AS empty FROM generated_photos WHERE job_id = $1", [job.id])
        XCTAssertEqual(photos.count, 7)
        for p in photos {
            let taskID = p.requiredInt("task_id")
            let bytes = try XCTUnwrap(served[taskID])
            let type = p.requiredString("content_type")
            XCTAssertEqual(type, bytes[0] == 0x89 ? "image/png" : "image/jpeg")
            let key = MediaKeys.result(jobID: job.id, taskID: taskID, contentType: type, secret: GenerationFixtures.mediaSecret)
            XCTAssertEqual(p.string("storage_key"), key, "the deterministic HMAC key")
            XCTAssertNotNil(key.wholeMatch(of: /generated\/[0-9a-f]{32}\.(jpg|png)/), "an unguessable name: \(key)")
            XCTAssertEqual(try deps.media.get(key: key), bytes, "the exact bytes")
            XCTAssertEqual(p.int("byte_size"), bytes.count)
        }
        XCTAssertEqual(try count("SELECT count(*)::int AS n FROM generated_photos p JOIN generation_tasks t ON t.id = p.task_id WHERE t.state = 'succeeded'"), 7)
        XCTAssertEqual(try count("SELECT count(*)::int AS n FROM generated_photos WHERE sha256 IS NULL OR length(sha256) <> 32"), 0)
        XCTAssertEqual(try jobStatus(job.id), "completed")
        XCTAssertEqual(try count("SELECT count(*)::int AS n FROM telegram_deliveries WHERE job_id = $1", [job.id]), 2)
        XCTAssertEqual(try count("SELECT count(*)::int AS n FROM refunds"), 0)
    }

    /// Progressive delivery: the stored photo that completes a batch of a running job makes
    /// its row in the same commit, and `deliver` is notified; the finish makes the rest. 23
    /// tasks, 5 failed: the short batch of 3 first, an album of 10, the 5 left at the end,
    /// then the message; each photo in exactly one row, and a deliverer sends three albums
    /// holding the job's 18 photos.
    func testStoredPhotosMakeTheirBatchesBeforeTheJobEnds() throws {
        let job = try JobFixtures.running(deps, telegramID: 8150, photos: 23)
        let listener = Listener(conninfo: db.url, channels: ["deliver"])
        listener.wait(timeout: 0)   // listening from now on
        for t in job.tasks.prefix(12) { _ = try serveImage(t) }
        try pass()
        XCTAssertEqual(try jobStatus(job.id), "processing", "11 tasks still generating")
        var rows = try DeliveryFixtures.rows(c, jobID: job.id)
        XCTAssertEqual(rows.map(\.kind), ["album"])
        XCTAssertEqual(rows[0].photoIDs.count, 3, "the short batch of 23")
        XCTAssertTrue(listener.wait(timeout: 5), "deliver was notified by the commit")
        XCTAssertEqual(try count("SELECT count(*)::int AS n FROM generated_photos WHERE job_id = $1 AND delivery_id IS NULL", [job.id]), 9)

        for t in job.tasks[12..<18] { _ = try serveImage(t) }
        for t in job.tasks.suffix(5) { kie.states[t.kieID] = .success(KieTaskInfo(taskID: t.kieID, state: .fail, failCode: "500")) }
        try makeAllDue()
        try pass()
        XCTAssertEqual(try jobStatus(job.id), "partial")
        rows = try DeliveryFixtures.rows(c, jobID: job.id)
        XCTAssertEqual(rows.map(\.kind), ["album", "album", "album", "message"])
        XCTAssertEqual(rows.map(\.batchNo), [0, 1, 2, 3])
        XCTAssertEqual(rows.map(\.photoIDs.count), [3, 10, 5, 0])
        let photos = try c.query("SELECT id, delivery_id FROM generated_photos WHERE job_id = $1", [job.id])
        XCTAssertEqual(photos.count, 18)
        XCTAssertEqual(rows.flatMap(\.photoIDs).sorted(), photos.map { $0.requiredInt("id") }.sorted(), "each photo in exactly one row")
        for p in photos {
            let row = try XCTUnwrap(rows.first { $0.photoIDs.contains(p.requiredInt("id")) })
            XCTAssertEqual(p.int("delivery_id"), row.id, "the payload and the photo agree")
        }
        XCTAssertEqual(try InvariantAudit.run(c), [])

        let telegram = FakeTelegram()
        deps.telegram = telegram
        var config = Deliverer.Config()
        config.chatIntervalSeconds = 0.05
        try DeliveryFixtures.drain(try Deliverer(deps: deps, config: config))
        XCTAssertEqual(telegram.sent.map(\.method), [.mediaGroup, .mediaGroup, .mediaGroup, .message])
        XCTAssertEqual(telegram.sent.map(\.media.count).reduce(0, +), 18)
    }

    func testATaskStillGeneratingIsAskedAgainOnlyAfterThePollInterval() throws {
        let job = try JobFixtures.running(deps, telegramID: 8201, photos: 7)
        let first = try pass()
        XCTAssertEqual(first.polled, 7)
        XCTAssertEqual(first.stillRunning, 7)
        XCTAssertEqual(try count("""
            SELECT count(*)::int AS n FROM generation_tasks
            WHERE job_id = $1 AND state = 'running' AND run_at BETWEEN now() + interval '9 seconds' AND now() + interval '11 seconds'
            """, [job.id]), 7, "rescheduled one interval ahead")
        XCTAssertEqual(try pass().polled, 0, "nothing is due yet")
        XCTAssertEqual(kie.polled.count, 7)
    }

    func testKiesFailEndsTheTaskWithItsCodeAndMessage() throws {
        let job = try JobFixtures.running(deps, telegramID: 8301, photos: 7)
        for t in job.tasks.prefix(5) { _ = try serveImage(t) }
        for t in job.tasks.suffix(2) {
            kie.states[t.kieID] = .success(KieTaskInfo(taskID: t.kieID, state: .fail, failCode: "422",
                                                      failMessage: "Invalid prompt: prompt contains prohibited content"))
        }
        let report = try pass()
        XCTAssertEqual(report.succeeded, 5)
        XCTAssertEqual(report.failed, 2)
        let failed = try task(job.tasks[6].id)
        XCTAssertEqual(failed.string("state"), "failed")
        XCTAssertEqual(failed.string("fail_code"), "422")
        XCTAssertEqual(failed.string("fail_message"), "Invalid prompt: prompt contains prohibited content")
        XCTAssertEqual(try jobStatus(job.id), "partial")
        XCTAssertEqual(try count("SELECT amount_kopecks AS n FROM refunds WHERE job_id = $1", [job.id]), 49_900 * 2 / 7)
    }

    func testATaskThatNeverFinishesFailsAtItsDeadlineAndTheJobFinishes() throws {
        let job = try JobFixtures.running(deps, telegramID: 8401, photos: 7)
        for t in job.tasks.prefix(6) { _ = try serveImage(t) }
        XCTAssertEqual(try pass().succeeded, 6)
        XCTAssertEqual(try jobStatus(job.id), "processing")

        let stuck = job.tasks[6]
        try c.execute("UPDATE generation_tasks SET deadline_at = now() - interval '1 second', run_at = now() WHERE id = $1", [stuck.id])
        let polledBefore = kie.polled.count
        let report = try pass()
        XCTAssertEqual(report.deadlineFailed, 1)
        XCTAssertEqual(report.jobsFinished, 1)
        XCTAssertEqual(kie.polled.count, polledBefore + 1, "asked one last time, still generating")
        XCTAssertEqual(try task(stuck.id).string("fail_code"), "deadline")
        XCTAssertEqual(try jobStatus(job.id), "partial")
        XCTAssertEqual(try count("SELECT amount_kopecks AS n FROM refunds WHERE job_id = $1", [job.id]), 49_900 / 7)
    }

    /// Without a recorded `deadline_at` the task fails `--task-deadline` after submission.
    func testWithoutARecordedDeadlineTheSubmissionTimeDecides() throws {
        let job = try JobFixtures.running(deps, telegramID: 8451, photos: 7)
        try c.execute("UPDATE generation_tasks SET deadline_at = NULL WHERE job_id = $1", [job.id])
        try c.execute("UPDATE generation_tasks SET submitted_at = now() - interval '21 minutes' WHERE id = $1", [job.tasks[0].id])
        let report = try pass()
        XCTAssertEqual(report.deadlineFailed, 1)
        XCTAssertEqual(report.stillRunning, 6)
    }

    func testResultURLsOffTheAllowedHostsOrOverPlainHTTPAreRefused() throws {
        let download = ResultDownload(allowedHosts: ["CDN.kie.test", "127.0.0.1"], maxBytes: 1 << 20, timeout: 5)
        XCTAssertTrue(download.allows("https://cdn.kie.test/r/1.png"))
        XCTAssertFalse(download.allows("https://a.b.cdn.kie.test:8443/r/1.png"), "an exact entry does not match its subdomains")
        XCTAssertTrue(download.allows("http://127.0.0.1:8080/r/1.png"), "plain http to loopback")
        XCTAssertFalse(download.allows("http://cdn.kie.test/r/1.png"), "plain http to a remote host")
        XCTAssertFalse(download.allows("https://evilcdn.kie.test/r/1.png"))
        XCTAssertFalse(download.allows("https://cdn.kie.test.evil.example/r/1.png"))
        XCTAssertFalse(download.allows("https://cdn.kie.test@evil.example/r/1.png"), "user info is not the host")
        XCTAssertFalse(download.allows("https://cdn.kie.test /r/1.png"))
        XCTAssertFalse(download.allows("ftp://cdn.kie.test/r/1.png"))
        XCTAssertFalse(download.allows("http://localhost/r/1.png"), "loopback, but not on the list")

        // In a pass: nothing is fetched, the task keeps running, the refusals are counted.
        deps = try makeDeps(["KIE_RESULT_HOSTS": "cdn.kie.test"])
        let job = try JobFixtures.running(deps, telegramID: 8501, photos: 7)
        let image = try files.put("results/real.jpg", bytes: GenerationFixtures.jpeg(1))
        succeed(job.tasks[0], "https://evil.example/r/1.jpg")
        succeed(job.tasks[1], "http://cdn.kie.test/r/1.jpg")
        succeed(job.tasks[2], image)   // loopback, but 127.0.0.1 is not on this list
        let report = try pass()
        XCTAssertEqual(report.succeeded, 0)
        XCTAssertEqual(report.errors, 3)
        XCTAssertEqual(try counter("kie.result_url_refused"), 3)
        XCTAssertEqual(try count("SELECT count(*)::int AS n FROM generated_photos"), 0)
        for t in job.tasks.prefix(3) { XCTAssertEqual(try task(t.id).string("state"), "running") }
    }

    func testAResultThatIsNotAnImageOrTooLargeFailsTheTask() throws {
        let job = try JobFixtures.running(deps, telegramID: 8601, photos: 7)
        succeed(job.tasks[0], try files.put("results/page.jpg", bytes: Array("<html>expired</html>".utf8)))
        succeed(job.tasks[1], try files.put("results/huge.jpg", bytes: GenerationFixtures.jpeg(2, size: (1 << 20) + 1)))
        var config = KiePoller.Config()
        config.maxDownloadBytes = 1 << 20
        let report = try pass(config: config)
        XCTAssertEqual(report.failed, 2)
        XCTAssertEqual(try task(job.tasks[0].id).string("fail_code"), "result_not_image")
        XCTAssertEqual(try task(job.tasks[1].id).string("fail_code"), "result_too_large")
        XCTAssertEqual(try count("SELECT count(*)::int AS n FROM generated_photos"), 0)
    }

    func testFailedDownloadsAndUploadsKeepTheTaskRunningAndAreCounted() throws {
        let job = try JobFixtures.running(deps, telegramID: 8701, photos: 7)
        // An expired URL (404), then a server that is not there at all.
        succeed(job.tasks[0], files.baseURL + "/results/gone.jpg")
        succeed(job.tasks[1], "http://127.0.0.1:\(Subprocess.freePort())/r.jpg")
        var report = try pass()
        XCTAssertEqual(report.errors, 2)
        XCTAssertEqual(try counter("kie.download_failures"), 2)
        XCTAssertEqual(try task(job.tasks[0].id).string("state"), "running")
        XCTAssertEqual(try task(job.tasks[1].id).string("state"), "running")

        // A store that refuses: counted, still running, and nothing committed.
        let blocker = try TestEnvironment.makeTempDir("blocked") + "/file"
        XCTAssertTrue(FileManager.default.createFile(atPath: blocker, contents: Data()))
        let broken = try makeDeps(["STORAGE_DIR": blocker + "/media"])
        _ = try serveImage(job.tasks[0])
        try makeAllDue()
        report = try pass(broken)
        XCTAssertEqual(try counter("storage.upload_failures"), 1)
        XCTAssertEqual(try task(job.tasks[0].id).string("state"), "running")
        XCTAssertEqual(try count("SELECT count(*)::int AS n FROM generated_photos"), 0)

        // Once the store works, the next poll takes it.
        try makeAllDue()
        XCTAssertEqual(try pass().succeeded, 1)
        XCTAssertEqual(try task(job.tasks[0].id).string("state"), "succeeded")
    }

    func testRecordInfoErrorsAreCountedAndTheTaskIsPolledLater() throws {
        let job = try JobFixtures.running(deps, telegramID: 8751, photos: 7)
        kie.states[job.tasks[0].kieID] = .failure(.rateLimited)
        kie.states[job.tasks[1].kieID] = .failure(.transient("HTTP 500"))
        let report = try pass()
        XCTAssertEqual(report.errors, 2)
        XCTAssertEqual(try counter("kie.poll_rate_limited"), 1)
        XCTAssertEqual(try counter("kie.poll_errors"), 1)
        XCTAssertEqual(try task(job.tasks[0].id).string("state"), "running")
    }

    /// The same success handled twice (two pollers, or a retry after a crash before the
    /// commit): one photo row, one object, the job finished once.
    func testTheSameSuccessTakenTwiceMakesOnePhoto() throws {
        let job = try JobFixtures.running(deps, telegramID: 8801, photos: 7)
        let bytes = try serveImage(job.tasks[0])
        let url = files.baseURL + "/results/\(job.tasks[0].kieID).jpg"
        // A run that stored different bytes and died before its commit: overwritten.
        let key = MediaKeys.result(jobID: job.id, taskID: job.tasks[0].id, contentType: "image/jpeg", secret: GenerationFixtures.mediaSecret)
        try deps.media.put(key: key, bytes: GenerationFixtures.jpeg(999), contentType: "image/jpeg")

        let poller = try KiePoller(deps: deps)
        let claimed = KiePoller.ClaimedTask(id: job.tasks[0].id, jobID: job.id, kieTaskID: job.tasks[0].kieID, overdue: false)
        var first = KiePoller.Report(), second = KiePoller.Report()
        try poller.take(claimed, poller.download.fetch(url, via: deps.resultDownloader), &first)
        try poller.take(claimed, poller.download.fetch(url, via: deps.resultDownloader), &second)
        XCTAssertEqual(first.succeeded, 1)
        XCTAssertEqual(second.succeeded, 0)
        XCTAssertEqual(try count("SELECT count(*)::int AS n FROM generated_photos WHERE task_id = $1", [job.tasks[0].id]), 1)
        XCTAssertEqual(try deps.media.get(key: key), bytes)
        // And through whole passes: an ended task is never claimed again.
        try makeAllDue()
        try pass()
        XCTAssertEqual(try count("SELECT count(*)::int AS n FROM generated_photos"), 1)
    }

    /// Two pollers on two connections, while "callbacks" keep making every running task due
    /// again (so both claim the same tasks mid-download): every task gets exactly one photo,
    /// every job finishes once.
    func testTwoPollersAtOnceNeverStoreAPhotoTwice() throws {
        var jobs: [JobFixtures.Job] = []
        for i in 0..<3 {
            let job = try JobFixtures.running(deps, telegramID: Int64(8900 + i), photos: 7)
            for t in job.tasks { _ = try serveImage(t) }
            jobs.append(job)
        }
        let storage = deps.config.storageDir
        let pollers = try (0..<2).map { _ in Locked(try KiePoller(deps: makeDeps(["STORAGE_DIR": storage]))) }
        let reports = Locked<[KiePoller.Report]>([])
        let errors = Locked<[String]>([])
        let running = Locked(true)
        let url = db.url
        let done = DispatchSemaphore(value: 0)
        let kieIDs = jobs.flatMap { $0.tasks.map(\.kieID) }
        Thread {
            // The callback's own statement (one task by its Kie id, as each callback names
            // one), round the tasks as fast as it can go.
            let conn = try! Connection(url)
            var i = 0
            while running.value {
                _ = try? KiePoller.markDue(conn, kieTaskID: kieIDs[i % kieIDs.count])
                i += 1
            }
            done.signal()
        }.start()
        let pollerThreads = DispatchGroup()
        for poller in pollers {
            pollerThreads.enter()
            Thread {
                for _ in 0..<5 {
                    do {
                        let p = poller.value
                        let r = try p.runOnce(now: p.deps.clock(), deadline: p.deps.clock() + 55)
                        reports.mutate { $0.append(r) }
                    } catch {
                        errors.mutate { $0.append("\(error)") }
                    }
                }
                pollerThreads.leave()
            }.start()
        }
        XCTAssertEqual(pollerThreads.wait(timeout: .now() + 60), .success)
        running.mutate { $0 = false }
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success)

        XCTAssertEqual(errors.value, [])
        XCTAssertEqual(try count("SELECT count(*)::int AS n FROM generated_photos"), 21)
        XCTAssertEqual(try count("SELECT count(DISTINCT task_id)::int AS n FROM generated_photos"), 21)
        XCTAssertEqual(reports.value.map(\.succeeded).reduce(0, +), 21, "each task counted once")
        XCTAssertEqual(reports.value.map(\.jobsFinished).reduce(0, +), 3, "each job finished once")
        for job in jobs { XCTAssertEqual(try jobStatus(job.id), "completed") }
        XCTAssertEqual(try count("SELECT count(*)::int AS n FROM telegram_deliveries"), 6)
    }

    func testSettingsAreValidatedAndTheMediaSecretIsRequired() throws {
        var config = KiePoller.Config()
        config.batchSize = 0
        XCTAssertThrowsError(try KiePoller(deps: deps, config: config)) { XCTAssertTrue("\($0)".contains("--batch-size")) }
        let noSecret = try makeDeps(["MEDIA_KEY_SECRET": ""])
        XCTAssertThrowsError(try KiePoller(deps: noSecret)) { XCTAssertEqual($0 as? ConfigError, .missing("MEDIA_KEY_SECRET")) }
    }

    /// KIE_POLL_RPS is per API key: two pollers at once share one budget of recordInfo calls.
    func testTwoPollersShareTheRecordInfoBudget() throws {
        for n in 0..<4 { _ = try JobFixtures.running(deps, telegramID: Int64(8900 + n), photos: 5) }
        try makeAllDue()
        let d1 = try makeDeps(["KIE_POLL_RPS": "4"])
        let d2 = try makeDeps(["KIE_POLL_RPS": "4"])
        d1.kie = kie
        d2.kie = kie
        let done = DispatchSemaphore(value: 0)
        for d in [d1, d2] {
            let box = Locked(d)
            Thread {
                let deps = box.value
                _ = try? KiePoller(deps: deps).runOnce(now: deps.clock(), deadline: deps.clock() + 0.5)
                done.signal()
            }.start()
        }
        XCTAssertEqual(done.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(done.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(kie.polled.count, 4, "one second's budget for both together, not 4 each")
        XCTAssertEqual(Set(kie.polled).count, 4, "no task asked twice")
    }

    /// A task past its deadline whose photo Kie did make (the poller was down for a while) is
    /// taken, not refunded: no photo Kie produced is lost.
    func testAnOverdueTaskWhosePhotoIsReadyIsTakenNotFailed() throws {
        let job = try JobFixtures.running(deps, telegramID: 8450, photos: 1)
        let bytes = try serveImage(job.tasks[0])
        try c.execute("UPDATE generation_tasks SET deadline_at = now() - interval '1 hour', run_at = now() WHERE job_id = $1", [job.id])
        let report = try pass()
        XCTAssertEqual(report.succeeded, 1)
        XCTAssertEqual(report.deadlineFailed, 0)
        XCTAssertEqual(try task(job.tasks[0].id).string("state"), "succeeded")
        XCTAssertEqual(try jobStatus(job.id), "completed")
        let key = try c.query("SELECT storage_key FROM generated_photos WHERE job_id = $1", [job.id])[0].requiredString("storage_key")
        XCTAssertEqual(try deps.media.get(key: key), bytes)
    }
}

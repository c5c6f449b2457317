import XCTest
import Foundation
import HTTPClient
import PinGlassTesting
import ProviderWire
@testable import PinGlass
@testable import Providers

/// `pinglass poll-kie` against the simulated Kie, killed (`CRASHPOINT`, exit 137) after the
/// download, after the upload and after the commit; the next run picks up from there: one
/// photo per task, the stored object is Kie's image, the job finished once.
final class PollKieCrashTests: DatabaseTestCase {
    var stack: Stack!
    var sim: KieSimulator!
    var kie: KieClient!
    var env: [String: String] = [:]
    var storage = ""

    override func setUpWithError() throws {
        try super.setUpWithError()
        let simPort = Subprocess.freePort()
        let simURL = "http://127.0.0.1:\(simPort)"
        stack = try Stack(database: db, workers: 1, env: Fixtures.kieEnv(simURL: simURL), withSimulator: true, simPort: simPort)
        sim = KieSimulator(simURL: simURL)
        try sim.set(["waitingSeconds": .double(0), "queuingSeconds": .double(0), "generatingSeconds": .double(0.1)])
        kie = KieClient(apiURL: sim.apiURL, apiKey: Fixtures.kieKey, timeout: 5)
        storage = try TestEnvironment.makeTempDir("poll-media")
        env = Fixtures.kieEnv(simURL: simURL).merging([
            "PATH": "/usr/bin:/bin", "PINGLASS_ENV_FILE": "/dev/null", "DATABASE_URL": db.url, "LOG_FORMAT": "text",
            "MEDIA_KEY_SECRET": GenerationFixtures.mediaSecret, "STORAGE_DIR": storage,
        ]) { $1 }
    }

    override func tearDown() {
        stack?.stop()
        super.tearDown()
    }

    func pollKie(crashAt point: String? = nil) throws -> (Int32, String) {
        var e = env
        if let point { e["CRASHPOINT"] = point }
        let (status, out, err) = try Subprocess.capture(TestEnvironment.binDir() + "/pinglass", ["poll-kie"], environment: e)
        return (status, out + err)
    }

    func storedObjects() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: storage + "/generated")) ?? []).filter { !$0.hasPrefix(".") }
    }

    func testACrashAfterDownloadUploadOrCommitLosesNothingAndDuplicatesNothing() throws {
        let c = try db.connect()
        let deps = try PollFixtures.deps(db)
        for (n, point) in ["poll.after-download", "poll.after-store", "poll.after-commit"].enumerated() {
            // A one-photo job whose task Kie has finished.
            let job = try JobFixtures.running(deps, telegramID: Int64(9900 + n), photos: 1)
            let kieID = try kie.createTask(KieTaskRequest(model: "google/nano-banana-edit", prompt: "p\(n)", imageURLs: ["http://127.0.0.1/r.jpg"]))
            try c.execute("UPDATE generation_tasks SET kie_task_id = $2 WHERE id = $1", [job.tasks[0].id, kieID])
            // Asked through the control API: recordInfo's own limit (10/s) is for the poller.
            try Subprocess.waitUntil(interval: 0.05, "Kie task \(kieID)") {
                try sim.tasks().contains { $0["taskId"]?.stringValue == kieID && $0["state"]?.stringValue == "success" }
            }
            let objectsBefore = storedObjects().count

            let (status, log) = try pollKie(crashAt: point)
            XCTAssertEqual(status, 137, "\(point): \(log)")
            let photos = try c.query("SELECT count(*)::int AS n FROM generated_photos WHERE job_id = $1", [job.id])[0].requiredInt("n")
            let taskState = try c.query("SELECT state FROM generation_tasks WHERE id = $1", [job.tasks[0].id])[0].string("state")
            switch point {
            case "poll.after-download":
                XCTAssertEqual(storedObjects().count, objectsBefore, point)
                XCTAssertEqual(photos, 0, point)
                XCTAssertEqual(taskState, "running", point)
            case "poll.after-store":
                XCTAssertEqual(storedObjects().count, objectsBefore + 1, "\(point): stored, not committed")
                XCTAssertEqual(photos, 0, point)
                XCTAssertEqual(taskState, "running", point)
            default:
                XCTAssertEqual(photos, 1, point)
                XCTAssertEqual(taskState, "succeeded", point)
                XCTAssertEqual(try c.query("SELECT status FROM generation_jobs WHERE id = $1", [job.id])[0].string("status"), "processing",
                               "\(point): killed before the finish")
            }

            // The next run (the crashed claim moved run_at; a callback would make it due now).
            try c.execute("UPDATE generation_tasks SET run_at = now() WHERE state = 'running'")
            let (healthy, healthyLog) = try pollKie()
            XCTAssertEqual(healthy, 0, healthyLog)

            XCTAssertEqual(try c.query("SELECT status FROM generation_jobs WHERE id = $1", [job.id])[0].string("status"), "completed", point)
            let photo = try c.query("SELECT storage_key, sha256 FROM generated_photos WHERE job_id = $1", [job.id])
            XCTAssertEqual(photo.count, 1, point)
            XCTAssertEqual(storedObjects().count, objectsBefore + 1, "\(point): one object, overwritten on retry")
            let key = try XCTUnwrap(photo.first?.string("storage_key"))
            let stored = try XCTUnwrap(FileManager.default.contents(atPath: storage + "/" + key))
            let image = try HTTPClient().send(HTTPRequest(url: sim.apiURL + "/results/\(kieID).png"))
            XCTAssertEqual(Array(stored), image.body, "\(point): Kie's image, byte for byte")
            XCTAssertEqual(try c.query("""
                SELECT string_agg(kind, ',' ORDER BY batch_no) AS kinds FROM telegram_deliveries WHERE job_id = $1
                """, [job.id])[0].string("kinds"), "photo,message", "\(point): delivery rows once")
            XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM refunds")[0].int("n"), 0, point)
        }
    }
}

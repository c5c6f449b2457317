import XCTest
import Foundation
import HTTPClient
import PinGlassTesting
import ProviderWire
@testable import PinGlass
@testable import Providers

/// `pinglass prune` finds stored objects no row names and deletes them once they are older
/// than the grace period, on both stores: a result `pinglass poll-kie` stored before it was
/// killed (`CRASHPOINT=poll.after-store`, against the simulated Kie) and a reference whose row
/// never came. Objects with rows (a committed photo, an uploaded reference) stay, and so does
/// everything younger than the grace period (an upload may be on its way to its row).
final class OrphanedObjectsTests: DatabaseTestCase {
    var stack: Stack!
    var sim: KieSimulator!
    var kie: KieClient!
    var simURL = ""

    override func setUpWithError() throws {
        try super.setUpWithError()
        let simPort = Subprocess.freePort()
        simURL = "http://127.0.0.1:\(simPort)"
        stack = try Stack(database: db, workers: 1, env: Fixtures.kieEnv(simURL: simURL), withSimulator: true, simPort: simPort)
        sim = KieSimulator(simURL: simURL)
        try sim.set(["waitingSeconds": .double(0), "queuingSeconds": .double(0), "generatingSeconds": .double(0.1)])
        kie = KieClient(apiURL: sim.apiURL, apiKey: Fixtures.kieKey, timeout: 5)
    }

    override func tearDown() {
        stack?.stop()
        super.tearDown()
    }

    func testFileStore() throws {
        try orphansArePrunedAfterTheGracePeriod(storage: ["STORAGE_DIR": try TestEnvironment.makeTempDir("orphan-media")])
    }

    func testS3Store() throws {
        let moto = try MotoS3.shared()
        try moto.requireSignatures(true)
        // A bucket of its own: nothing another test left behind is in it.
        let bucket = "pinglass-orphans-" + UUID().uuidString.prefix(8).lowercased()
        XCTAssertEqual(try moto.signed("PUT", "/" + bucket).status, 200)
        try orphansArePrunedAfterTheGracePeriod(storage: [
            "STORAGE": "s3", "S3_ENDPOINT": moto.url, "S3_BUCKET": bucket, "S3_REGION": moto.region,
            "S3_ACCESS_KEY_ID": moto.accessKeyID, "S3_SECRET_ACCESS_KEY": moto.secretAccessKey,
        ], listing: { prune in try MotoS3.withoutListSignatures(moto, prune) })
    }

    /// `listing` wraps each prune (moto cannot check a listing's signature: `MotoS3.withoutListSignatures`).
    func orphansArePrunedAfterTheGracePeriod(storage: [String: String],
                                             listing: (() throws -> Pruner.Report) throws -> Pruner.Report = { try $0() }) throws {
        let env = Fixtures.kieEnv(simURL: simURL).merging([
            "PATH": "/usr/bin:/bin", "PINGLASS_ENV_FILE": "/dev/null", "DATABASE_URL": db.url, "LOG_FORMAT": "text",
            "MEDIA_KEY_SECRET": GenerationFixtures.mediaSecret,
        ].merging(storage) { $1 }) { $1 }
        let deps = try PollFixtures.deps(db, env: storage)   // the same store as the commands
        let c = try db.connect()
        func pollKie(crashAt point: String? = nil) throws -> Int32 {
            var e = env
            if let point { e["CRASHPOINT"] = point }
            let (status, out, err) = try Subprocess.capture(TestEnvironment.binDir() + "/pinglass", ["poll-kie"], environment: e)
            if status != 0 && status != 137 { XCTFail(out + err) }
            return status
        }
        /// A one-photo job whose task Kie has finished.
        func finishedAtKie(_ telegramID: Int64) throws -> JobFixtures.Job {
            let job = try JobFixtures.running(deps, telegramID: telegramID, photos: 1)
            let kieID = try kie.createTask(KieTaskRequest(model: "google/nano-banana-edit", prompt: "p\(telegramID)",
                                                          imageURLs: ["http://127.0.0.1/r.jpg"]))
            try c.execute("UPDATE generation_tasks SET kie_task_id = $2, run_at = now() WHERE id = $1", [job.tasks[0].id, kieID])
            try Subprocess.waitUntil(interval: 0.05, "Kie task \(kieID)") {
                try sim.tasks().contains { $0["taskId"]?.stringValue == kieID && $0["state"]?.stringValue == "success" }
            }
            return job
        }
        func resultKey(_ job: JobFixtures.Job) -> String {
            MediaKeys.result(jobID: job.id, taskID: job.tasks[0].id, contentType: "image/png", secret: GenerationFixtures.mediaSecret)
        }
        func exists(_ key: String) -> Bool { (try? deps.media.get(key: key)) != nil }
        func prune(hoursLater: Double) throws -> Pruner.Report {
            try listing { try Pruner(deps: deps).runOnce(now: deps.clock() + hoursLater * 3600, deadline: deps.clock() + 55) }
        }

        // A photo stored and committed.
        let done = try finishedAtKie(9960)
        XCTAssertEqual(try pollKie(), 0)
        XCTAssertEqual(try c.query("SELECT storage_key FROM generated_photos WHERE job_id = $1", [done.id]).first?.string("storage_key"),
                       resultKey(done))
        // A reference uploaded to that (now finished) job's avatar: object and row.
        let avatar = try c.query("SELECT user_id, avatar_id FROM generation_jobs WHERE id = $1", [done.id])[0]
        let uploaded = try References.add(deps, userID: avatar.requiredInt("user_id"), avatarID: avatar.requiredInt("avatar_id"),
                                          [ReferenceUpload(index: 0, bytes: GenerationFixtures.jpeg(99), declaredType: "image/jpeg")])
        let referenceKey = try XCTUnwrap(uploaded.uploaded.first?.record.storageKey)
        // A result stored, then the poller killed before its commit: an object without a row.
        let crashed = try finishedAtKie(9961)
        XCTAssertEqual(try pollKie(crashAt: "poll.after-store"), 137)
        XCTAssertTrue(exists(resultKey(crashed)))
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM generated_photos WHERE job_id = $1", [crashed.id])[0].int("n"), 0)
        // A reference stored whose row never came.
        let lostReference = MediaKeys.reference(contentType: "image/jpeg")
        try deps.media.put(key: lostReference, bytes: GenerationFixtures.jpeg(98), contentType: "image/jpeg")

        let kept = [resultKey(done), referenceKey]
        let orphans = [resultKey(crashed), lostReference]
        // Within the grace period every object stays: it may be an upload on its way to its row.
        XCTAssertEqual(try prune(hoursLater: 47).orphanedObjects, 0)
        for key in kept + orphans { XCTAssertTrue(exists(key), key) }

        // Past it, the objects without rows go, and only they.
        XCTAssertEqual(try prune(hoursLater: 49).orphanedObjects, 2)
        for key in kept { XCTAssertTrue(exists(key), "has a row: \(key)") }
        for key in orphans { XCTAssertFalse(exists(key), "no row: \(key)") }
        XCTAssertEqual(try prune(hoursLater: 49).orphanedObjects, 0, "nothing left to delete")

        // The crashed task still gets its photo: the next poll stores it again and commits.
        try c.execute("UPDATE generation_tasks SET run_at = now() WHERE state = 'running'")
        XCTAssertEqual(try pollKie(), 0)
        XCTAssertEqual(try c.query("SELECT storage_key FROM generated_photos WHERE job_id = $1", [crashed.id]).first?.string("storage_key"),
                       resultKey(crashed))
        XCTAssertTrue(exists(resultKey(crashed)))
    }
}

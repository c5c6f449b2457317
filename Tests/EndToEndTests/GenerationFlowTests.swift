import Foundation
import HTTPClient
import PinGlassTesting
import Postgres
import XCTest
import JSON
import LibCrypto
import ProviderWire
@testable import PinGlass

/// The generation story end to end: real nginx, real workers, the simulator as bank and Kie,
/// the real `pinglass dispatch` and `pinglass poll-kie` commands. Avatar → reference →
/// pay on the bank → generate → submitted → polled → photos stored and shown by signed links.
final class GenerationFlowTests: DatabaseTestCase {
    var stack: Stack!
    let http = HTTPClient()

    override func setUpWithError() throws {
        try super.setUpWithError()
        let simPort = Subprocess.freePort()
        let simURL = "http://127.0.0.1:\(simPort)"
        var env = Fixtures.env(simURL: simURL).merging(Fixtures.kieEnv(simURL: simURL)) { $1 }
        env["MEDIA_KEY_SECRET"] = GenerationFixtures.mediaSecret
        stack = try Stack(database: db, workers: 2, env: env, withSimulator: true, simPort: simPort)
        try KieSimulator(simURL: simURL).set(["waitingSeconds": .double(0.1), "queuingSeconds": .double(0.1),
                                              "generatingSeconds": .double(0.3)])
    }
    override func tearDown() {
        stack?.stop()
        super.tearDown()
    }

    func cli(_ args: [String]) throws -> (Int32, String, String) {
        try Subprocess.capture(TestEnvironment.binDir() + "/pinglass", args, environment: stack.environment)
    }

    func send(_ method: String, _ path: String, _ body: [UInt8] = [], type: String = "application/json", tg: Int64 = 40_001) throws -> TestClient.Response {
        try stack.client.execute(method, path, headers: [("Content-Type", type), Fixtures.auth(telegramID: tg)], body: body)
    }

    func testFromPaymentToStoredPhotos() throws {
        // Avatar and a reference photo through nginx (raw bytes).
        let avatar = try JSON.parse(try send("POST", "/api/avatars", Array(#"{"name":"me"}"#.utf8)).body)["avatar"]?["id"]?.intValue
        let avatarID = try XCTUnwrap(avatar)
        let jpeg = GenerationFixtures.jpeg(42, size: 2048)
        let up = try send("POST", "/api/avatars/\(avatarID)/references", jpeg, type: "image/jpeg")
        XCTAssertEqual(up.status, 201, up.text)
        // Pay on the simulated bank.
        let created = try JSON.parse(try send("POST", "/api/payment/create", Array(#"{"tierId":"starter"}"#.utf8)).body)
        let bankID = try XCTUnwrap(created["paymentId"]?.stringValue)
        let pay = try http.send(.json("POST", stack.simURL + "/sim/control/customer", body: JSON.object([("paymentId", .string(bankID)), ("action", "pay")]).bytes))
        XCTAssertEqual(pay.status, 200, pay.text)
        try Subprocess.waitUntil(timeout: 20, "the payment to succeed") {
            (try? JSON.parse(try self.send("GET", "/api/payment/status?payment_id=\(bankID)").body)["status"]?.stringValue) == "succeeded"
        }
        // Generate: one job with the payment's 7 photos.
        let started = try send("POST", "/api/generate", Array(#"{"avatarId":\#(avatarID),"photos":23}"#.utf8))
        XCTAssertEqual(started.status, 202, started.text)
        let jobID = try XCTUnwrap(JSON.parse(started.body)["jobId"]?.intValue)
        XCTAssertEqual(try JSON.parse(started.body)["totalPhotos"]?.intValue, 7)

        // The cron duties, as cron runs them (one pass each, repeated until done). Dispatch's
        // --task-deadline is the deadline it records on each task it submits.
        let (ds, _, de) = try cli(["dispatch", "--task-deadline", "45m"])
        XCTAssertEqual(ds, 0, de)
        let c = try db.connect()
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM generation_tasks WHERE job_id = $1 AND state = 'running'", [jobID])[0].int("n"), 7)
        XCTAssertEqual(try c.query("""
            SELECT count(*)::int AS n FROM generation_tasks
            WHERE job_id = $1 AND deadline_at = submitted_at + interval '45 minutes'
            """, [jobID])[0].int("n"), 7, "each task records dispatch's --task-deadline")
        try Subprocess.waitUntil(timeout: 60, interval: 0.5, "the job to complete") {
            let (ps, _, pe) = try self.cli(["poll-kie"])
            XCTAssertEqual(ps, 0, pe)
            return try c.query("SELECT status FROM generation_jobs WHERE id = $1", [jobID])[0].string("status") == "completed"
        }
        let job = try JSON.parse(try send("GET", "/api/jobs/\(jobID)").body)
        XCTAssertEqual(job["progress"]?["completed"]?.intValue, 7)
        XCTAssertEqual(job["refund"], .null)
        let urls = (job["photos"]?.arrayValue ?? []).compactMap { $0["url"]?.stringValue }
        XCTAssertEqual(urls.count, 7)
        // Each photo is a real, distinct image behind its signed link.
        var digests = Set<String>()
        for url in urls {
            let r = try http.send(HTTPRequest(url: url))
            XCTAssertEqual(r.status, 200, url)
            XCTAssertEqual(ImageType.sniff(r.body), "image/png")
            digests.insert(Crypto.hex(Crypto.sha256(r.body)))
        }
        XCTAssertEqual(digests.count, 7, "seven different portraits")
        // Delivery rows for this job were written in the same transaction as its finish.
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM telegram_deliveries WHERE job_id = $1", [jobID])[0].int("n"), 2)
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM refunds WHERE job_id = $1", [jobID])[0].int("n"), 0)
        // And the invariants hold on the live database.
        let (auditStatus, audit, auditErr) = try cli(["audit"])
        XCTAssertEqual(auditStatus, 0, audit + auditErr)
        XCTAssertTrue(audit.contains("0 violated"), audit)
    }

    /// The original client's form through nginx: a photo of almost 10 MB as a base64 data URL
    /// (about 13.3 MB of JSON) is accepted; raw bytes over 10 MB are refused by the app.
    func testLargeReferencePhotosThroughNginx() throws {
        let avatarID = try XCTUnwrap(JSON.parse(try send("POST", "/api/avatars", Array(#"{"name":"big"}"#.utf8)).body)["avatar"]?["id"]?.intValue)
        let photo = GenerationFixtures.jpeg(7, size: 10_000_000)
        let body = JSON.object([("referenceImages", .array([.string("data:image/jpeg;base64," + Crypto.base64(photo))]))]).bytes
        XCTAssertGreaterThan(body.count, 13_000_000)
        let r = try http.send(HTTPRequest(method: "POST", url: stack.baseURL + "/api/avatars/\(avatarID)/references",
                                          headers: [("Content-Type", "application/json"), Fixtures.auth(telegramID: 40_001)], body: body))
        XCTAssertEqual(r.status, 201, String(r.text.prefix(300)))
        XCTAssertEqual(try JSON.parse(r.body)["uploaded"]?.arrayValue?.count, 1)
        let tooBig = try http.send(HTTPRequest(method: "POST", url: stack.baseURL + "/api/avatars/\(avatarID)/references",
                                               headers: [("Content-Type", "image/jpeg"), Fixtures.auth(telegramID: 40_001)],
                                               body: GenerationFixtures.jpeg(8, size: (10 << 20) + 1)))
        XCTAssertEqual(tooBig.status, 413)
    }
}

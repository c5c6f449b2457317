import Foundation
import HTTPCore
import PinGlassTesting
import Postgres
import XCTest
import JSON
import LibCrypto
@testable import PinGlass
@testable import PinGlassWeb

/// What the Mini App reads besides the account: `GET /api/jobs`, the job answer's
/// `keptUntil` and refund times, and the reference upload answer's `duplicate` and `code`.
/// `MEDIA_RETENTION_DAYS` is 30 here, so `keptUntil` is seen to follow the configuration.
final class JobListTests: DatabaseTestCase {
    var app: InProcessApp!
    var c: Connection!
    let me = Fixtures.auth(telegramID: 9401)
    let other = Fixtures.auth(telegramID: 9402)

    override func setUpWithError() throws {
        try super.setUpWithError()
        var env = try Fixtures.inProcessMediaEnv()
        env["MEDIA_RETENTION_DAYS"] = "30"
        app = try InProcessApp(database: db, env: env)
        c = try db.connect()
    }

    func call(_ method: String, _ path: String, _ auth: (String, String), body: [UInt8] = [], type: String = "application/json") throws -> TestClient.Response {
        try app.client.execute(method, path, headers: [auth, ("Content-Type", type)], body: body)
    }
    func json(_ r: TestClient.Response) throws -> JSON { try JSON.parse(r.body) }
    func utc(_ sql: String, _ params: [PostgresEncodable?]) throws -> String? {
        try c.query("SELECT to_char((\(sql)) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS t", params)[0].string("t")
    }

    func testTheCallersJobsNewestFirstWithoutPhotos() throws {
        let finished = try DeliveryFixtures.finishedJob(app.deps, telegramID: 9401, photos: 7, succeeded: 5)
        let running = try JobFixtures.running(app.deps, telegramID: 9401, photos: 3)
        let theirs = try JobFixtures.running(app.deps, telegramID: 9402, photos: 3)

        let r = try call("GET", "/api/jobs", me)
        XCTAssertEqual(r.status, 200, r.text)
        let jobs = try XCTUnwrap(json(r)["jobs"]?.arrayValue)
        XCTAssertEqual(jobs.map { $0["jobId"]?.intValue }, [running.id, finished.id], "newest first, the caller's only")
        XCTAssertTrue(jobs.allSatisfy { $0["photos"] == nil }, "no photos in a list")
        XCTAssertEqual(jobs.map { $0["photoCount"]?.intValue }, [0, 5])
        XCTAssertEqual(jobs.map { $0["status"]?.stringValue }, ["processing", "partial"])
        XCTAssertEqual(jobs[0]["keptUntil"], .null, "kept until 30 days after it ends; it has not ended")
        XCTAssertEqual(jobs[1]["keptUntil"]?.stringValue,
                       try utc("SELECT finished_at + interval '30 days' FROM generation_jobs WHERE id = $1", [finished.id]))
        XCTAssertEqual(jobs[0]["refund"], .null)
        let refund = try XCTUnwrap(jobs[1]["refund"])
        XCTAssertEqual(refund["status"]?.stringValue, "pending")
        XCTAssertEqual(refund["requestedAt"]?.stringValue, try utc("SELECT created_at FROM refunds WHERE job_id = $1", [finished.id]))
        XCTAssertEqual(refund["refundedAt"], .null)
        XCTAssertEqual(try json(try call("GET", "/api/jobs", other))["jobs"]?.arrayValue?.map { $0["jobId"]?.intValue }, [theirs.id])
        XCTAssertEqual(try json(try call("GET", "/api/jobs", Fixtures.auth(telegramID: 9403)))["jobs"], [], "a new customer has none")

        // The single answer: the same fields, the photos too, and ownership.
        let one = try json(try call("GET", "/api/jobs/\(finished.id)", me))
        XCTAssertEqual(one["photos"]?.arrayValue?.count, 5)
        XCTAssertEqual(one["photoCount"]?.intValue, 5)
        XCTAssertEqual(one["keptUntil"], jobs[1]["keptUntil"])
        XCTAssertEqual(one["refund"], jobs[1]["refund"])
        XCTAssertEqual(try json(try app.client.get("/api/generate", query: "job_id=\(finished.id)", headers: [me]))["keptUntil"], jobs[1]["keptUntil"])
        XCTAssertEqual(try call("GET", "/api/jobs/\(finished.id)", other).status, 404)

        // Paid back, as `pinglass refund` records it: refundedAt is the bank's confirmation.
        try c.execute("UPDATE refunds SET state = 'requested' WHERE job_id = $1", [finished.id])
        try c.execute("""
            UPDATE refunds r SET state = 'succeeded', finished_at = now(),
                   bank_original_kopecks = p.amount_kopecks, bank_remaining_kopecks = p.amount_kopecks - r.amount_kopecks
            FROM payments p WHERE p.id = r.payment_id AND r.job_id = $1
            """, [finished.id])
        try c.execute("""
            UPDATE payments p SET refunded_kopecks = r.amount_kopecks, status = 'partially_refunded'
            FROM refunds r WHERE r.payment_id = p.id AND r.job_id = $1
            """, [finished.id])
        let paid = try json(try call("GET", "/api/jobs/\(finished.id)", me))["refund"]
        XCTAssertEqual(paid?["status"]?.stringValue, "succeeded")
        XCTAssertEqual(paid?["refundedAt"]?.stringValue, try utc("SELECT finished_at FROM refunds WHERE job_id = $1", [finished.id]))
        XCTAssertEqual(paid?["requestedAt"], refund["requestedAt"])
    }

    func testAtMostFiftyJobs() throws {
        var ids: [Int] = []
        for _ in 0..<(JobProgress.listLimit + 1) {
            ids.append(try JobFixtures.job(c, telegramID: 9401, photos: 1, tasks: .queued).id)
        }
        let jobs = try XCTUnwrap(json(try call("GET", "/api/jobs", me))["jobs"]?.arrayValue)
        XCTAssertEqual(jobs.count, 50)
        XCTAssertEqual(jobs.map { $0["jobId"]?.intValue }, ids.reversed().prefix(50).map { $0 }, "the newest fifty")
    }

    /// Each uploaded image says whether it was there already; each refused one carries the
    /// code a single upload of it would have answered.
    func testTheUploadAnswerSaysDuplicateAndTheRefusalsCode() throws {
        let r = try call("POST", "/api/avatars", me, body: Array(#"{"name":"me"}"#.utf8))
        let id = try XCTUnwrap(json(r)["avatar"]?["id"]?.intValue)
        let first = try json(try call("POST", "/api/avatars/\(id)/references", me, body: GenerationFixtures.jpeg(1), type: "image/jpeg"))
        XCTAssertEqual(first["uploaded"]?.arrayValue?.first?["duplicate"], false)
        let again = try json(try call("POST", "/api/avatars/\(id)/references", me, body: GenerationFixtures.jpeg(1), type: "image/jpeg"))
        XCTAssertEqual(again["uploaded"]?.arrayValue?.first?["duplicate"], true)
        XCTAssertEqual(again["uploaded"]?.arrayValue?.first?["id"], first["uploaded"]?.arrayValue?.first?["id"], "the same id")

        func dataURL(_ type: String, _ bytes: [UInt8]) -> JSON { .string("data:\(type);base64," + Crypto.base64(bytes)) }
        let images: [JSON] = [dataURL("image/jpeg", GenerationFixtures.jpeg(1)), dataURL("image/png", GenerationFixtures.png(2)),
                              dataURL("image/jpeg", Array("not an image".utf8)), "https://elsewhere/x.jpg",
                              dataURL("image/png", GenerationFixtures.jpeg(3)),
                              dataURL("image/jpeg", GenerationFixtures.jpeg(4, size: References.maxBytes + 1))]
        let mixed = try json(try call("POST", "/api/avatars/\(id)/references", me, body: JSON.object([("referenceImages", .array(images))]).bytes))
        XCTAssertEqual(mixed["uploaded"]?.arrayValue?.map { $0["duplicate"] }, [true, false])
        XCTAssertEqual(mixed["rejected"]?.arrayValue?.map { $0["index"]?.intValue }, [2, 3, 4, 5])
        XCTAssertEqual(mixed["rejected"]?.arrayValue?.map { $0["code"]?.stringValue },
                       ["UNSUPPORTED_MEDIA_TYPE", "VALIDATION_ERROR", "UNSUPPORTED_MEDIA_TYPE", "PAYLOAD_TOO_LARGE"])

        let fill = (0..<18).map { dataURL("image/jpeg", GenerationFixtures.jpeg(100 + $0)) }
        let full = try json(try call("POST", "/api/avatars/\(id)/references", me, body: JSON.object([("referenceImages", .array(fill))]).bytes))
        XCTAssertEqual(full["uploaded"]?.arrayValue?.count, 18)
        let over = try call("POST", "/api/avatars/\(id)/references", me, body: GenerationFixtures.jpeg(999), type: "image/jpeg")
        XCTAssertEqual(over.status, 400)
        XCTAssertEqual(try json(over)["rejected"]?.arrayValue?.first?["code"]?.stringValue, "LIMIT_REACHED")
        // A single raw upload that is refused keeps its status.
        XCTAssertEqual(try call("POST", "/api/avatars/\(id)/references", me, body: Array("hello".utf8), type: "image/jpeg").status, 415)
    }
}

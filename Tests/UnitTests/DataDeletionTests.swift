import Foundation
import HTTPCore
import PinGlassTesting
import Postgres
import XCTest
import JSON
@testable import PinGlass
@testable import PinGlassWeb

/// `DELETE /api/me/data` in-process with the real fs media store: the caller's faces go
/// (objects included), the money records stay, and the audit run when the database is
/// dropped finds every rule kept.
final class DataDeletionTests: DatabaseTestCase {
    var app: InProcessApp!
    var c: Connection!
    let me = Fixtures.auth(telegramID: 9301)
    let other = Fixtures.auth(telegramID: 9302)

    override func setUpWithError() throws {
        try super.setUpWithError()
        let env = try Fixtures.inProcessMediaEnv()
        app = try InProcessApp(database: db, env: env)
        c = try db.connect()
    }

    func call(_ method: String, _ path: String, _ auth: (String, String), body: [UInt8] = [], type: String = "application/json") throws -> TestClient.Response {
        try app.client.execute(method, path, headers: [auth, ("Content-Type", type)], body: body)
    }
    func json(_ r: TestClient.Response) throws -> JSON { try JSON.parse(r.body) }
    func stored(_ key: String) -> Bool { (try? app.deps.media.get(key: key)) != nil }

    /// An avatar of the caller with `selfies` uploaded through the API; its id.
    func avatarWithSelfies(_ auth: (String, String), _ selfies: [Int]) throws -> Int {
        let r = try call("POST", "/api/avatars", auth, body: Array(#"{"name":"me"}"#.utf8))
        let id = try XCTUnwrap(json(r)["avatar"]?["id"]?.intValue)
        for seed in selfies {
            XCTAssertEqual(try call("POST", "/api/avatars/\(id)/references", auth, body: GenerationFixtures.jpeg(seed), type: "image/jpeg").status, 201)
        }
        return id
    }

    func keys(_ sql: String, _ params: [PostgresEncodable?] = []) throws -> [String] {
        try c.query(sql, params).map { $0.requiredString("storage_key") }
    }

    func testEverythingOfTheCallerGoesTheMoneyRecordsStay() throws {
        _ = try avatarWithSelfies(me, [1, 2])
        // A finished job of 7 photos, 5 made: an album waiting for Telegram, the final message, a refund.
        let job = try DeliveryFixtures.finishedJob(app.deps, telegramID: 9301, photos: 7, succeeded: 5)
        XCTAssertEqual(try call("PATCH", "/api/me", me, body: Array(#"{"email":"ann@example.com","consent":true}"#.utf8)).status, 200)
        let theirs = try avatarWithSelfies(other, [3])
        let theirKeys = try keys("SELECT storage_key FROM reference_photos WHERE avatar_id = $1", [theirs])
        XCTAssertEqual(try call("PATCH", "/api/me", other, body: Array(#"{"email":"bob@example.com"}"#.utf8)).status, 200)

        let selfieKeys = try keys("""
            SELECT r.storage_key FROM reference_photos r JOIN avatars a ON a.id = r.avatar_id JOIN users u ON u.id = a.user_id
            WHERE u.telegram_user_id = 9301
            """)
        XCTAssertEqual(selfieKeys.count, 3, "two uploaded, one of the job's avatar (a row only)")
        let photoKeys = try keys("SELECT storage_key FROM generated_photos WHERE job_id = $1", [job.id])
        XCTAssertEqual(photoKeys.count, 5)
        XCTAssertTrue(photoKeys.allSatisfy(stored))
        XCTAssertEqual(try json(try call("GET", "/api/jobs/\(job.id)", me))["photos"]?.arrayValue?.count, 5)
        let money = try c.query("SELECT (SELECT count(*) FROM payments) || '/' || (SELECT count(*) FROM refunds) || '/' || (SELECT count(*) FROM generation_tasks) AS n")[0].string("n")

        let r = try call("DELETE", "/api/me/data", me)
        XCTAssertEqual(r.status, 200, r.text)
        XCTAssertEqual(try json(r)["deleted"], ["avatars": 2, "references": 3, "photos": 5])

        XCTAssertEqual(selfieKeys.filter(stored), [], "the selfies' objects are gone")
        XCTAssertEqual(photoKeys.filter(stored), [], "the photos' objects are gone")
        XCTAssertEqual(try keys("SELECT storage_key FROM reference_photos"), theirKeys, "only the other customer's selfie is left")
        XCTAssertEqual(try json(try call("GET", "/api/avatars", me))["avatars"]?.arrayValue?.count, 0)
        let me2 = try json(try call("GET", "/api/me", me))["user"]
        XCTAssertEqual(me2?["email"], .null)
        XCTAssertEqual(me2?["consentAt"], .null)
        // The job and its money stay; its photos' rows stay, marked removed, and are never shown.
        let shown = try json(try call("GET", "/api/jobs/\(job.id)", me))
        XCTAssertEqual(shown["status"]?.stringValue, "partial")
        XCTAssertEqual(shown["photos"]?.arrayValue?.count, 0)
        XCTAssertEqual(shown["photoCount"]?.intValue, 0)
        XCTAssertNotEqual(shown["refund"], .null)
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM generated_photos WHERE job_id = $1 AND media_removed_at IS NOT NULL",
                                   [job.id])[0].int("n"), 5)
        XCTAssertEqual(try c.query("SELECT (SELECT count(*) FROM payments) || '/' || (SELECT count(*) FROM refunds) || '/' || (SELECT count(*) FROM generation_tasks) AS n")[0].string("n"), money)
        // The album nobody may send any more is withdrawn; the final message still goes.
        let deliveries = try DeliveryFixtures.rows(c, jobID: job.id)
        XCTAssertEqual(deliveries.map(\.kind), ["album", "message"])
        XCTAssertEqual(deliveries.map(\.state), ["failed", "pending"])
        XCTAssertEqual(deliveries[0].lastError, "withdrawn: the customer deleted their data")
        // Another customer's data is untouched by mine, and theirs to delete.
        XCTAssertEqual(theirKeys.filter(stored), theirKeys)
        XCTAssertEqual(try json(try call("GET", "/api/me", other))["user"]?["email"]?.stringValue, "bob@example.com")
        XCTAssertEqual(try call("GET", "/api/jobs/\(job.id)", other).status, 404)
        XCTAssertEqual(try json(try call("DELETE", "/api/me/data", other))["deleted"], ["avatars": 1, "references": 1, "photos": 0])
        XCTAssertEqual(theirKeys.filter(stored), [])

        let again = try call("DELETE", "/api/me/data", me)
        XCTAssertEqual(try json(again)["deleted"], ["avatars": 0, "references": 0, "photos": 0], "nothing left to delete")
        // The customer starts over: a new avatar works.
        XCTAssertEqual(try avatarWithSelfies(me, [4]) > 0, true)
        XCTAssertEqual(try InvariantAudit.run(c), [])
    }

    func testRefusedWhileAGenerationRuns() throws {
        let avatar = try avatarWithSelfies(me, [11])
        let selfie = try XCTUnwrap(try keys("SELECT storage_key FROM reference_photos WHERE avatar_id = $1", [avatar]).first)
        let job = try JobFixtures.running(app.deps, telegramID: 9301, photos: 2)
        let r = try call("DELETE", "/api/me/data", me)
        XCTAssertEqual(r.status, 409, r.text)
        XCTAssertEqual(try json(r)["error"]?["code"]?.stringValue, "CONFLICT")
        XCTAssertTrue(stored(selfie), "nothing removed")
        XCTAssertEqual(try json(try call("GET", "/api/avatars", me))["avatars"]?.arrayValue?.count, 2)
        XCTAssertEqual(try call("DELETE", "/api/me/data", other).status, 200, "another customer's generation is not mine")

        try JobFixtures.settle(c, job, succeeded: 2, failed: 0)
        try DeliveryFixtures.storePhotos(app.deps, jobID: job.id)
        _ = try JobFinish.finish(c, jobID: job.id)
        let done = try call("DELETE", "/api/me/data", me)
        XCTAssertEqual(done.status, 200, done.text)
        XCTAssertEqual(try json(done)["deleted"]?["photos"]?.intValue, 2)
        XCTAssertFalse(stored(selfie))
    }

    /// A photo being sent this moment (its delivery `sending`, leased) cannot be withdrawn:
    /// 409, and nothing changed; once the row is back to waiting, the deletion withdraws it.
    func testRefusedWhileAPhotoIsBeingSent() throws {
        let job = try DeliveryFixtures.finishedJob(app.deps, telegramID: 9301, photos: 3, succeeded: 3)
        try c.execute("""
            UPDATE telegram_deliveries SET state = 'sending', lease_token = gen_random_uuid(), lease_until = now() + interval '1 minute'
            WHERE job_id = $1 AND kind = 'album'
            """, [job.id])
        let r = try call("DELETE", "/api/me/data", me)
        XCTAssertEqual(r.status, 409, r.text)
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM generated_photos WHERE media_removed_at IS NOT NULL")[0].int("n"), 0)
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM reference_photos")[0].int("n"), 1, "rolled back")
        XCTAssertEqual(try json(try call("GET", "/api/jobs/\(job.id)", me))["photos"]?.arrayValue?.count, 3)
        // The same for deleting the avatar.
        let avatar = try c.query("SELECT avatar_id FROM generation_jobs WHERE id = $1", [job.id])[0].requiredInt("avatar_id")
        XCTAssertEqual(try call("DELETE", "/api/avatars/\(avatar)", me).status, 409)

        try c.execute("UPDATE telegram_deliveries SET state = 'pending', lease_token = NULL, lease_until = NULL WHERE job_id = $1", [job.id])
        XCTAssertEqual(try call("DELETE", "/api/avatars/\(avatar)", me).status, 204)
        XCTAssertEqual(try DeliveryFixtures.rows(c, jobID: job.id).map(\.state), ["failed", "pending"])
        XCTAssertEqual(try DeliveryFixtures.rows(c, jobID: job.id).first?.lastError, "withdrawn: the customer deleted the avatar")
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM generated_photos WHERE media_removed_at IS NOT NULL")[0].int("n"), 3)
        XCTAssertEqual(try json(try call("GET", "/api/jobs/\(job.id)", me))["photos"]?.arrayValue?.count, 0)
    }
}

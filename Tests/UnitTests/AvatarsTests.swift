import Foundation
import HTTPCore
import PinGlassTesting
import Postgres
import XCTest
import JSON
import LibCrypto
@testable import PinGlass
@testable import PinGlassWeb

/// Avatars and reference photos in-process, with the real fs media store under a temp folder.
final class AvatarsTests: DatabaseTestCase {
    var app: InProcessApp!
    let me = Fixtures.auth(telegramID: 9101)
    let other = Fixtures.auth(telegramID: 9102)

    override func setUpWithError() throws {
        try super.setUpWithError()
        let env = try Fixtures.inProcessMediaEnv()
        app = try InProcessApp(database: db, env: env)
    }

    func call(_ method: String, _ path: String, _ auth: (String, String), body: [UInt8] = [], type: String = "application/json") throws -> TestClient.Response {
        try app.client.execute(method, path, headers: [auth, ("Content-Type", type)], body: body)
    }
    func json(_ r: TestClient.Response) throws -> JSON { try JSON.parse(r.body) }

    func makeAvatar(_ auth: (String, String), _ name: String = "me") throws -> Int {
        let r = try call("POST", "/api/avatars", auth, body: Array(#"{"name":"\#(name)"}"#.utf8))
        XCTAssertEqual(r.status, 201, r.text)
        return try XCTUnwrap(json(r)["avatar"]?["id"]?.intValue)
    }

    func testAvatarsAreTheCallersOwnAndAtMostThree() throws {
        let id = try makeAvatar(me, "first")
        XCTAssertEqual(try json(try call("GET", "/api/avatars/\(id)", me))["name"]?.stringValue, "first")
        XCTAssertEqual(try call("GET", "/api/avatars/\(id)", other).status, 404, "someone else's avatar")
        XCTAssertEqual(try call("PATCH", "/api/avatars/\(id)", other, body: Array(#"{"name":"x"}"#.utf8)).status, 404)
        XCTAssertEqual(try call("DELETE", "/api/avatars/\(id)", other).status, 404)
        let renamed = try call("PATCH", "/api/avatars/\(id)", me, body: Array(#"{"name":"  renamed  "}"#.utf8))
        XCTAssertEqual(try json(renamed)["avatar"]?["name"]?.stringValue, "renamed")
        XCTAssertEqual(try call("PATCH", "/api/avatars/\(id)", me, body: Array(#"{"name":""}"#.utf8)).status, 400)
        _ = try makeAvatar(me, "second")
        _ = try makeAvatar(me, "third")
        let fourth = try call("POST", "/api/avatars", me, body: Array(#"{"name":"fourth"}"#.utf8))
        XCTAssertEqual(fourth.status, 429)
        XCTAssertEqual(try json(fourth)["error"]?["code"]?.stringValue, "LIMIT_REACHED")
        XCTAssertEqual(try json(try call("GET", "/api/avatars", me))["avatars"]?.arrayValue?.count, 3)
        XCTAssertEqual(try json(try call("GET", "/api/avatars", other))["avatars"]?.arrayValue?.count, 0)
        XCTAssertEqual(try call("DELETE", "/api/avatars/\(id)", me).status, 204)
        XCTAssertEqual(try call("GET", "/api/avatars/\(id)", me).status, 404)
        XCTAssertEqual(try call("POST", "/api/avatars", me, body: Array(#"{"name":"again"}"#.utf8)).status, 201, "a deleted one frees a place")
    }

    func testReferencesByMagicBytesRawAndDataURLsWithDuplicatesCollapsed() throws {
        let id = try makeAvatar(me)
        let raw = try call("POST", "/api/avatars/\(id)/references", me, body: GenerationFixtures.jpeg(1), type: "image/jpeg")
        XCTAssertEqual(raw.status, 201, raw.text)
        let first = try XCTUnwrap(json(raw)["uploaded"]?.arrayValue?.first?["id"]?.intValue)
        let url = try XCTUnwrap(json(raw)["uploaded"]?.arrayValue?.first?["url"]?.stringValue)
        XCTAssertTrue(url.hasPrefix("http://127.0.0.1:8080/media/references/"), url)
        XCTAssertTrue(url.contains("md5=") && url.contains("expires="), "a signed, expiring link: \(url)")
        // The same bytes again: the same reference, not a second copy.
        let again = try call("POST", "/api/avatars/\(id)/references", me, body: GenerationFixtures.jpeg(1), type: "image/jpeg")
        XCTAssertEqual(try json(again)["uploaded"]?.arrayValue?.first?["id"]?.intValue, first)
        // Declared PNG but JPEG bytes, and text: 415.
        XCTAssertEqual(try call("POST", "/api/avatars/\(id)/references", me, body: GenerationFixtures.jpeg(2), type: "image/png").status, 415)
        XCTAssertEqual(try call("POST", "/api/avatars/\(id)/references", me, body: Array("hello".utf8), type: "image/jpeg").status, 415)
        XCTAssertEqual(try call("POST", "/api/avatars/\(id)/references", me, body: Array("hello".utf8), type: "text/plain").status, 415)
        XCTAssertEqual(try call("POST", "/api/avatars/\(id)/references", me, body: GenerationFixtures.jpeg(3, size: (10 << 20) + 1),
                            type: "image/jpeg").status, 413)
        // The original client's JSON form: one good PNG, one not an image, one not a data URL.
        let png = "data:image/png;base64," + Crypto.base64(GenerationFixtures.png(4))
        let text = "data:image/jpeg;base64," + Crypto.base64(Array("not an image".utf8))
        let body = JSON.object([("referenceImages", .array([.string(png), .string(text), "https://elsewhere/x.jpg"]))]).bytes
        let mixed = try json(try call("POST", "/api/avatars/\(id)/references", me, body: body))
        XCTAssertEqual(mixed["uploaded"]?.arrayValue?.count, 1)
        XCTAssertEqual(mixed["rejected"]?.arrayValue?.compactMap { $0["index"]?.intValue }, [1, 2])
        let refs = try json(try call("GET", "/api/avatars/\(id)/references", me))["references"]?.arrayValue ?? []
        XCTAssertEqual(refs.count, 2)
        XCTAssertEqual(try call("GET", "/api/avatars/\(id)/references", other).status, 404)
        XCTAssertEqual(try json(try call("GET", "/api/avatars/\(id)", me))["status"]?.stringValue, "ready")
        // The stored object is the upload, under an unguessable name.
        let c = try db.connect()
        let key = try c.query("SELECT storage_key FROM reference_photos WHERE id = $1", [first])[0].requiredString("storage_key")
        XCTAssertTrue(key.range(of: #"^references/[0-9a-f]{32}\.jpg$"#, options: .regularExpression) != nil, key)
        XCTAssertEqual(try app.deps.media.get(key: key), GenerationFixtures.jpeg(1))
        // Deleting a reference removes its object.
        XCTAssertEqual(try call("DELETE", "/api/avatars/\(id)/references/\(first)", other).status, 404)
        XCTAssertEqual(try call("DELETE", "/api/avatars/\(id)/references/\(first)", me).status, 204)
        XCTAssertThrowsError(try app.deps.media.get(key: key))
    }

    func testAtMostTwentyReferences() throws {
        let id = try makeAvatar(me)
        let images = (0..<20).map { JSON.string("data:image/jpeg;base64," + Crypto.base64(GenerationFixtures.jpeg(100 + $0))) }
        let r = try json(try call("POST", "/api/avatars/\(id)/references", me, body: JSON.object([("referenceImages", .array(images))]).bytes))
        XCTAssertEqual(r["uploaded"]?.arrayValue?.count, 20)
        let more = try call("POST", "/api/avatars/\(id)/references", me, body: GenerationFixtures.jpeg(999), type: "image/jpeg")
        XCTAssertEqual(more.status, 400)
        XCTAssertTrue(try json(more)["rejected"]?.arrayValue?.first?["reason"]?.stringValue?.contains("20") ?? false, more.text)
        XCTAssertEqual(try db.connect().query("SELECT count(*)::int AS n FROM reference_photos")[0].int("n"), 20)
    }

    func testDeletingAnAvatarRemovesItsObjectsAndIsRefusedWhileAJobRuns() throws {
        let id = try makeAvatar(me)
        let up = try json(try call("POST", "/api/avatars/\(id)/references", me, body: GenerationFixtures.jpeg(7), type: "image/jpeg"))
        XCTAssertEqual(up["uploaded"]?.arrayValue?.count, 1)
        let c = try db.connect()
        let key = try c.query("SELECT storage_key FROM reference_photos WHERE avatar_id = $1", [id])[0].requiredString("storage_key")
        let userID = try c.query("SELECT user_id FROM avatars WHERE id = $1", [id])[0].requiredInt("user_id")
        let pay = try c.query("""
            INSERT INTO payments (user_id, order_id, terminal, terminal_key, tbank_payment_id, tier, photo_count, amount_kopecks, status, redirect_due_at)
            VALUES ($1, 'o-del', 'test', 'k', 'b-del', 'starter', 7, 49900, 'succeeded', now()) RETURNING id
            """, [userID])[0].requiredInt("id")
        let job = try c.query("""
            INSERT INTO generation_jobs (user_id, avatar_id, payment_id, style_id, total_photos, deadline_at)
            VALUES ($1, $2, $3, 'pinglass', 7, now() + interval '1 hour') RETURNING id
            """, [userID, id, pay])[0].requiredInt("id")
        try c.execute("UPDATE payments SET consumed_by_job = $1 WHERE id = $2", [job, pay])
        let refused = try call("DELETE", "/api/avatars/\(id)", me)
        XCTAssertEqual(refused.status, 409, refused.text)
        XCTAssertEqual(try call("POST", "/api/avatars/\(id)/references", me, body: GenerationFixtures.jpeg(8), type: "image/jpeg").status, 409)
        // The job is ended by hand (no tasks, no refund row): only the avatar's lock is under test.
        db.auditOnDrop = false
        try c.execute("UPDATE generation_jobs SET status = 'failed', finished_at = now() WHERE id = $1", [job])
        XCTAssertEqual(try call("DELETE", "/api/avatars/\(id)", me).status, 204)
        XCTAssertThrowsError(try app.deps.media.get(key: key), "the reference's object is gone")
    }

    /// The avatar's status follows its selfies: `ready` with one, `draft` again once the last
    /// one is deleted (the Mini App then asks for selfies rather than offering a generation
    /// that `POST /api/generate` refuses with NO_REFERENCE_IMAGES).
    func testAnAvatarWithoutSelfiesIsADraftAgain() throws {
        let id = try makeAvatar(me)
        XCTAssertEqual(try json(try call("GET", "/api/avatars/\(id)", me))["status"]?.stringValue, "draft")
        var refs: [Int] = []
        for seed in [70, 71] {
            let up = try json(try call("POST", "/api/avatars/\(id)/references", me, body: GenerationFixtures.jpeg(seed), type: "image/jpeg"))
            refs.append(try XCTUnwrap(up["uploaded"]?.arrayValue?.first?["id"]?.intValue))
        }
        XCTAssertEqual(try json(try call("GET", "/api/avatars/\(id)", me))["status"]?.stringValue, "ready")
        XCTAssertEqual(try call("DELETE", "/api/avatars/\(id)/references/\(refs[0])", me).status, 204)
        XCTAssertEqual(try json(try call("GET", "/api/avatars/\(id)", me))["status"]?.stringValue, "ready", "one selfie is left")
        XCTAssertEqual(try call("DELETE", "/api/avatars/\(id)/references/\(refs[1])", me).status, 204)
        let bare = try json(try call("GET", "/api/avatars/\(id)", me))
        XCTAssertEqual(bare["status"]?.stringValue, "draft")
        XCTAssertEqual(bare["referenceCount"]?.intValue, 0)
        XCTAssertEqual(try call("POST", "/api/avatars/\(id)/references", me, body: GenerationFixtures.jpeg(72), type: "image/jpeg").status, 201)
        XCTAssertEqual(try json(try call("GET", "/api/avatars/\(id)", me))["status"]?.stringValue, "ready", "ready again")
    }

    /// An upload refused after its object was stored (a generation started meanwhile) leaves
    /// no face behind in storage.
    func testARefusedUploadLeavesNoObject() throws {
        let id = try makeAvatar(me)
        XCTAssertEqual(try call("POST", "/api/avatars/\(id)/references", me, body: GenerationFixtures.jpeg(60), type: "image/jpeg").status, 201)
        let c = try db.connect()
        let userID = try c.query("SELECT user_id FROM avatars WHERE id = $1", [id])[0].requiredInt("user_id")
        let pay = try c.query("""
            INSERT INTO payments (user_id, order_id, terminal, terminal_key, tbank_payment_id, tier, photo_count, amount_kopecks, status, redirect_due_at)
            VALUES ($1, 'o-orphan', 'test', 'k', 'b-orphan', 'starter', 7, 49900, 'succeeded', now()) RETURNING id
            """, [userID])[0].requiredInt("id")
        let job = try c.query("""
            INSERT INTO generation_jobs (user_id, avatar_id, payment_id, style_id, total_photos, deadline_at)
            VALUES ($1, $2, $3, 'pinglass', 7, now() + interval '1 hour') RETURNING id
            """, [userID, id, pay])[0].requiredInt("id")
        try c.execute("UPDATE payments SET consumed_by_job = $1 WHERE id = $2", [job, pay])
        let folder = app.deps.config.storageDir + "/references"
        let before = try FileManager.default.contentsOfDirectory(atPath: folder).filter { !$0.hasPrefix(".") }
        XCTAssertEqual(try call("POST", "/api/avatars/\(id)/references", me, body: GenerationFixtures.jpeg(61), type: "image/jpeg").status, 409)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder).filter { !$0.hasPrefix(".") }, before)
    }
}

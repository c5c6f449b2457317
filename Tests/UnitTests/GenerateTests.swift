import Foundation
import HTTPCore
import PinGlassTesting
import Postgres
import XCTest
import JSON
import LibCrypto
@testable import PinGlass
@testable import PinGlassWeb

/// `POST /api/generate` and job progress in-process: one transaction that consumes one
/// payment and queues the payment's number of tasks.
final class GenerateTests: DatabaseTestCase {
    var app: InProcessApp!
    var c: Connection!

    override func setUpWithError() throws {
        try super.setUpWithError()
        var env = Fixtures.env(simURL: "http://127.0.0.1:9")
        env["MEDIA_KEY_SECRET"] = GenerationFixtures.mediaSecret
        env["STORAGE_DIR"] = try TestEnvironment.makeTempDir("media")
        app = try InProcessApp(database: db, env: env)
        c = try db.connect()
    }

    func generate(_ tg: Int64, _ body: String) throws -> TestClient.Response {
        try app.client.post("/api/generate", body: body, headers: [Fixtures.auth(telegramID: tg)])
    }
    func code(_ r: TestClient.Response) -> String? { (try? JSON.parse(r.body))?["error"]?["code"]?.stringValue }
    /// Lets the next generate call through the one-per-minute limit.
    func forwardAMinute() throws { try c.execute("UPDATE generation_jobs SET created_at = created_at - interval '2 minutes'") }

    func testOnePaymentOneJobWithThePaymentsPhotoCount() throws {
        let ready = try GenerationFixtures.readyToGenerate(c, telegramID: 9201, tier: "standard", photos: 15)
        let r = try generate(9201, #"{"avatarId":\#(ready.avatarID),"styleId":"pinglass","photos":99,"totalPhotos":99}"#)
        XCTAssertEqual(r.status, 202, r.text)
        let body = try JSON.parse(r.body)
        XCTAssertEqual(body["totalPhotos"]?.intValue, 15, "the payment decides, not the client")
        XCTAssertEqual(body["status"]?.stringValue, "queued")
        let jobID = try XCTUnwrap(body["jobId"]?.intValue)
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM generation_tasks WHERE job_id = $1 AND state = 'queued'", [jobID])[0].int("n"), 15)
        XCTAssertEqual(try c.query("SELECT consumed_by_job FROM payments WHERE id = $1", [ready.paymentID])[0].int("consumed_by_job"), jobID)
        try forwardAMinute()
        let second = try generate(9201, #"{"avatarId":\#(ready.avatarID)}"#)
        XCTAssertEqual(second.status, 402)
        XCTAssertEqual(code(second), "PAYMENT_CONSUMED")
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM generation_jobs")[0].int("n"), 1)
    }

    func testRefusalsLeaveThePaymentUnconsumed() throws {
        XCTAssertEqual(code(try generate(9301, #"{"avatarId":1}"#)), "AVATAR_NOT_FOUND")
        let ready = try GenerationFixtures.readyToGenerate(c, telegramID: 9302)
        try c.execute("DELETE FROM reference_photos WHERE avatar_id = $1", [ready.avatarID])
        let noRefs = try generate(9302, #"{"avatarId":\#(ready.avatarID)}"#)
        XCTAssertEqual(noRefs.status, 400)
        XCTAssertEqual(code(noRefs), "NO_REFERENCE_IMAGES")
        XCTAssertNil(try c.query("SELECT consumed_by_job FROM payments WHERE id = $1", [ready.paymentID])[0].int("consumed_by_job"))
        XCTAssertEqual(code(try generate(9302, #"{"avatarId":\#(ready.avatarID),"styleId":"nope"}"#)), "VALIDATION_ERROR")
        // Someone else's avatar, and no payment at all.
        let stranger = try GenerationFixtures.readyToGenerate(c, telegramID: 9303)
        XCTAssertEqual(code(try generate(9302, #"{"avatarId":\#(stranger.avatarID)}"#)), "AVATAR_NOT_FOUND")
        try c.execute("UPDATE payments SET status = 'authorized' WHERE id = $1", [stranger.paymentID])
        let unpaid = try generate(9303, #"{"avatarId":\#(stranger.avatarID)}"#)
        XCTAssertEqual(unpaid.status, 402)
        XCTAssertEqual(code(unpaid), "PAYMENT_REQUIRED", "a hold is not money")
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM generation_jobs")[0].int("n"), 0)
    }

    func testTestPaymentsDoNotBuyGenerationsInProduction() throws {
        let ready = try GenerationFixtures.readyToGenerate(c, telegramID: 9401)
        try c.execute("INSERT INTO settings (key, value) VALUES ('tbank_mode', 'production') ON CONFLICT (key) DO UPDATE SET value = 'production'")
        var env = Fixtures.env(simURL: "http://127.0.0.1:9", production: true)
        env["STORAGE_DIR"] = try TestEnvironment.makeTempDir("media")
        app = try InProcessApp(database: db, env: env)
        let r = try generate(9401, #"{"avatarId":\#(ready.avatarID)}"#)
        XCTAssertEqual(r.status, 402)
        XCTAssertTrue(r.text.contains("test payments"), r.text)
        env["TEST_TELEGRAM_IDS"] = "9401"
        app = try InProcessApp(database: db, env: env)
        XCTAssertEqual(try generate(9401, #"{"avatarId":\#(ready.avatarID)}"#).status, 202, "staff on TEST_TELEGRAM_IDS")
    }

    /// The mode that lets a test payment through is the one in force when the payment is
    /// consumed: a generate held at the user's lock while an admin switches to production
    /// then finds the production terminal in force and refuses the test payment.
    func testASwitchToProductionBeforeTheConsumeRefusesATestPayment() throws {
        let ready = try GenerationFixtures.readyToGenerate(c, telegramID: 9451)
        let userID = try c.query("SELECT id FROM users WHERE telegram_user_id = 9451")[0].requiredInt("id")
        let holder = try db.connect()
        try holder.execute("BEGIN")
        try holder.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", [userID])
        nonisolated(unsafe) let start = GenerationStart(deps: app.deps)
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var outcome: Result<StartedJob, Error>?
        DispatchQueue.global().async {
            outcome = Result { try start.start(user: AuthenticatedUser(id: userID, telegramID: 9451), avatarID: ready.avatarID,
                                               styleID: "pinglass", paymentBankID: nil) }
            done.signal()
        }
        try Subprocess.waitUntil("the generate waiting for the user's lock") {
            try c.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")[0]
                .requiredInt("n") == 1
        }
        try c.execute("UPDATE settings SET value = 'production' WHERE key = 'tbank_mode'")
        try holder.execute("COMMIT")
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success)
        guard case .failure(let error as GenerationError)? = outcome, case .paymentRequired(let why) = error else {
            return XCTFail("the test payment was consumed after the switch: \(String(describing: outcome))")
        }
        XCTAssertTrue(why.contains("test payments"), why)
        XCTAssertNil(try c.query("SELECT consumed_by_job FROM payments WHERE id = $1", [ready.paymentID])[0].int("consumed_by_job"))
    }

    /// S4: an operator's refund of an unconsumed payment is in flight (its Cancel has not
    /// landed): the payment must not be consumed, or the user gets the photos and the money.
    /// The API answers as with no usable payment (402 PAYMENT_REQUIRED); a payment no refund
    /// touched is used instead; a failed refund (to be re-queued) blocks it too.
    func testAPaymentBeingRefundedIsNotConsumed() throws {
        let ready = try GenerationFixtures.readyToGenerate(c, telegramID: 9351)
        let queued = try ManualRefunds.request(c, payment: ready.bankID, amount: Money(kopecks: 49_900), reason: "customer asked",
                                               ticket: "T-9351", actor: "test")
        let refused = try generate(9351, #"{"avatarId":\#(ready.avatarID)}"#)
        XCTAssertEqual(refused.status, 402, refused.text)
        XCTAssertEqual(code(refused), "PAYMENT_REQUIRED")
        XCTAssertTrue(refused.text.contains("being refunded"), refused.text)
        XCTAssertNil(try c.query("SELECT consumed_by_job FROM payments WHERE id = $1", [ready.paymentID])[0].int("consumed_by_job"))
        let auth = Fixtures.auth(telegramID: 9351)
        let status = try JSON.parse(try app.client.get("/api/payment/status", query: "payment_id=\(ready.bankID)", headers: [auth]).body)
        XCTAssertEqual(status["usable"], false, "the status endpoint tells the same")

        // Failed (the bank refused it): still not consumable until an operator settles it.
        try c.execute("UPDATE refunds SET state = 'requested' WHERE id = $1", [queued.refundID])
        try c.execute("UPDATE refunds SET state = 'failed', finished_at = now() WHERE id = $1", [queued.refundID])
        XCTAssertEqual(code(try generate(9351, #"{"avatarId":\#(ready.avatarID)}"#)), "PAYMENT_REQUIRED")

        // A second, untouched payment of the same user is used, though the refunded one is older.
        let userID = try c.query("SELECT user_id FROM payments WHERE id = $1", [ready.paymentID])[0].requiredInt("user_id")
        let fresh = try c.query("""
            INSERT INTO payments (user_id, order_id, terminal, terminal_key, tbank_payment_id, tier, photo_count, amount_kopecks, status,
                                  paid_at, redirect_due_at)
            VALUES ($1, 'o9351', 'test', 'k', 'b9351', 'starter', 7, 49900, 'succeeded', now(), now() + interval '1 day') RETURNING id
            """, [userID])[0].requiredInt("id")
        let r = try generate(9351, #"{"avatarId":\#(ready.avatarID)}"#)
        XCTAssertEqual(r.status, 202, r.text)
        XCTAssertNotNil(try c.query("SELECT consumed_by_job FROM payments WHERE id = $1", [fresh])[0].int("consumed_by_job"))
        XCTAssertNil(try c.query("SELECT consumed_by_job FROM payments WHERE id = $1", [ready.paymentID])[0].int("consumed_by_job"))
    }

    func testPerUserLimitsOneAMinuteAndThreeActive() throws {
        for i in 0..<4 { try GenerationFixtures.readyToGenerate(c, telegramID: 9501) ; _ = i }
        let avatars = try c.query("SELECT a.id FROM avatars a JOIN users u ON u.id = a.user_id WHERE u.telegram_user_id = 9501 ORDER BY a.id")
            .map { $0.requiredInt("id") }
        XCTAssertEqual(try generate(9501, #"{"avatarId":\#(avatars[0])}"#).status, 202)
        let soon = try generate(9501, #"{"avatarId":\#(avatars[1])}"#)
        XCTAssertEqual(soon.status, 429)
        XCTAssertEqual(code(soon), "RATE_LIMIT_EXCEEDED")
        XCTAssertNotNil(soon.header("Retry-After"))
        try forwardAMinute()
        XCTAssertEqual(try generate(9501, #"{"avatarId":\#(avatars[1])}"#).status, 202)
        try forwardAMinute()
        XCTAssertEqual(try generate(9501, #"{"avatarId":\#(avatars[2])}"#).status, 202)
        try forwardAMinute()
        let fourth = try generate(9501, #"{"avatarId":\#(avatars[3])}"#)
        XCTAssertEqual(fourth.status, 429, "three active jobs at most")
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM payments p JOIN users u ON u.id = p.user_id WHERE u.telegram_user_id = 9501 AND consumed_by_job IS NULL")[0].int("n"), 1)
    }

    /// Prompts already used for this avatar are not used again while unused ones remain.
    func testPromptsAreNotReusedForAnAvatar() throws {
        let ready = try GenerationFixtures.readyToGenerate(c, telegramID: 9601, photos: 7)
        let userID = try c.query("SELECT user_id FROM avatars WHERE id = $1", [ready.avatarID])[0].requiredInt("user_id")
        var seen: [Set<Int>] = []
        for round in 0..<3 {
            if round > 0 {
                try c.execute("""
                    INSERT INTO payments (user_id, order_id, terminal, terminal_key, tbank_payment_id, tier, photo_count, amount_kopecks, status, redirect_due_at)
                    VALUES ($1, 'o\(round)', 'test', 'k', 'b9601\(round)', 'starter', 7, 49900, 'succeeded', now())
                    """, [userID])
                try forwardAMinute()
            }
            let r = try generate(9601, #"{"avatarId":\#(ready.avatarID),"styleId":"pinglass"}"#)
            XCTAssertEqual(r.status, 202, r.text)
            let job = try XCTUnwrap(JSON.parse(r.body)["jobId"]?.intValue)
            let prompts = Set(try c.query("SELECT prompt_id FROM generation_tasks WHERE job_id = $1", [job]).map { $0.requiredInt("prompt_id") })
            XCTAssertEqual(prompts.count, 7, "seven different prompts")
            seen.append(prompts)
        }
        let total = try c.query("SELECT count(*)::int AS n FROM prompts WHERE style_id = 'pinglass'")[0].requiredInt("n")
        XCTAssertGreaterThanOrEqual(total, 14)
        XCTAssertTrue(seen[0].isDisjoint(with: seen[1]), "the second job uses unused prompts")
        if total >= 21 { XCTAssertTrue(seen[2].isDisjoint(with: seen[0].union(seen[1]))) }
    }

    func testProgressShowsThisJobOnlyToItsOwner() throws {
        let ready = try GenerationFixtures.readyToGenerate(c, telegramID: 9701)
        let job = try XCTUnwrap(JSON.parse(try generate(9701, #"{"avatarId":\#(ready.avatarID)}"#).body)["jobId"]?.intValue)
        // Another job of the same user with a photo: it must not show up in this job's answer.
        let other = try GenerationFixtures.readyToGenerate(c, telegramID: 9701)
        try forwardAMinute()
        let job2 = try XCTUnwrap(JSON.parse(try generate(9701, #"{"avatarId":\#(other.avatarID)}"#).body)["jobId"]?.intValue)
        let task2 = try c.query("SELECT id FROM generation_tasks WHERE job_id = $1 LIMIT 1", [job2])[0].requiredInt("id")
        try c.execute("UPDATE generation_tasks SET state = 'succeeded', kie_task_id = 'k1', finished_at = now() WHERE id = $1", [task2])
        try c.execute("""
            INSERT INTO generated_photos (job_id, task_id, avatar_id, storage_key, content_type, byte_size, sha256)
            VALUES ($1, $2, $3, 'generated/x.png', 'image/png', 10, '\\x00')
            """, [job2, task2, other.avatarID])
        let auth = Fixtures.auth(telegramID: 9701)
        let p = try JSON.parse(try app.client.get("/api/jobs/\(job)", headers: [auth]).body)
        XCTAssertEqual(p["jobId"]?.intValue, job)
        XCTAssertEqual(p["photos"]?.arrayValue?.count, 0, "photos of this job only")
        XCTAssertEqual(p["progress"]?["total"]?.intValue, 7)
        let stored = try JSON.parse(try app.client.get("/api/generate", query: "job_id=\(job2)", headers: [auth]).body)
        XCTAssertEqual(stored["photos"]?.arrayValue?.count, 0, "stored but in no delivery batch yet: not released")
        try c.execute("UPDATE generated_photos SET released_at = now() WHERE task_id = $1", [task2])
        let q = try JSON.parse(try app.client.get("/api/generate", query: "job_id=\(job2)", headers: [auth]).body)
        XCTAssertEqual(q["photos"]?.arrayValue?.count, 1)
        XCTAssertEqual(q["progress"]?["completed"]?.intValue, 1)
        XCTAssertEqual(q["progress"]?["percentage"]?.intValue, 14)
        let stranger = Fixtures.auth(telegramID: 9702)
        XCTAssertEqual(try app.client.get("/api/jobs/\(job)", headers: [stranger]).status, 404)
        XCTAssertEqual(try app.client.get("/api/generate", query: "job_id=abc", headers: [auth]).status, 400)
    }

    /// A client written for the original keeps working: its `telegramUserId` (checked
    /// against the signed user, never trusted alone), `useStoredReferences`, inline
    /// `referenceImages` stored as the avatar's references with the upload checks, and its
    /// style ids.
    func testTheOriginalClientsRequestShape() throws {
        let ready = try GenerationFixtures.readyToGenerate(c, telegramID: 9801)
        func refs(_ avatar: Int) throws -> Int {
            try c.query("SELECT count(*)::int AS n FROM reference_photos WHERE avatar_id = $1", [avatar])[0].requiredInt("n")
        }
        func consumed(_ payment: Int) throws -> Bool {
            try c.query("SELECT consumed_by_job IS NOT NULL AS c FROM payments WHERE id = $1", [payment])[0].bool("c") == true
        }
        let jpeg = "data:image/jpeg;base64," + Crypto.base64(GenerationFixtures.jpeg(9801))
        let pngAsJPEG = "data:image/jpeg;base64," + Crypto.base64(GenerationFixtures.png(9801))
        // Someone else's id next to valid init data: refused, nothing stored or consumed.
        let forged = try generate(9801, #"{"avatarId":\#(ready.avatarID),"telegramUserId":9802,"referenceImages":["\#(jpeg)"]}"#)
        XCTAssertEqual(forged.status, 403, forged.text)
        XCTAssertEqual(code(forged), "FORBIDDEN")
        XCTAssertEqual(code(try generate(9801, #"{"avatarId":\#(ready.avatarID),"telegramUserId":"me"}"#)), "VALIDATION_ERROR")
        XCTAssertEqual(code(try generate(9801, #"{"avatarId":\#(ready.avatarID),"useStoredReferences":false}"#)), "VALIDATION_ERROR")
        XCTAssertEqual(code(try generate(9801, #"{"avatarId":\#(ready.avatarID),"useStoredReferences":"yes"}"#)), "VALIDATION_ERROR")
        XCTAssertEqual(try refs(ready.avatarID), 1)
        XCTAssertFalse(try consumed(ready.paymentID))

        // The original's shape: one new image stored (its duplicate once), a PNG declared as
        // JPEG and a link refused, the style "professional" is our "business".
        let r = try generate(9801, #"""
            {"avatarId":"\#(ready.avatarID)","styleId":"professional","telegramUserId":9801,"useStoredReferences":false,
             "photoCount":23,"referenceImages":["\#(jpeg)","\#(pngAsJPEG)","https://example.com/me.jpg","\#(jpeg)"]}
            """#)
        XCTAssertEqual(r.status, 202, r.text)
        let body = try JSON.parse(r.body)
        XCTAssertEqual(body["success"], true)
        let jobID = try XCTUnwrap(body["data"]?["jobId"]?.intValue)
        XCTAssertEqual(body["jobId"]?.intValue, jobID)
        XCTAssertEqual(body["data"]?["totalPhotos"]?.intValue, 7, "the payment decides, not photoCount")
        XCTAssertEqual(body["referenceImagesUsed"]?.intValue, 2, "the image and its duplicate, stored once")
        XCTAssertEqual(body["referenceImagesRejected"]?.intValue, 2)
        XCTAssertEqual(try refs(ready.avatarID), 2)
        XCTAssertEqual(try c.query("SELECT style_id FROM generation_jobs WHERE id = $1", [jobID])[0].string("style_id"), "business")
        XCTAssertEqual(try c.query("""
            SELECT count(*)::int AS n FROM generation_tasks t JOIN prompts p ON p.id = t.prompt_id WHERE t.job_id = $1 AND p.style_id = 'business'
            """, [jobID])[0].int("n"), 7)

        // Only unusable images and no stored ones: NO_REFERENCE_IMAGES with the reasons.
        let bare = try GenerationFixtures.readyToGenerate(c, telegramID: 9803)
        try c.execute("DELETE FROM reference_photos WHERE avatar_id = $1", [bare.avatarID])
        let none = try generate(9803, #"{"avatarId":\#(bare.avatarID),"referenceImages":["\#(pngAsJPEG)","data:text/plain;base64,aGk="]}"#)
        XCTAssertEqual(none.status, 400, none.text)
        XCTAssertEqual(code(none), "NO_REFERENCE_IMAGES")
        XCTAssertEqual((try JSON.parse(none.body))["error"]?["details"]?["rejectedImages"]?.arrayValue?.count, 2)
        XCTAssertFalse(try consumed(bare.paymentID))

        // The per-avatar limit holds here too: a full avatar refuses the image and generates
        // with its own references.
        let full = try GenerationFixtures.readyToGenerate(c, telegramID: 9804)
        try c.execute("""
            INSERT INTO reference_photos (avatar_id, storage_key, content_type, byte_size, sha256)
            SELECT $1, 'references/full-' || g || '.jpg', 'image/jpeg', 100, sha256(g::text::bytea) FROM generate_series(1, 19) g
            """, [full.avatarID])
        let limited = try generate(9804, #"{"avatarId":\#(full.avatarID),"styleId":"lifestyle","referenceImages":["\#(jpeg)"]}"#)
        XCTAssertEqual(limited.status, 202, limited.text)
        XCTAssertEqual((try JSON.parse(limited.body))["referenceImagesRejected"]?.intValue, 1)
        XCTAssertEqual(try refs(full.avatarID), References.maxPerAvatar)
    }
}

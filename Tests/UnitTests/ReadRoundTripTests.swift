import Foundation
import HTTPCore
import PinGlassTesting
import Postgres
import XCTest
import JSON
import ProviderWire
@testable import PinGlass
@testable import PinGlassWeb

/// The Mini App's polling reads (`GET /api/payment/status`, `GET /api/jobs/{id}`,
/// `GET /api/avatars`) find the user and read what they answer in ONE statement: counted as
/// round trips through the worker's own PostgreSQL connection, once its statements are
/// prepared and the terminal mode is cached.
final class ReadRoundTripTests: DatabaseTestCase {

    func testPollingReadsTakeOneRoundTrip() throws {
        let c = try db.connect()
        let ready = try GenerationFixtures.readyToGenerate(c, telegramID: 7301)
        var env = Fixtures.env(simURL: "http://127.0.0.1:9")
        env["MEDIA_KEY_SECRET"] = GenerationFixtures.mediaSecret
        env["STORAGE_DIR"] = try TestEnvironment.makeTempDir("media")
        // A fixed clock: the cached terminal mode stays fresh between the calls.
        let app = try InProcessApp(database: db, env: env, now: Date().timeIntervalSince1970)
        let auth = Fixtures.auth(telegramID: 7301)
        let headers = [auth, ("Content-Type", "application/json")]
        let started = try app.client.post("/api/generate", body: #"{"avatarId":\#(ready.avatarID)}"#, headers: headers)
        XCTAssertEqual(started.status, 202, started.text)
        let job = try XCTUnwrap(JSON.parse(started.body)["jobId"]?.intValue)
        // One released photo (the API lists released photos only), so the job's answer carries
        // photos from the same statement.
        let task = try c.query("SELECT id FROM generation_tasks WHERE job_id = $1 ORDER BY prompt_index LIMIT 1", [job])[0].requiredInt("id")
        try c.execute("UPDATE generation_tasks SET state = 'succeeded', kie_task_id = 'k1', finished_at = now() WHERE id = $1", [task])
        try c.execute("""
            INSERT INTO generated_photos (job_id, task_id, avatar_id, storage_key, content_type, byte_size, sha256, released_at)
            VALUES ($1, $2, $3, 'generated/rt.png', 'image/png', 10, '\\x00', now())
            """, [job, task, ready.avatarID])
        // A second, unconsumed payment: `usable` needs the terminal mode.
        let userID = try c.query("SELECT user_id FROM avatars WHERE id = $1", [ready.avatarID])[0].requiredInt("user_id")
        try c.execute("""
            INSERT INTO payments (user_id, order_id, terminal, terminal_key, tbank_payment_id, tier, photo_count, amount_kopecks,
                                  status, paid_at, redirect_due_at)
            VALUES ($1, 'o7301', 'test', 'k', '7301001', 'starter', 7, 49900, 'succeeded', now(), now() + interval '1 day')
            """, [userID])
        let conn = try app.deps.db()
        let reads: [(String, String, (JSON) -> Void)] = [
            ("/api/payment/status", "payment_id=7301001", { XCTAssertEqual($0["usable"], true); XCTAssertEqual($0["paid"], true) }),
            ("/api/payment/status", "", { XCTAssertEqual($0["paymentId"]?.stringValue, "7301001", "the latest") }),
            ("/api/jobs/\(job)", "", { XCTAssertEqual($0["photos"]?.arrayValue?.count, 1); XCTAssertEqual($0["progress"]?["completed"]?.intValue, 1) }),
            ("/api/generate", "job_id=\(job)", { XCTAssertEqual($0["jobId"]?.intValue, job) }),
            ("/api/avatars", "", { XCTAssertEqual($0["avatars"]?.arrayValue?.map { $0["id"]?.intValue }, [ready.avatarID]) }),
        ]
        for (path, query, check) in reads {
            XCTAssertEqual(try app.client.get(path, query: query, headers: headers).status, 200, "warm-up \(path)")
            let before = conn.roundTrips
            let r = try app.client.get(path, query: query, headers: headers)
            XCTAssertEqual(r.status, 200, r.text)
            check(try JSON.parse(r.body))
            XCTAssertEqual(conn.roundTrips - before, 1, "\(path)?\(query): one statement for the user and the answer")
        }
        // Another user's job is still not found, in the same one statement.
        let stranger = Fixtures.auth(telegramID: 7302)
        XCTAssertEqual(try app.client.get("/api/jobs/\(job)", headers: [stranger]).status, 404)
        let before = conn.roundTrips
        XCTAssertEqual(try app.client.get("/api/jobs/\(job)", headers: [stranger]).status, 404)
        XCTAssertEqual(conn.roundTrips - before, 1)
        // A user seen for the first time is created (a second statement) and owns nothing.
        let newcomer = Fixtures.auth(telegramID: 7303)
        let list = try app.client.get("/api/avatars", headers: [newcomer])
        XCTAssertEqual(list.status, 200)
        XCTAssertEqual(try JSON.parse(list.body)["avatars"]?.arrayValue?.count, 0)
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM users WHERE telegram_user_id = 7303")[0].int("n"), 1)
        // A changed Telegram name is written, and the answer is still the user's.
        let renamed = ("Authorization", "tma " + TelegramInitData.sign(fields: [
            ("auth_date", String(Int(Date().timeIntervalSince1970))), ("user", #"{"id":7301,"first_name":"Renamed"}"#)],
            botToken: Fixtures.botToken))
        let mine = try app.client.get("/api/avatars", headers: [renamed])
        XCTAssertEqual(try JSON.parse(mine.body)["avatars"]?.arrayValue?.count, 1)
        XCTAssertEqual(try c.query("SELECT first_name FROM users WHERE telegram_user_id = 7301")[0].string("first_name"), "Renamed")
    }
}

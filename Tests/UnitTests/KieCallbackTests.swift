import Foundation
import PinGlassTesting
import Postgres
import XCTest
import JSON
import ProviderWire
@testable import PinGlass
@testable import PinGlassWeb

/// `POST /api/kie/callback` in-process: a signed hint that makes one running task due now.
final class KieCallbackTests: DatabaseTestCase {
    static let key = "test-webhook-hmac-key"
    static let now = 1_698_765_432.0

    var app: InProcessApp!
    var c: Connection!
    var job: JobFixtures.Job!

    override func setUpWithError() throws {
        try super.setUpWithError()
        app = try InProcessApp(database: db, env: ["KIE_WEBHOOK_HMAC_KEY": Self.key], now: Self.now)
        c = try db.connect()
        job = try JobFixtures.running(try PollFixtures.deps(db), telegramID: 9701, photos: 7)
        try c.execute("UPDATE generation_tasks SET run_at = now() + interval '1 hour' WHERE job_id = $1", [job.id])
    }

    /// Kie's documented formula with a vector computed from it (docs/providers.md#kie-callback).
    func testTheReferenceSignatureVector() {
        XCTAssertEqual(KieWebhookSignature.sign(taskID: "task_12345678", timestamp: "1698765432", key: Self.key),
                       "/a4fi9mniPwp7AhX9fVZfDa9ctQTIBb3WW9+rqKeR9k=")
    }

    func callback(_ taskID: String, timestamp: Double? = now, signature: String? = nil, body: String? = nil) throws -> TestClient.Response {
        var headers = [("Content-Type", "application/json")]
        if let timestamp {
            let ts = String(Int(timestamp))
            headers.append((KieWebhookSignature.timestampHeader, ts))
            headers.append((KieWebhookSignature.signatureHeader, signature ?? KieWebhookSignature.sign(taskID: taskID, timestamp: ts, key: Self.key)))
        }
        let json = body ?? #"{"code":200,"msg":"success","data":{"taskId":"\#(taskID)","state":"success","resultJson":"{}"}}"#
        return try app.client.post("/api/kie/callback", body: json, headers: headers)
    }

    func isDue(_ taskID: Int) throws -> Bool {
        try c.query("SELECT run_at <= now() AS due FROM generation_tasks WHERE id = $1", [taskID])[0].bool("due") ?? false
    }

    func outcomes() throws -> [String] {
        try c.query("SELECT outcome FROM webhook_logs WHERE source = 'kie' ORDER BY id").map { $0.requiredString("outcome") }
    }

    func testASignedCallbackMakesItsTaskDueNowWakesPollersAndThePollerAsksAtOnce() throws {
        let task = job.tasks[3]
        // A listener on `poll-kie` (psql prints what it receives after its statement).
        let url = db.url
        let heard = Locked("")
        let listening = DispatchSemaphore(value: 0)
        Thread {
            let out = (try? Subprocess.capture(try TestEnvironment.pgBin() + "/psql",
                                               ["-X", "-d", url, "-c", #"LISTEN "poll-kie""#, "-c", "SELECT pg_sleep(1.5) AS listener"]))?.1
            heard.mutate { $0 = out ?? "" }
            listening.signal()
        }.start()
        try Subprocess.waitUntil("the listener") {
            try c.query("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND query LIKE '%pg_sleep(1.5) AS listener%' AND state = 'active' AND pid <> pg_backend_pid()").count == 1
        }

        let r = try callback(task.kieID)
        XCTAssertEqual(r.status, 200, r.text)
        XCTAssertEqual(try JSON.parse(r.body)["received"], .bool(true))
        XCTAssertTrue(try isDue(task.id))
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM generation_tasks WHERE job_id = $1 AND run_at <= now()", [job.id])[0].int("n"), 1,
                       "only the named task")
        XCTAssertEqual(try outcomes(), ["applied"])
        XCTAssertEqual(listening.wait(timeout: .now() + 10), .success)
        XCTAssertTrue(heard.value.contains(#"notification "poll-kie" with payload "\#(task.kieID)""#), heard.value)

        // The next pass asks Kie about that task only, at once.
        let deps = try PollFixtures.deps(db)
        let kie = FakeKie()
        deps.kie = kie
        XCTAssertEqual(try KiePoller(deps: deps).runOnce(now: 0, deadline: .infinity).polled, 1)
        XCTAssertEqual(kie.polled, [task.kieID])
    }

    func testAnUnknownOrFinishedTaskIsAnswered200AndChangesNothing() throws {
        db.auditOnDrop = false   // a task is marked succeeded by hand (no photo) to be a finished one
        XCTAssertEqual(try callback("task_unknown").status, 200)
        try c.execute("UPDATE generation_tasks SET state = 'succeeded', finished_at = now() WHERE id = $1", [job.tasks[0].id])
        XCTAssertEqual(try callback(job.tasks[0].kieID).status, 200)
        XCTAssertFalse(try isDue(job.tasks[0].id))
        XCTAssertEqual(try outcomes(), ["ignored", "ignored"])
    }

    func testMissingWrongOrStaleSignaturesAreRefused() throws {
        let task = job.tasks[0]
        XCTAssertEqual(try callback(task.kieID, timestamp: nil).status, 401, "no headers")
        XCTAssertEqual(try callback(task.kieID, signature: "/a4fi9mniPwp7AhX9fVZfDa9ctQTIBb3WW9+rqKeR9k=").status, 401, "another task's signature")
        XCTAssertEqual(try callback(task.kieID, timestamp: Self.now - 301).status, 401, "signed, but stale")
        XCTAssertEqual(try callback(task.kieID, timestamp: Self.now + 301).status, 401, "signed, from the future")
        XCTAssertEqual(try callback(task.kieID, timestamp: Self.now - 299).status, 200, "within 5 minutes")
        XCTAssertEqual(try outcomes(), ["bad_signature", "bad_signature", "bad_signature", "bad_signature", "applied"])
        // The refusals changed nothing; only the last callback made the task due.
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM generation_tasks WHERE run_at <= now()")[0].int("n"), 1)
    }

    /// Without KIE_WEBHOOK_HMAC_KEY the endpoint does not exist: 404 like an unknown path,
    /// whatever is sent (signed or not, JSON or not), nothing stored, nothing logged.
    func testWithoutAKeyTheEndpointAnswers404AndLogsNothing() throws {
        let capture = LogCapture()
        app = try InProcessApp(database: db, now: Self.now, log: capture.logger(level: .trace))
        let task = job.tasks[1]
        let signed = try callback(task.kieID)
        XCTAssertEqual(signed.status, 404, signed.text)
        XCTAssertEqual(try JSON.parse(signed.body)["error"]?["code"]?.stringValue, "NOT_FOUND")
        for body in [#"{"data":{"taskId":"\#(task.kieID)","state":"success"}}"#, "not json", ""] {
            let r = try app.client.post("/api/kie/callback", body: body)
            XCTAssertEqual(r.status, 404, body)
        }
        XCTAssertFalse(try isDue(task.id))
        XCTAssertEqual(try outcomes(), [], "no webhook_logs row")
        XCTAssertEqual(capture.lines, [], "no log line")
    }

    func testMalformedCallbacksAre400AndAnswersMatchTheDocument() throws {
        let spec = OpenAPIValidator(document: try JSON.parse(try app.client.get("/api/openapi.json").body))
        func check(_ r: TestClient.Response, _ status: Int) {
            XCTAssertEqual(r.status, status, r.text)
            XCTAssertEqual(spec.problems(path: "/api/kie/callback", method: "POST", status: r.status, body: r.body), [])
        }
        check(try callback("x", body: #"{"code":200,"data":{}}"#), 400)
        check(try callback("x", body: "not json"), 400)
        check(try callback("x", body: #"{"data":{"taskId":"\#(String(repeating: "a", count: 129))"}}"#), 400)
        check(try callback(job.tasks[2].kieID, timestamp: nil), 401)
        check(try callback(job.tasks[2].kieID), 200)
        check(try callback("task_unknown"), 200)
    }
}

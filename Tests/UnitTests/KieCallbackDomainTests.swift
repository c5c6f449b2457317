import JSON
import Postgres
import ProviderWire
import PinGlassTesting
import XCTest
@testable import PinGlass

/// `KieCallback.receive` without HTTP: the verification and its record are the domain's, so
/// the same decisions hold whatever transport hands the callback in.
final class KieCallbackDomainTests: DatabaseTestCase {
    static let key = "test-webhook-hmac-key"
    static let now = 1_698_765_432.0
    let source = KieCallback.Source(remoteAddress: "203.0.113.9", requestID: "req-kie-1")

    var c: Connection!
    var job: JobFixtures.Job!

    override func setUpWithError() throws {
        try super.setUpWithError()
        c = try db.connect()
        job = try JobFixtures.running(try PollFixtures.deps(db), telegramID: 9711, photos: 2)
        try c.execute("UPDATE generation_tasks SET run_at = now() + interval '1 hour' WHERE job_id = $1", [job.id])
    }

    func body(_ taskID: String) throws -> JSON {
        try JSON.parse(Array(#"{"code":200,"data":{"taskId":"\#(taskID)","state":"success"}}"#.utf8))
    }

    func signed(_ taskID: String, at time: Double = now) -> KieCallback.Signature {
        let ts = String(Int(time))
        return KieCallback.Signature(timestamp: ts, value: KieWebhookSignature.sign(taskID: taskID, timestamp: ts, key: Self.key))
    }

    func logged() throws -> [(outcome: String, request: String, address: String)] {
        try c.query("SELECT outcome, request_id, host(remote_addr) AS addr FROM webhook_logs WHERE source = 'kie' ORDER BY id").map {
            ($0.requiredString("outcome"), $0.requiredString("request_id"), $0.requiredString("addr"))
        }
    }

    func testVerifiedCallbackMakesItsTaskDueAndUnknownIdsChangeNothing() throws {
        let task = job.tasks[1]
        XCTAssertEqual(try KieCallback.receive(c, body: body(task.kieID), signature: signed(task.kieID), key: Self.key,
                                               now: Self.now, source: source), .applied)
        XCTAssertEqual(try c.query("SELECT run_at <= now() AS due FROM generation_tasks WHERE id = $1", [task.id])[0].bool("due"), true)
        XCTAssertEqual(try KieCallback.receive(c, body: body("task_unknown"), signature: signed("task_unknown"), key: Self.key,
                                               now: Self.now, source: source), .ignored)
        XCTAssertEqual(try c.query("SELECT run_at <= now() AS due FROM generation_tasks WHERE id = $1", [job.tasks[0].id])[0].bool("due"), false)
        XCTAssertEqual(try logged().map(\.outcome), ["applied", "ignored"])
        XCTAssertEqual(try logged().first?.request, "req-kie-1")
        XCTAssertEqual(try logged().first?.address, "203.0.113.9")
    }

    func testRefusalsAreRecordedThenThrownAndChangeNothing() throws {
        let task = job.tasks[0]
        let stale = signed(task.kieID, at: Self.now - 600)
        let forged = KieCallback.Signature(timestamp: String(Int(Self.now)), value: "AAAA")
        let unsigned = KieCallback.Signature(timestamp: nil, value: nil)
        for signature in [stale, forged, unsigned] {
            XCTAssertThrowsError(try KieCallback.receive(c, body: body(task.kieID), signature: signature, key: Self.key,
                                                         now: Self.now, source: source)) {
                XCTAssertEqual($0 as? KieCallback.Refusal, .badSignature)
            }
        }
        XCTAssertThrowsError(try KieCallback.receive(c, body: JSON.parse(Array(#"{"data":{}}"#.utf8)), signature: signed(task.kieID),
                                                     key: Self.key, now: Self.now, source: source)) {
            XCTAssertEqual($0 as? KieCallback.Refusal, .noTaskID)
        }
        XCTAssertEqual(try logged().map(\.outcome), ["bad_signature", "bad_signature", "bad_signature", "malformed"])
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM generation_tasks WHERE job_id = $1 AND run_at <= now()", [job.id])[0].int("n"), 0)
    }
}

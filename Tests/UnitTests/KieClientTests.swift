import XCTest
import HTTPClient
import PinGlassTesting
import JSON
import PinGlassConfig
import Postgres
import ProviderWire
@testable import PinGlass
@testable import Providers

/// Kie answers as documented (docs/providers.md#kie-market): both `msg` and `message`,
/// `resultJson` as a JSON string, `fail` with failCode/failMsg, errors in the HTTP status or
/// only in the body `code`. Then the wire format against a loopback server.
final class KieClientTests: XCTestCase {
    func data(_ status: Int, _ body: String) -> Result<JSON, KieError> {
        Result { () throws(KieError) in try KieAnswer.data(status: status, body: Array(body.utf8)) }
    }

    func info(_ body: String, status: Int = 200) -> Result<KieTaskInfo, KieError> {
        Result { () throws(KieError) in
            try KieClient.taskInfo(.success(HTTPResponse(status: status, body: Array(body.utf8))), taskID: "asked")
        }
    }

    func testCreateTaskAnswer() throws {
        let d = try data(200, #"{"code":200,"msg":"success","data":{"taskId":"task_nanobanana_1765180586443"}}"#).get()
        XCTAssertEqual(d["taskId"]?.stringValue, "task_nanobanana_1765180586443")
    }

    func testRecordInfoSuccessWithMessageAndResultJSONString() throws {
        let body = #"""
            {"code":200,"message":"success","data":{"taskId":"task_12345678","model":"google/nano-banana-edit",
            "state":"success","param":"{\"model\":\"google/nano-banana-edit\",\"input\":{\"prompt\":\"p\"}}",
            "resultJson":"{\"resultUrls\":[\"https://tempfile.aiquickdraw.com/s/a1.png\",\"https://tempfile.aiquickdraw.com/s/a2.png\"]}",
            "failCode":"","failMsg":"","costTime":15142,"completeTime":1757584164490,"createTime":1757584149348,"updateTime":1757584164490}}
            """#
        let i = try info(body).get()
        XCTAssertEqual(i, KieTaskInfo(taskID: "task_12345678", state: .success,
                                      resultURLs: ["https://tempfile.aiquickdraw.com/s/a1.png", "https://tempfile.aiquickdraw.com/s/a2.png"]))
    }

    func testRecordInfoRunningStatesAndFail() throws {
        for state in ["waiting", "queuing", "generating"] {
            let i = try info(#"{"code":200,"msg":"success","data":{"taskId":"t1","state":"\#(state)","resultJson":"","failCode":null,"failMsg":null}}"#).get()
            XCTAssertEqual(i, KieTaskInfo(taskID: "t1", state: KieTaskState(rawValue: state)!))
            XCTAssertFalse(i.state.isFinished)
        }
        let failed = try info(#"""
            {"code":200,"msg":"success","data":{"taskId":"t2","state":"fail","resultJson":"","failCode":"422",
            "failMsg":"Invalid prompt: prompt contains prohibited content"}}
            """#).get()
        XCTAssertEqual(failed, KieTaskInfo(taskID: "t2", state: .fail, failCode: "422",
                                           failMessage: "Invalid prompt: prompt contains prohibited content"))
        // failCode as a number; taskId missing: the asked id.
        XCTAssertEqual(try info(#"{"code":200,"msg":"success","data":{"state":"fail","failCode":501,"failMsg":"x"}}"#).get().failCode, "501")
        XCTAssertEqual(try info(#"{"code":200,"msg":"success","data":{"state":"waiting"}}"#).get().taskID, "asked")
    }

    func testUnreadableRecordInfoIsTransient() {
        XCTAssertEqual(info(#"{"code":200,"msg":"success","data":{"state":"processing"}}"#).failure?.isTransient, true)
        XCTAssertEqual(info(#"{"code":200,"msg":"success","data":{"state":"success","resultJson":"{not json"}}"#).failure?.isTransient, true)
        XCTAssertEqual(info(#"{"code":200,"msg":"success","data":null}"#).failure?.isTransient, true)
        XCTAssertEqual(info("<html>oops</html>").failure?.isTransient, true)
    }

    /// The classification table, with the error in the HTTP status, in the body only, or both.
    func testErrorsInStatusOrBody() {
        let cases: [(Int, String, KieError)] = [
            (429, #"{"code":429,"msg":"Rate limit exceeded"}"#, .rateLimited),
            (200, #"{"code":429,"msg":"Rate limit exceeded"}"#, .rateLimited),
            (429, "", .rateLimited),
            (402, #"{"code":402,"msg":"Credits insufficient"}"#, .outOfCredits),
            (200, #"{"code":402,"message":"Credits insufficient"}"#, .outOfCredits),
            (401, #"{"code":401,"msg":"You do not have access permissions"}"#, .permanent(code: 401, message: "You do not have access permissions")),
            (200, #"{"code":422,"msg":"prompt is required"}"#, .permanent(code: 422, message: "prompt is required")),
            (404, #"{"code":404,"msg":"Task not found"}"#, .permanent(code: 404, message: "Task not found")),
            (200, #"{"code":505,"msg":"feature disabled"}"#, .permanent(code: 505, message: "feature disabled")),
            (400, #"{"code":400,"msg":"taskId parameter is required"}"#, .permanent(code: 400, message: "taskId parameter is required")),
            (200, #"{"code":455,"msg":"Service unavailable"}"#, .transient("code 455: Service unavailable")),
            (500, #"{"code":500,"msg":"Server error"}"#, .transient("code 500: Server error")),
            (200, #"{"code":501,"msg":"generation failed"}"#, .transient("code 501: generation failed")),
            (502, "<html><body>bad gateway</body></html>", .transient("code 502")),
            (503, #"{"code":200,"msg":"success"}"#, .transient("code 503")),
            (200, "not json", .transient("HTTP 200: answer is not a JSON object")),
        ]
        for (status, body, expected) in cases {
            XCTAssertEqual(data(status, body).failure, expected, "HTTP \(status) \(body)")
        }
    }

    func testKieMessagesAreRedactedAndShort() {
        let e = data(200, #"{"code":422,"msg":"cannot fetch https://media.example/ref.jpg?md5=SIGNATURE&expires=1"}"#).failure
        XCTAssertEqual(e, .permanent(code: 422, message: "cannot fetch https://media.example/ref.jpg"))
    }

    /// What goes on the wire: paths, Bearer key, body shape, escaped query; a slow Kie times
    /// out (transient) and no error text carries the key.
    func testWireFormatAgainstALoopbackServer() throws {
        let server = try LoopbackHTTPServer { req in
            if req.path.hasPrefix("/api/v1/jobs/createTask") {
                return .init(body: Array(#"{"code":200,"msg":"success","data":{"taskId":"task_1"}}"#.utf8))
            }
            if req.path.contains("slow") { return .init(body: Array("{}".utf8), delay: 2) }
            return .init(body: Array(#"{"code":200,"msg":"success","data":{"taskId":"task_1","state":"generating","resultJson":""}}"#.utf8))
        }
        defer { server.stop() }
        let key = "kie-secret-key-0123456789"
        let kie = KieClient(apiURL: server.url + "/", apiKey: key, timeout: 0.5)
        let id = try kie.createTask(KieTaskRequest(model: "google/nano-banana-edit", prompt: "a portrait",
                                                   imageURLs: ["https://m.example/r1.jpg"], callbackURL: "https://pg.example/api/kie/callback"))
        XCTAssertEqual(id, "task_1")
        XCTAssertEqual(try kie.recordInfo(taskID: "task 1&x").state, .generating)

        let create = server.received[0]
        XCTAssertEqual(create.method, "POST")
        XCTAssertEqual(create.path, "/api/v1/jobs/createTask")
        XCTAssertEqual(create.headers["authorization"], "Bearer " + key)
        XCTAssertEqual(try JSON.parse(create.body), [
            "model": "google/nano-banana-edit", "callBackUrl": "https://pg.example/api/kie/callback",
            "input": ["prompt": "a portrait", "image_urls": ["https://m.example/r1.jpg"], "aspect_ratio": "3:4"],
        ])
        XCTAssertEqual(server.received[1].path, "/api/v1/jobs/recordInfo?taskId=task%201%26x")
        XCTAssertEqual(server.received[1].headers["authorization"], "Bearer " + key)

        var errors: [KieError] = []
        do { _ = try kie.recordInfo(taskID: "slow") } catch { errors.append(error) }
        let closed = KieClient(apiURL: "http://127.0.0.1:\(Subprocess.freePort())", apiKey: key, timeout: 1)
        do { _ = try closed.createTask(KieTaskRequest(model: "m", prompt: "p", imageURLs: [])) } catch { errors.append(error) }
        XCTAssertEqual(errors.count, 2)
        for e in errors {
            XCTAssertEqual(e.isTransient, true, "\(e)")
            XCTAssertFalse("\(e)".contains(key), "\(e)")
        }
        XCTAssertTrue("\(errors[0])".contains("timed out"), "\(errors[0])")
    }

    /// `Dependencies.kie` is the real client for KIE_API_URL when KIE_API_KEY is set, nil without.
    func testDependenciesBuildTheClientFromConfig() throws {
        func deps(_ extra: [String: String]) throws -> Dependencies {
            let config = try Config(variables: ["DATABASE_URL": "host=/nonexistent", "KIE_API_URL": "http://127.0.0.1:9/kie/"].merging(extra) { $1 })
            return Dependencies.live(config: config, database: Database(url: config.databaseURL, applicationName: "test"))
        }
        XCTAssertEqual((try deps(["KIE_API_KEY": "k"]).providers.kie as? KieClient)?.apiURL, "http://127.0.0.1:9/kie")
        XCTAssertNil(try deps([:]).kie)
    }

    /// The batch form hands each answer back with its task id, paced below KIE_POLL_RPS.
    func testRecordInfoBatchIsPacedAndMapsIDs() throws {
        let server = try LoopbackHTTPServer { req in
            let id = String(req.path.split(separator: "=").last ?? "")
            return .init(body: Array(#"{"code":200,"msg":"success","data":{"taskId":"\#(id)","state":"queuing"}}"#.utf8))
        }
        defer { server.stop() }
        let kie = KieClient(apiURL: server.url, apiKey: "k")
        var seen: [String: KieTaskState] = [:]
        let ids = (0..<12).map { "t\($0)" }
        kie.recordInfo(taskIDs: ids, maxPerSecond: 10) { id, result in seen[id] = try? result.get().state }
        XCTAssertEqual(seen, Dictionary(uniqueKeysWithValues: ids.map { ($0, .queuing) }))
        let arrivals = server.received.map(\.arrivedAt).sorted()
        XCTAssertGreaterThanOrEqual(arrivals[10] - arrivals[0], 1.0, "11 recordInfo calls within one second")
    }
}

extension KieError {
    var isTransient: Bool { if case .transient = self { return true }; return false }
}

extension Result {
    var failure: Failure? { if case .failure(let e) = self { return e }; return nil }
}

/// A vector computed from the documented formula (docs/providers.md#kie-callback), and the staleness window.
final class KieWebhookSignatureTests: XCTestCase {
    func testReferenceVector() {
        XCTAssertEqual(KieWebhookSignature.sign(taskID: "task_12345678", timestamp: "1698765432", key: "test-webhook-hmac-key"),
                       "/a4fi9mniPwp7AhX9fVZfDa9ctQTIBb3WW9+rqKeR9k=")
    }

    func testVerifyChecksSignatureAndAge() {
        let sig = "/a4fi9mniPwp7AhX9fVZfDa9ctQTIBb3WW9+rqKeR9k="
        func verify(task: String = "task_12345678", ts: String = "1698765432", s: String = sig, now: Double = 1698765432 + 10) -> Bool {
            KieWebhookSignature.verify(taskID: task, timestamp: ts, signature: s, key: "test-webhook-hmac-key", now: now)
        }
        XCTAssertTrue(verify())
        XCTAssertFalse(verify(task: "task_12345679"))
        XCTAssertFalse(verify(s: sig.replacingOccurrences(of: "k=", with: "K=")))
        XCTAssertFalse(verify(now: 1698765432 + 301), "stale")
        XCTAssertFalse(verify(now: 1698765432 - 301), "from the future")
        XCTAssertFalse(verify(ts: "not-a-number"))
    }
}

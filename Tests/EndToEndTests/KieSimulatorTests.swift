import XCTest
import Foundation
import HTTPClient
import PinGlassTesting
import JSON
import ProviderWire
@testable import PinGlass
@testable import Providers

/// `KieClient` against the simulated Kie, a real HTTP service behind nginx (docs/providers.md#kie-simulator): the task
/// life by the clock, real result images, the sliding createTask limiter, recordInfo's limiter,
/// credits, failures, tasks that never finish, expiring URLs and signed callbacks.
final class KieSimulatorTests: DatabaseTestCase {
    var stack: Stack!
    var sim: KieSimulator!
    var kie: KieClient!
    let http = HTTPClient()

    override func setUpWithError() throws {
        try super.setUpWithError()
        let simPort = Subprocess.freePort()
        let simURL = "http://127.0.0.1:\(simPort)"
        stack = try Stack(database: db, workers: 1, env: Fixtures.env(simURL: simURL).merging(Fixtures.kieEnv(simURL: simURL)) { $1 },
                          withSimulator: true, simPort: simPort)
        sim = KieSimulator(simURL: simURL)
        kie = KieClient(apiURL: sim.apiURL, apiKey: Fixtures.kieKey, timeout: 5)
        try sim.set(["waitingSeconds": .double(0.1), "queuingSeconds": .double(0.1), "generatingSeconds": .double(0.3)])
    }

    override func tearDown() {
        stack?.stop()
        super.tearDown()
    }

    func request(_ prompt: String = "a portrait", callback: String? = nil) -> KieTaskRequest {
        KieTaskRequest(model: "google/nano-banana-edit", prompt: prompt, imageURLs: ["http://127.0.0.1/ref.jpg"], callbackURL: callback)
    }

    func error(_ body: () throws -> Void) -> KieError? {
        do { try body(); return nil } catch let e as KieError { return e } catch { XCTFail("\(error)"); return nil }
    }

    /// Polls until the task is finished (below recordInfo's 10 per second); the states seen.
    func pollUntilFinished(_ id: String, timeout: Double = 10) throws -> [KieTaskInfo] {
        var seen: [KieTaskInfo] = []
        try Subprocess.waitUntil(timeout: timeout, interval: 0.11, "task \(id) to finish") {
            seen.append(try kie.recordInfo(taskID: id))
            return seen.last!.state.isFinished
        }
        return seen
    }

    func testCreatePollDownloadRealImagesThatDifferPerTask() throws {
        var images: [String: [UInt8]] = [:]
        for prompt in ["first", "second"] {
            let id = try kie.createTask(request(prompt))
            let seen = try pollUntilFinished(id)
            let order = seen.map(\.state).reduce(into: [KieTaskState]()) { if $0.last != $1 { $0.append($1) } }
            XCTAssertEqual(order, [.waiting, .queuing, .generating, .success])
            let info = try XCTUnwrap(seen.last)
            XCTAssertEqual(info.taskID, id)
            XCTAssertEqual(info.resultURLs, [sim.apiURL + "/results/\(id).png"])
            let r = try http.send(HTTPRequest(url: info.resultURLs[0]))
            XCTAssertEqual(r.status, 200)
            XCTAssertEqual(r.header("content-type"), "image/png")
            XCTAssertEqual(ImageType.sniff(r.body), "image/png")
            let png = try PNGCheck(r.body)
            XCTAssertEqual([png.width, png.height], [48, 64])
            XCTAssertEqual(png.text["pinglass-task"], id)
            images[id] = r.body
        }
        XCTAssertEqual(Set(images.values).count, 2, "each task has its own image")
        let c = try sim.counters()
        XCTAssertEqual(c["tasks"], 2)
        XCTAssertEqual(c["results"], 2)
    }

    /// Kie: 20 new tasks per 10 s; the 21st is answered HTTP 429 + code 429 and not created.
    func testTwentyFirstCreateInTenSecondsIs429AndNotCreated() throws {
        for i in 0..<20 { _ = try kie.createTask(request("p\(i)")) }
        XCTAssertEqual(error { _ = try kie.createTask(request("p20")) }, .rateLimited)
        let raw = try http.send(.json("POST", sim.apiURL + "/api/v1/jobs/createTask", body: request().bodyForTest,
                                      headers: [("Authorization", "Bearer " + Fixtures.kieKey)]))
        XCTAssertEqual(raw.status, 429)
        XCTAssertEqual(try JSON.parse(raw.body)["code"]?.intValue, 429)
        XCTAssertEqual(try sim.tasks().count, 20)
        let c = try sim.counters()
        XCTAssertEqual(c["createTask"], 22)
        XCTAssertEqual(c["createTask.429"], 2)
        XCTAssertEqual(c["tasks"], 20)
    }

    /// A storm of 30 concurrent creates over both sim workers: exactly 20 get through.
    func testConcurrentBurstNeverPassesTheLimit() throws {
        let create = HTTPRequest.json("POST", sim.apiURL + "/api/v1/jobs/createTask", body: request().bodyForTest,
                                      headers: [("Authorization", "Bearer " + Fixtures.kieKey)])
        let statuses = http.sendAll(Array(repeating: create, count: 30), maxConcurrent: 30).map { (try? $0.get().status) ?? -1 }
        XCTAssertEqual(statuses.filter { $0 == 200 }.count, 20, "\(statuses)")
        XCTAssertEqual(statuses.filter { $0 == 429 }.count, 10, "\(statuses)")
        XCTAssertEqual(try sim.tasks().count, 20)
    }

    /// Sliding, not fixed: 2 at t0 and 2 at t0+6 s fill a 4-per-10-s window; at t0+10.5 s
    /// only the first two have left it (a fixed window would let 4 through again). The
    /// simulator's clock is moved (`advance`) instead of waiting; the window is long enough
    /// that the real time the calls take does not matter.
    func testCreateLimiterSlides() throws {
        try sim.set(["createLimit": 4, "createWindowSeconds": 10])
        for _ in 0..<2 { _ = try kie.createTask(request()) }
        try sim.advance(seconds: 6)
        for _ in 0..<2 { _ = try kie.createTask(request()) }
        XCTAssertEqual(error { _ = try kie.createTask(request()) }, .rateLimited)
        try sim.advance(seconds: 4.5)
        for _ in 0..<2 { _ = try kie.createTask(request()) }
        XCTAssertEqual(error { _ = try kie.createTask(request()) }, .rateLimited, "the second two are still in the window")
        XCTAssertEqual(try sim.tasks().count, 6)
    }

    func testOutOfCreditsIs402InStatusOrBody() throws {
        try sim.set(["credits": 2])
        _ = try kie.createTask(request())
        _ = try kie.createTask(request())
        XCTAssertEqual(error { _ = try kie.createTask(request()) }, .outOfCredits)
        try sim.set(["errorsIn": "body"])
        XCTAssertEqual(error { _ = try kie.createTask(request()) }, .outOfCredits)
        XCTAssertEqual(try sim.tasks().count, 2)
        XCTAssertEqual(try sim.counters()["createTask.402"], 2)
    }

    func testFailedTaskCarriesFailCodeAndHasNoImage() throws {
        try sim.set(["failNext": 1, "failCode": "422", "failMsg": "Invalid prompt: prompt contains prohibited content"])
        let failed = try kie.createTask(request())
        let fine = try kie.createTask(request())
        XCTAssertEqual(try pollUntilFinished(failed).last,
                       KieTaskInfo(taskID: failed, state: .fail, failCode: "422", failMessage: "Invalid prompt: prompt contains prohibited content"))
        XCTAssertEqual(try pollUntilFinished(fine).last?.state, .success)
        XCTAssertEqual(try http.send(HTTPRequest(url: sim.apiURL + "/results/\(failed).png")).status, 404)
    }

    func testNeverFinishingTaskStaysGenerating() throws {
        try sim.set(["neverFinishNext": 1])
        let stuck = try kie.createTask(request())
        let fine = try kie.createTask(request())
        XCTAssertEqual(try pollUntilFinished(fine).last?.state, .success)
        try sim.advance(seconds: 86400)
        XCTAssertEqual(try kie.recordInfo(taskID: stuck).state, .generating)
    }

    /// A result URL answers for `resultTTLSeconds` after the task finished (an hour by
    /// default), then 404; the simulator's clock is moved past it instead of waiting.
    func testResultURLExpires() throws {
        let id = try kie.createTask(request())
        let url = try XCTUnwrap(try pollUntilFinished(id).last?.resultURLs.first)
        XCTAssertEqual(try http.send(HTTPRequest(url: url)).status, 200)
        try sim.advance(seconds: 3500)
        XCTAssertEqual(try http.send(HTTPRequest(url: url)).status, 200, "within the hour")
        try sim.advance(seconds: 200)
        XCTAssertEqual(try http.send(HTTPRequest(url: url)).status, 404)
        XCTAssertEqual(try sim.counters()["results.404"], 1)
    }

    /// recordInfo's own limit (3 per second here): a burst is refused, the client's paced
    /// batch is not (and createTask's window is untouched by polls).
    func testRecordInfoLimitAndThePacedBatchStaysUnderIt() throws {
        try sim.set(["recordLimit": 3, "recordWindowSeconds": 1])
        let id = try kie.createTask(request())
        for _ in 0..<3 { _ = try kie.recordInfo(taskID: id) }
        XCTAssertEqual(error { _ = try kie.recordInfo(taskID: id) }, .rateLimited)
        try sim.advance(seconds: 1.05)
        var outcomes: [Result<KieTaskInfo, KieError>] = []
        kie.recordInfo(taskIDs: Array(repeating: id, count: 7), maxPerSecond: 3) { _, r in outcomes.append(r) }
        XCTAssertEqual(outcomes.count, 7)
        XCTAssertTrue(outcomes.allSatisfy { (try? $0.get()) != nil }, "\(outcomes)")
        let c = try sim.counters()
        XCTAssertEqual(c["recordInfo"], 11)
        XCTAssertEqual(c["recordInfo.429"], 1)
        XCTAssertNil(c["createTask.429"])
    }

    func testWrongKeyMaintenanceAndUnknownTask() throws {
        let stranger = KieClient(apiURL: sim.apiURL, apiKey: "not-the-key", timeout: 5)
        XCTAssertEqual(error { _ = try stranger.createTask(request()) }, .permanent(code: 401, message: "You do not have access permissions"))
        try sim.set(["errorNext": 2, "errorCode": 455, "errorOn": "createTask"])
        XCTAssertEqual(error { _ = try kie.createTask(request()) }, .transient("code 455: Service unavailable: maintenance"))
        try sim.set(["errorsIn": "body"])
        XCTAssertEqual(error { _ = try kie.createTask(request()) }, .transient("code 455: Service unavailable: maintenance"))
        let id = try kie.createTask(request())
        try sim.set(["errorNext": 1, "errorCode": 500, "errorOn": "recordInfo", "messageField": "message"])
        XCTAssertEqual(error { _ = try kie.recordInfo(taskID: id) }, .transient("code 500: Server error"))
        XCTAssertEqual(try kie.recordInfo(taskID: id).taskID, id)
        XCTAssertEqual(error { _ = try kie.recordInfo(taskID: "task_nobody") }, .permanent(code: 404, message: "Task not found"))
        XCTAssertEqual(try sim.tasks().count, 1)
    }

    /// Callbacks: recordInfo-shaped, signed as docs/providers.md#kie-callback says, duplicated on request; an early one
    /// arrives while recordInfo still says `generating`.
    func testSignedCallbacksDuplicatesAndEarlyOnes() throws {
        let receiver = try LoopbackHTTPServer { _ in .init(body: Array("ok".utf8)) }
        defer { receiver.stop() }
        try sim.set(["callbackDuplicates": 1])
        let id = try kie.createTask(request(callback: receiver.url + "/api/kie/callback"))
        try Subprocess.waitUntil(timeout: 10, "two callbacks") { receiver.received.count == 2 }
        for cb in receiver.received {
            XCTAssertEqual(cb.method, "POST")
            XCTAssertEqual(cb.path, "/api/kie/callback")
            let body = try JSON.parse(cb.body)
            XCTAssertEqual(body["data"]?["taskId"]?.stringValue, id)
            XCTAssertEqual(body["data"]?["state"]?.stringValue, "success")
            XCTAssertEqual(try KieAnswer.taskInfo(body["data"]!, taskID: id).resultURLs, [sim.apiURL + "/results/\(id).png"])
            let ts = try XCTUnwrap(cb.headers["x-webhook-timestamp"])
            XCTAssertTrue(KieWebhookSignature.verify(taskID: id, timestamp: ts, signature: cb.headers["x-webhook-signature"] ?? "",
                                                     key: Fixtures.kieWebhookKey, now: Date().timeIntervalSince1970))
        }
        XCTAssertEqual(try kie.recordInfo(taskID: id).state, .success)

        try sim.set(["callbackDuplicates": 0, "generatingSeconds": 5, "callbackEarlySeconds": .double(4.5), "webhookHmacKey": ""])
        let early = try kie.createTask(request(callback: receiver.url + "/early"))
        try Subprocess.waitUntil(timeout: 10, "the early callback") { receiver.received.count == 3 }
        XCTAssertEqual(try kie.recordInfo(taskID: early).state, .generating)
        XCTAssertEqual(try JSON.parse(receiver.received[2].body)["data"]?["state"]?.stringValue, "success")
        XCTAssertNil(receiver.received[2].headers["x-webhook-signature"], "no key, no signature")
        XCTAssertEqual(try sim.counters()["callbacks"], 3)
        XCTAssertEqual(try sim.tasks().first?["callbackStatus"]?.intValue, 200)
    }
}

extension KieTaskRequest {
    /// The createTask body, for raw requests.
    var bodyForTest: [UInt8] {
        JSON.object([("model", .string(model)), ("input", ["prompt": .string(prompt), "image_urls": .array(imageURLs.map(JSON.string))])]).bytes
    }
}

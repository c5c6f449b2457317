import Foundation
import XCTest
import PinGlassTesting
import JSON
@testable import PinGlass

/// One id follows a purchase: the request id of `POST /api/payment/create` (nginx's
/// `$request_id`) is kept on the payment, that of `POST /api/generate` on the job, and every
/// log line about them, in the pool and in every duty, carries them. A search of the logs
/// for the create's id shows the purchase from its creation to its last photo and refund.
final class RequestTraceTests: XCTestCase {
    func testOneRequestIDShowsAPurchaseFromCreateToItsLastPhotoAndRefund() throws {
        let db = try makeDatabase()
        let story = try PaidStory(database: db, telegramID: 64_001)
        defer { story.stop() }
        // Two of seven photos fail at Kie: photos, a partial refund and the final message.
        try story.kie.set(["failNext": 2])
        try story.prepareAvatar()
        try story.pay()
        let job = try story.startJob()
        var duties = Quiesce(environment: story.cliEnvironment)
        let captured = LogLines()
        duties.output = { duty, text in captured.add(duty, text) }
        try duties.run()
        try assertSettled(story, job: job, outcome: .partial, "trace story")

        let ids = try story.db.query("""
            SELECT p.request_id AS created_by, j.request_id AS generated_by
            FROM generation_jobs j JOIN payments p ON p.id = j.payment_id WHERE j.id = $1
            """, [job])[0]
        let createID = try XCTUnwrap(ids.string("created_by"))
        let generateID = try XCTUnwrap(ids.string("generated_by"))
        XCTAssertGreaterThanOrEqual(createID.count, 16, "nginx's $request_id")
        XCTAssertNotEqual(createID, generateID)

        let pool = story.stack.log().split(separator: "\n").map { ("pool", String($0)) }
        let lines = pool + captured.lines
        let found = lines.filter { $0.1.contains(createID) }
        func messages(_ source: String) -> Set<String> {
            Set(found.filter { $0.0 == source }.compactMap { (try? JSON.parse($0.1))?["message"]?.stringValue })
        }
        XCTAssertTrue(messages("pool").isSuperset(of: ["payment created", "webhook", "generation queued"]), "\(messages("pool"))")
        XCTAssertTrue(messages("dispatch").contains("task submitted"), "\(messages("dispatch"))")
        XCTAssertTrue(messages("poll-kie").isSuperset(of: ["photo stored", "task failed", "job finished"]), "\(messages("poll-kie"))")
        XCTAssertTrue(messages("deliver").contains("delivery sent"), "\(messages("deliver"))")
        XCTAssertTrue(messages("refund").contains("refund succeeded"), "\(messages("refund"))")
        XCTAssertEqual(found.filter { $0.0 == "dispatch" && $0.1.contains("task submitted") }.count, 7, "every photo's submit")
        XCTAssertEqual(found.filter { $0.0 == "poll-kie" && $0.1.contains("photo stored") }.count, 5, "every photo stored")

        // Every line about this job, wherever it was written, carries both ids.
        let aboutJob = lines.filter { $0.1.contains(#""job_id":"\#(job)""#) }
        XCTAssertGreaterThanOrEqual(aboutJob.count, 7 + 5 + 2)
        for (source, line) in aboutJob {
            XCTAssertTrue(line.contains(createID) && line.contains(generateID), "\(source): \(line)")
        }
        // And the generate's id alone shows the job's part of it.
        XCTAssertTrue(lines.filter { $0.1.contains(generateID) }.contains { $0.1.contains(#""message":"refund succeeded""#) })
    }
}

/// Log lines of the duties' runs, by duty, as `Quiesce` hands them over.
final class LogLines: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [(String, String)] = []

    func add(_ duty: String, _ text: String) {
        lock.lock()
        defer { lock.unlock() }
        stored += text.split(separator: "\n").map { (duty, String($0)) }
    }

    var lines: [(String, String)] {
        lock.lock()
        defer { lock.unlock() }
        return stored
    }
}

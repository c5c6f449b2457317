import Foundation
import HTTPClient
import PinGlassTesting
import Postgres
import XCTest
import JSON
@testable import PinGlass

/// Double spend through real nginx and 4 real workers: 50 concurrent `POST /api/generate`
/// with one payment, 20 times over → exactly one job each time, the rest PAYMENT_CONSUMED.
final class GenerateDoubleSpendTests: XCTestCase {
    func testFiftyConcurrentGeneratesWithOnePaymentMakeOneJob() throws {
        let db = try makeDatabase()
        var env = Fixtures.env(simURL: "http://127.0.0.1:9")
        env["MEDIA_KEY_SECRET"] = GenerationFixtures.mediaSecret
        let stack = try Stack(database: db, workers: 4, env: env)
        defer { stack.stop() }
        let c = try db.connect()
        let http = HTTPClient()
        for round in 0..<20 {
            let tg = Int64(20_000 + round)
            let ready = try GenerationFixtures.readyToGenerate(c, telegramID: tg)
            let auth = Fixtures.auth(telegramID: tg)
            let body = Array(#"{"avatarId":\#(ready.avatarID),"styleId":"pinglass"}"#.utf8)
            let requests = (0..<50).map { _ in HTTPRequest.json("POST", stack.baseURL + "/api/generate", body: body, headers: [auth]) }
            let answers = http.sendAll(requests, maxConcurrent: 50).map { try? $0.get() }
            let statuses = answers.map { $0?.status ?? 0 }
            XCTAssertEqual(statuses.filter { $0 == 202 }.count, 1, "round \(round): \(statuses)")
            let codes = answers.compactMap { $0 }.filter { $0.status != 202 }.compactMap { try? JSON.parse($0.body)["error"]?["code"]?.stringValue }
            XCTAssertEqual(codes.count, 49, "round \(round): every other call is refused with a reason")
            XCTAssertEqual(Set(codes), ["PAYMENT_CONSUMED"], "round \(round)")
            let jobs = try c.query("SELECT count(*)::int AS n FROM generation_jobs WHERE payment_id = $1", [ready.paymentID])[0].int("n")
            XCTAssertEqual(jobs, 1, "round \(round)")
            XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM generation_tasks t JOIN generation_jobs j ON j.id = t.job_id WHERE j.payment_id = $1",
                                       [ready.paymentID])[0].int("n"), 7)
        }
    }
}

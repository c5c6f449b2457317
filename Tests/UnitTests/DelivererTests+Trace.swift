import Foundation
import PinGlassTesting
import Postgres
import XCTest
@testable import PinGlass

extension DelivererTests {
    /// The log line of a delivery failed for good carries the purchase's request ids, looked
    /// up outside the failure's transaction: a look-up that fails (here the column it reads is
    /// gone) costs the line its ids, never the failed row, its counter or the operator's alert.
    func testAFailedTraceLookupDoesNotUndoTheFailureRecord() throws {
        let job = try DeliveryFixtures.finishedJob(deps, telegramID: 7204, photos: 7, succeeded: 7)
        try c.execute("UPDATE telegram_deliveries SET give_up_at = now() - interval '1 second' WHERE job_id = $1", [job.id])
        telegram.chatErrors[7204] = .transient("timeout")
        try c.execute("ALTER TABLE payments RENAME COLUMN request_id TO request_id_hidden")
        defer { _ = try? c.execute("ALTER TABLE payments RENAME COLUMN request_id_hidden TO request_id") }
        XCTAssertTrue(Trace.job(c, job.id).isEmpty, "the look-up fails here")

        let report = try pass()
        XCTAssertEqual(report.failed, 1)
        XCTAssertEqual(try rows(job.id).first?.state, "failed")
        XCTAssertEqual(try alerts(), ["delivery-failed:job:\(job.id)"])
        XCTAssertEqual(try Counters.value(c, "telegram.failed"), 1)
    }
}

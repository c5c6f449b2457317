import Foundation
import PinGlassTesting
import Postgres
import XCTest
@testable import PinGlass

/// The refund rule cannot be gamed: a customer never both keeps a photo and gets its price
/// back. Told through the whole stack like the other stories.
extension FullStoryTests {
    /// The premium set of 23: the first 3 photos are made and sent at once (the short batch
    /// goes first), then Kie fails 14 of the other 20. 9 of 23 is below 70 %, so the job
    /// fails: the 3 already in the chat are kept and paid for, the 6 other photos made are
    /// withheld — never sent, never listed by the API — and 20 of the 23 shares go back at
    /// the bank. The final message says exactly that.
    func testBelowTheThresholdTheEarlyBatchIsKeptAndPaidAndTheRestWithheldAndRefunded() throws {
        let paid = try customerPays(61_004, tier: "premium")
        // Kie's budget (KIE_RATE_LIMIT, 20 by default) has room for 3 tasks only, so the first
        // round makes just the short batch.
        try c.execute("""
            INSERT INTO rate_events (name, at) SELECT 'kie.create', now() + interval '1 hour' FROM generate_series(1, 17)
            """)
        let job = try generate(paid)
        try runDuties(["dispatch", "poll-kie", "deliver"], until: "the first 3 photos to reach the chat") {
            try self.c.query("SELECT state FROM telegram_deliveries WHERE job_id = $1 AND batch_no = 0", [job]).first?.string("state") == "sent"
        }
        XCTAssertEqual(try customerAPI("GET", "/api/jobs/\(job)", as: paid.user)["photos"]?.arrayValue?.count, 3)

        try kie.set(["failNext": 14])
        try c.execute("DELETE FROM rate_events WHERE name = 'kie.create' AND at > now()")
        try runDuties(["dispatch", "poll-kie", "deliver"], until: "the job to end and its message to reach the chat") {
            try self.jobStatus(job) != "processing" && self.allSent(job)
        }
        XCTAssertEqual(try jobStatus(job), "failed")
        XCTAssertEqual(try number("SELECT count(*)::int AS n FROM generated_photos WHERE job_id = $1", job), 9, "9 of 23 made")
        let owed = 149_900 * 20 / 23
        XCTAssertEqual(RefundRule.standard.refund(amount: Money(kopecks: paid.amount), photos: 9, released: 3, total: 23).kopecks, owed)
        XCTAssertEqual(try number("SELECT amount_kopecks AS n FROM refunds WHERE job_id = $1", job), owed)

        // The chat: the 3 kept photos, then the message; the API lists the same 3 and no other.
        let message = try chatShowsTheJob(job, chat: paid.user, albums: [3])
        XCTAssertTrue(message.contains("Sorry, we could make only 9 of your 23 PinGlass portraits"), message)
        XCTAssertTrue(message.contains("You keep the 3 already sent and pay only for those; the other 6 will not be sent."), message)
        XCTAssertTrue(message.contains("We are refunding 1303.47 ₽ to your card."), message)
        let listed = try XCTUnwrap(customerAPI("GET", "/api/jobs/\(job)", as: paid.user)["photos"]?.arrayValue)
        let released = try c.query("SELECT id FROM generated_photos WHERE job_id = $1 AND released_at IS NOT NULL ORDER BY task_id", [job])
            .map { $0.requiredInt("id") }
        XCTAssertEqual(listed.compactMap { $0["id"]?.intValue }, released)
        XCTAssertEqual(released.count, 3)
        let avatar = try customerAPI("GET", "/api/avatars/\(paid.avatarID)", as: paid.user)
        XCTAssertEqual(avatar["photos"]?.arrayValue?.count, 3, "the avatar's page shows the same 3")

        let (status, out, err) = try cli(["refund"])
        XCTAssertEqual(status, 0, out + err)
        try bankShowsTheRefund(paid, job: job, kopecks: owed, paymentStatus: "partially_refunded")
        try auditIsClean()
    }
}

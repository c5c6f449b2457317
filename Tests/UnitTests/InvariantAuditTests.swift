import PinGlassTesting
import Postgres
import XCTest
@testable import PinGlass

/// `pinglass audit`'s rules find what breaks them, with the ids, and nothing on a sound database.
final class InvariantAuditTests: PipelineTestCase {
    // Every test here breaks an invariant on purpose, to see the audit find it.
    override var auditsOnDrop: Bool { false }

    func rules() throws -> [String: [Int]] {
        Dictionary(uniqueKeysWithValues: try InvariantAudit.run(c).map { ($0.rule, $0.ids) })
    }

    func testFindsEachBrokenRuleWithItsIds() throws {
        // Sound: a partial job finished the proper way.
        let sound = try JobFixtures.running(deps, telegramID: 9801, photos: 7)
        try JobFixtures.settle(c, sound, succeeded: 5, failed: 2)
        _ = try JobFinish.finish(c, jobID: sound.id)
        XCTAssertEqual(try rules(), [:], "a sound database has no violation")

        // A succeeded task without its photo, and a finished job whose counts lie.
        let broken = try JobFixtures.running(deps, telegramID: 9802, photos: 2)
        try c.execute("""
            UPDATE generation_tasks SET state = 'succeeded', finished_at = now() WHERE id = $1
            """, [broken.tasks[0].id])
        // A partial job without a refund row, and a submit lease long expired.
        let noRefund = try JobFixtures.running(deps, telegramID: 9803, photos: 2)
        try c.execute("UPDATE generation_tasks SET state = 'failed', finished_at = now() WHERE job_id = $1", [noRefund.id])
        try c.execute("UPDATE generation_jobs SET status = 'failed', failed = 2, finished_at = now() WHERE id = $1", [noRefund.id])
        let stuck = try JobFixtures.running(deps, telegramID: 9804, photos: 1)
        try c.execute("""
            UPDATE generation_tasks SET state = 'submitting', lease_token = gen_random_uuid(), lease_until = now() - interval '1 hour'
            WHERE job_id = $1
            """, [stuck.id])
        let found = try rules()
        XCTAssertEqual(found["a succeeded task has its photo (task ids)"], [broken.tasks[0].id])
        XCTAssertEqual(found["a finished job with missing photos has its refund row (job ids)"], [noRefund.id])
        XCTAssertEqual(found["no submit lease expired long ago is left behind (task ids)"], [stuck.tasks[0].id])
        XCTAssertNil(found["refunds never exceed the payment (payment ids)"])
        // Two refunds beyond the payment: the trigger refuses the second, so only a database
        // written around it (a manual edit, an old backup) can hold them.
        XCTAssertThrowsError(try c.execute("""
            INSERT INTO refunds (payment_id, amount_kopecks, reason, requested_by) VALUES ($1, $2, 'manual', 'admin')
            """, [sound.paymentID, sound.amountKopecks]))
        try c.execute("ALTER TABLE refunds DISABLE TRIGGER refunds_guard")
        try c.execute("""
            INSERT INTO refunds (payment_id, amount_kopecks, reason, requested_by) VALUES ($1, $2, 'manual', 'admin')
            """, [sound.paymentID, sound.amountKopecks])
        try c.execute("ALTER TABLE refunds ENABLE TRIGGER refunds_guard")
        XCTAssertEqual(try rules()["refunds never exceed the payment (payment ids)"], [sound.paymentID])
    }

    /// A delivery waiting to send a photo whose object was removed (what a re-queue of a
    /// withdrawn delivery used to make) is found; the same delivery failed is not.
    func testAWaitingDeliveryOfARemovedPhotoIsFound() throws {
        let job = try DeliveryFixtures.finishedJob(deps, telegramID: 9811, photos: 3, succeeded: 3)
        let album = try XCTUnwrap(try DeliveryFixtures.rows(c, jobID: job.id).first)
        XCTAssertEqual(album.state, "pending")
        XCTAssertEqual(try rules(), [:])
        try c.execute("UPDATE generated_photos SET media_removed_at = now() WHERE job_id = $1", [job.id])
        XCTAssertEqual(try rules()["a waiting delivery's photos are still stored (delivery ids)"], [album.id])
        try c.execute("UPDATE telegram_deliveries SET state = 'failed', last_error = 'withdrawn' WHERE id = $1", [album.id])
        XCTAssertEqual(try rules(), [:])
    }

    /// Each broken rule alerts the admin chat, at most once per rule and hour, naming its ids;
    /// without an admin chat nothing is queued.
    func testViolationsAlertTheAdminChatOncePerRuleAndHour() throws {
        let broken = try JobFixtures.running(deps, telegramID: 9821, photos: 2)
        try c.execute("UPDATE generation_tasks SET state = 'succeeded', finished_at = now() WHERE id = $1", [broken.tasks[0].id])
        try c.execute("""
            UPDATE generation_tasks SET state = 'submitting', lease_token = gen_random_uuid(), lease_until = now() - interval '1 hour'
            WHERE id = $1
            """, [broken.tasks[1].id])
        let violations = try InvariantAudit.run(c)
        XCTAssertEqual(violations.count, 2)
        XCTAssertEqual(try InvariantAudit.alert(c, chatID: nil, violations: violations), 0)
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM telegram_deliveries WHERE kind = 'alert'")[0].int("n"), 0)

        XCTAssertEqual(try InvariantAudit.alert(c, chatID: -1001, violations: violations), 2)
        XCTAssertEqual(try InvariantAudit.alert(c, chatID: -1001, violations: violations), 0, "the same hour: nothing new")
        let alerts = try c.query("""
            SELECT chat_id, payload ->> 'key' AS key, payload ->> 'text' AS text FROM telegram_deliveries
            WHERE kind = 'alert' AND state = 'pending' ORDER BY key
            """)
        XCTAssertEqual(alerts.map { $0.requiredString("key") },
                       ["audit:a-succeeded-task-has-its-photo", "audit:no-submit-lease-expired-long-ago-is-left-behind"])
        XCTAssertEqual(alerts.map { $0.int("chat_id") }, [-1001, -1001])
        XCTAssertEqual(alerts[0].requiredString("text"),
                       "pinglass audit: broken rule \"a succeeded task has its photo (task ids)\": \(broken.tasks[0].id)")
    }

    /// A photo of a finished job that is in none of its delivery rows would never reach the chat.
    func testAFinishedJobsPhotoOutsideEveryDeliveryRowIsFound() throws {
        let job = try JobFixtures.running(deps, telegramID: 9811, photos: 7)
        try JobFixtures.settle(c, job, succeeded: 7, failed: 0)
        _ = try JobFinish.finish(c, jobID: job.id)
        XCTAssertEqual(try rules(), [:])
        let photo = try c.query("SELECT min(id)::bigint AS id FROM generated_photos WHERE job_id = $1", [job.id])[0].requiredInt("id")
        try c.execute("UPDATE generated_photos SET delivery_id = NULL WHERE id = $1", [photo])
        XCTAssertEqual(try rules()["every photo of a finished job is in one of its delivery rows (photo ids)"], [photo])
    }

    /// The customer never both keeps a photo and gets its price back: a refund beyond the
    /// share of the photos not released is found, and so is a photo of a failed job released
    /// after its end (the database refuses that; only a write around its trigger can do it).
    func testARefundForAPhotoTheCustomerKeepsIsFound() throws {
        let job = try JobFixtures.running(deps, telegramID: 9821, photos: 23)
        for task in job.tasks.prefix(3) { _ = try DeliveryBatchesTests.store(c, job, task: task.id) }
        try JobFixtures.settle(c, job, succeeded: 15, failed: 8)
        XCTAssertEqual(try JobFinish.finish(c, jobID: job.id)?.refundKopecks, 49_900 * 20 / 23)
        XCTAssertEqual(try rules(), [:])
        // A refund amount never changes once written (a trigger): only a write around it.
        try c.execute("ALTER TABLE refunds DISABLE TRIGGER refunds_guard")
        try c.execute("UPDATE refunds SET amount_kopecks = 49900 WHERE job_id = $1", [job.id])
        XCTAssertEqual(try rules(), ["a job's refund is at most the share of the photos its customer does not get (job ids)": [job.id]])
        try c.execute("UPDATE refunds SET amount_kopecks = $2 WHERE job_id = $1", [job.id, 49_900 * 20 / 23])
        try c.execute("ALTER TABLE refunds ENABLE TRIGGER refunds_guard")
        XCTAssertEqual(try rules(), [:])

        let withheld = try c.query("SELECT min(id)::bigint AS id FROM generated_photos WHERE job_id = $1 AND released_at IS NULL",
                                   [job.id])[0].requiredInt("id")
        try c.execute("ALTER TABLE generated_photos DISABLE TRIGGER generated_photos_release_guard")
        try c.execute("UPDATE generated_photos SET released_at = now() WHERE id = $1", [withheld])
        try c.execute("ALTER TABLE generated_photos ENABLE TRIGGER generated_photos_release_guard")
        let found = try rules()
        XCTAssertEqual(found["a failed job released no photo at or after its end (photo ids)"], [withheld])
        XCTAssertEqual(found["a job's refund is at most the share of the photos its customer does not get (job ids)"], [job.id],
                       "its refund now pays for a photo the customer has")
    }

    /// The refund rules: our succeeded refunds are within what the bank reports refunded,
    /// and a payment with money back is marked so.
    func testRefundRecordsAgreeWithThePayment() throws {
        let job = try JobFixtures.running(deps, telegramID: 9811, photos: 7)
        try JobFixtures.settle(c, job, succeeded: 5, failed: 2)
        _ = try JobFinish.finish(c, jobID: job.id)
        let refund = try c.query("SELECT id, amount_kopecks FROM refunds WHERE job_id = $1", [job.id])[0]
        let amount = refund.requiredInt("amount_kopecks")
        // Recorded as succeeded, but the payment never heard of it.
        try c.execute("UPDATE refunds SET state = 'requested' WHERE id = $1", [refund.requiredInt("id")])
        try c.execute("""
            UPDATE refunds SET state = 'succeeded', finished_at = now(), bank_original_kopecks = 49900, bank_remaining_kopecks = 49900 - $2
            WHERE id = $1
            """, [refund.requiredInt("id"), amount])
        XCTAssertEqual(try rules()["our succeeded refunds are within what the bank reports refunded (payment ids)"], [job.paymentID])
        // Money back recorded, status left behind.
        try c.execute("UPDATE payments SET refunded_kopecks = $2 WHERE id = $1", [job.paymentID, amount])
        XCTAssertEqual(try rules(), ["a payment with money given back is marked (partially) refunded (payment ids)": [job.paymentID]])
        try c.execute("UPDATE payments SET status = 'partially_refunded' WHERE id = $1", [job.paymentID])
        XCTAssertEqual(try rules(), [:])
    }
}

import Foundation
import PinGlassTesting
import Postgres
import XCTest
import JSON
@testable import PinGlass

/// Finishing a job: the status by its photos, the refund by the rule, the delivery rows for
/// this job's photos, all once however often and however concurrently it is called.
final class JobFinishTests: PipelineTestCase {
    func testTheRefundRuleInKopecks() {
        let amount = Money(kopecks: 49_900), rule = RefundRule.standard
        XCTAssertEqual(rule.refund(amount: amount, photos: 23, released: 10, total: 23).kopecks, 0)
        XCTAssertEqual(rule.refund(amount: amount, photos: 18, released: 10, total: 23).kopecks, 49_900 * 5 / 23)
        XCTAssertEqual(rule.refund(amount: amount, photos: 18, released: 0, total: 23).kopecks, 10_847, "rounded down")
        XCTAssertEqual(rule.refund(amount: amount, photos: 7, released: 0, total: 10).kopecks, 14_970, "exactly 70 % is partial")
        XCTAssertEqual(rule.refund(amount: amount, photos: 4, released: 0, total: 7).kopecks, 49_900, "57 % is below 70 %: none went out")
        XCTAssertEqual(rule.refund(amount: amount, photos: 0, released: 0, total: 7).kopecks, 49_900)
        // Below the threshold only the photos released before the end are paid for.
        XCTAssertEqual(rule.refund(amount: Money(kopecks: 149_900), photos: 15, released: 3, total: 23).kopecks, 149_900 * 20 / 23)
        XCTAssertEqual(rule.refund(amount: Money(kopecks: 149_900), photos: 15, released: 13, total: 23).kopecks, 65_173)
        XCTAssertEqual(rule.delivered(photos: 15, released: 3, total: 23), 3)
        XCTAssertEqual(rule.delivered(photos: 18, released: 3, total: 23), 18, "at the threshold every photo is delivered")
        XCTAssertEqual(rule.outcome(photos: 7, total: 7), .completed)
        XCTAssertEqual(rule.outcome(photos: 5, total: 7), .partial)
        XCTAssertEqual(rule.outcome(photos: 7, total: 10), .partial)
        XCTAssertEqual(rule.outcome(photos: 4, total: 7), .failed, "below 70 %")
        XCTAssertEqual(rule.outcome(photos: 1, total: 7), .failed)
        XCTAssertEqual(rule.outcome(photos: 0, total: 7), .failed)
    }

    func testTwentyThreeWithFiveFailedIsPartialWithTheMissingShareAndTwoAlbums() throws {
        let job = try JobFixtures.running(deps, telegramID: 7101, photos: 23)
        try JobFixtures.settle(c, job, succeeded: 18, failed: 5)
        let done = try XCTUnwrap(try JobFinish.finish(c, jobID: job.id))
        XCTAssertEqual(done.outcome, .partial)
        XCTAssertEqual(done.refundKopecks, 49_900 * 5 / 23)
        XCTAssertEqual(done.deliveries, 3)

        let j = try c.query("SELECT status, succeeded, failed, finished_at IS NOT NULL AS ended FROM generation_jobs WHERE id = $1", [job.id])[0]
        XCTAssertEqual(j.string("status"), "partial")
        XCTAssertEqual(j.int("succeeded"), 18)
        XCTAssertEqual(j.int("failed"), 5)
        XCTAssertEqual(j.bool("ended"), true)

        let refund = try c.query("SELECT payment_id, amount_kopecks, requested_by, state, reason FROM refunds WHERE job_id = $1", [job.id])
        XCTAssertEqual(refund.count, 1)
        XCTAssertEqual(refund[0].int("payment_id"), job.paymentID)
        XCTAssertEqual(refund[0].int("amount_kopecks"), 10_847)
        XCTAssertEqual(refund[0].string("requested_by"), "system")
        XCTAssertEqual(refund[0].string("state"), "pending")
        XCTAssertTrue(refund[0].requiredString("reason").contains("5 of 23"))

        let rows = try deliveries(job.id)
        XCTAssertEqual(rows.map(\.kind), ["album", "album", "message"])
        XCTAssertEqual(rows.map(\.batch), [0, 1, 2])
        XCTAssertEqual(rows[0].payload["photos"]?.arrayValue?.count, 8, "the short batch first")
        XCTAssertEqual(rows[1].payload["photos"]?.arrayValue?.count, 10)
        let photoIDs = try c.query("SELECT id FROM generated_photos WHERE job_id = $1", [job.id]).map { $0.requiredInt("id") }
        let delivered = rows.prefix(2).flatMap { $0.payload["photos"]!.arrayValue! }
        XCTAssertEqual(Set(delivered.compactMap { $0["id"]?.intValue }), Set(photoIDs), "this job's photos, each once")
        XCTAssertTrue(delivered.allSatisfy { $0["storageKey"]?.stringValue?.hasPrefix("generated/") == true })
        XCTAssertEqual(rows[2].payload["outcome"]?.stringValue, "partial")
        XCTAssertEqual(rows[2].payload["refundKopecks"]?.intValue, 10_847)
        XCTAssertEqual(rows[2].payload["photoCount"]?.intValue, 18)
        XCTAssertEqual(rows[2].payload["total"]?.intValue, 23)
        let chat = try c.query("""
            SELECT DISTINCT d.chat_id, u.telegram_user_id, d.give_up_at > now() + interval '23 hours' AS later
            FROM telegram_deliveries d JOIN generation_jobs j ON j.id = d.job_id JOIN users u ON u.id = j.user_id WHERE d.job_id = $1
            """, [job.id])
        XCTAssertEqual(chat.count, 1)
        XCTAssertEqual(chat[0].int("chat_id"), 7101)
        XCTAssertEqual(chat[0].bool("later"), true)
    }

    func testAllPhotosCompleteWithoutRefund() throws {
        let job = try JobFixtures.running(deps, telegramID: 7201, photos: 7)
        try JobFixtures.settle(c, job, succeeded: 7, failed: 0)
        let done = try XCTUnwrap(try JobFinish.finish(c, jobID: job.id))
        XCTAssertEqual(done.outcome, .completed)
        XCTAssertNil(done.refundKopecks)
        XCTAssertEqual(try count("refunds"), 0)
        XCTAssertEqual(try deliveries(job.id).map(\.kind), ["album", "message"])
        XCTAssertEqual(try deliveries(job.id)[1].payload["refundKopecks"]?.intValue, 0)
    }

    /// Below 70 % with nothing sent yet: the job fails, every photo made is withheld (no
    /// delivery row, not shown by the API) and everything goes back. Never both a photo and
    /// its price.
    func testBelowSeventyPercentWithNothingSentWithholdsEveryPhotoAndRefundsEverything() throws {
        let job = try JobFixtures.running(deps, telegramID: 7301, photos: 7)
        try JobFixtures.settle(c, job, succeeded: 4, failed: 3)
        let done = try XCTUnwrap(try JobFinish.finish(c, jobID: job.id))
        XCTAssertEqual(done.outcome, .failed, "4 of 7 is below 70 %")
        XCTAssertEqual(done.refundKopecks, 49_900)
        XCTAssertEqual(done.withheld, 4)
        XCTAssertEqual(try c.query("SELECT amount_kopecks FROM refunds WHERE job_id = $1", [job.id])[0].int("amount_kopecks"), 49_900)
        XCTAssertEqual(try c.query("SELECT status FROM generation_jobs WHERE id = $1", [job.id])[0].string("status"), "failed")
        let rows = try deliveries(job.id)
        XCTAssertEqual(rows.map(\.kind), ["message"], "no photo is sent")
        XCTAssertEqual(rows[0].payload["photoCount"]?.intValue, 4)
        XCTAssertEqual(rows[0].payload["released"]?.intValue, 0)
        XCTAssertEqual(try released(job.id), 0)
        XCTAssertEqual(try userID(7301).map { try JobProgress.load(c, userID: $0, jobID: job.id).photoCount }, 0, "the API shows none")
    }

    /// Below 70 % after an early batch went out: the 3 photos released while the job ran are
    /// kept and paid for, the other 12 made are withheld for good, and 20 of 23 shares go
    /// back. The API lists only the 3; the database refuses to release a withheld photo.
    func testBelowSeventyPercentTheEarlyBatchIsPaidForAndTheRestWithheld() throws {
        let job = try JobFixtures.running(deps, telegramID: 7311, photos: 23)
        for task in job.tasks.prefix(3) { _ = try DeliveryBatchesTests.store(c, job, task: task.id) }
        XCTAssertEqual(try released(job.id), 3, "the short batch of 23 (3) went out while the job ran")
        let user = try XCTUnwrap(try userID(7311))
        XCTAssertEqual(try JobProgress.load(c, userID: user, jobID: job.id).photoCount, 3)
        try JobFixtures.settle(c, job, succeeded: 15, failed: 8)   // 12 more photos, not batched yet
        XCTAssertEqual(try JobProgress.load(c, userID: user, jobID: job.id).photoCount, 3, "stored is not released")

        let done = try XCTUnwrap(try JobFinish.finish(c, jobID: job.id))
        XCTAssertEqual(done.outcome, .failed, "15 of 23 is below 70 %")
        XCTAssertEqual(done.photos, 15)
        XCTAssertEqual(done.withheld, 12)
        XCTAssertEqual(done.refundKopecks, 49_900 * 20 / 23)
        let refund = try c.query("SELECT amount_kopecks, reason FROM refunds WHERE job_id = $1", [job.id])[0]
        XCTAssertEqual(refund.int("amount_kopecks"), 43_391)
        XCTAssertTrue(refund.requiredString("reason").contains("3 delivered before the end, 12 withheld"), refund.requiredString("reason"))
        let rows = try deliveries(job.id)
        XCTAssertEqual(rows.map(\.kind), ["album", "message"], "only the early batch and the message")
        XCTAssertEqual(rows[0].payload["photos"]?.arrayValue?.count, 3)
        XCTAssertEqual(rows[1].payload["outcome"]?.stringValue, "failed")
        XCTAssertEqual(rows[1].payload["released"]?.intValue, 3)
        XCTAssertEqual(rows[1].payload["refundKopecks"]?.intValue, 43_391)
        XCTAssertEqual(try released(job.id), 3)
        XCTAssertEqual(try JobProgress.load(c, userID: user, jobID: job.id).photoCount, 3)

        XCTAssertThrowsError(try c.execute("""
            UPDATE generated_photos SET released_at = now() WHERE job_id = $1 AND released_at IS NULL
            """, [job.id]), "a withheld photo stays withheld") { error in
            guard case .server(let state, let message)? = error as? PostgresError else { return XCTFail("\(error)") }
            XCTAssertEqual(state, "23514", "check_violation from the release guard")
            XCTAssertTrue(message.contains("of failed job \(job.id) is withheld: it cannot be released"), message)
        }
        XCTAssertEqual(try InvariantAudit.run(c), [])
    }

    /// A user whose jobs keep getting refunded (3 in 7 days) is pointed out to the operator,
    /// once a day; a refund older than the 7 days does not count.
    func testThreeRefundedJobsInSevenDaysAlertOnceADay() throws {
        var jobs: [JobFixtures.Job] = []
        func failJob() throws {
            let job = try JobFixtures.running(deps, telegramID: 7321, photos: 7)
            try JobFixtures.settle(c, job, succeeded: 0, failed: 7)
            XCTAssertNotNil(try JobFinish.finish(c, jobID: job.id, adminChatID: DeliveryFixtures.adminChat)?.refundKopecks)
            jobs.append(job)
        }
        func alerts() throws -> [(key: String, dedupe: String)] {
            try c.query("SELECT payload ->> 'key' AS key, dedupe_key FROM telegram_deliveries WHERE kind = 'alert' ORDER BY id")
                .map { ($0.requiredString("key"), $0.requiredString("dedupe_key")) }
        }
        try failJob()
        try failJob()
        try c.execute("UPDATE refunds SET created_at = now() - interval '8 days' WHERE job_id = $1", [jobs[0].id])
        try failJob()
        XCTAssertEqual(try alerts().count, 0, "two refunded jobs in the last 7 days")
        try failJob()
        let user = try XCTUnwrap(try userID(7321))
        let raised = try alerts()
        XCTAssertEqual(raised.map(\.key), ["repeated-refunds:user:\(user)"])
        let today = try c.query("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS d")[0].requiredString("d")
        XCTAssertEqual(raised.first?.dedupe, "alert:repeated-refunds:user:\(user):\(today)", "one key for the whole day")
        try failJob()
        XCTAssertEqual(try alerts().count, 1, "not again the same day")
        let other = try JobFixtures.running(deps, telegramID: 7322, photos: 7)
        try JobFixtures.settle(c, other, succeeded: 0, failed: 7)
        try JobFinish.finish(c, jobID: other.id, adminChatID: DeliveryFixtures.adminChat)
        XCTAssertEqual(try alerts().count, 1, "another user's single refund")
    }

    func testNoPhotoFailsWithAFullRefundAndOnlyAMessage() throws {
        let job = try JobFixtures.running(deps, telegramID: 7401, photos: 7)
        try JobFixtures.settle(c, job, succeeded: 0, failed: 7)
        let done = try XCTUnwrap(try JobFinish.finish(c, jobID: job.id))
        XCTAssertEqual(done.outcome, .failed)
        XCTAssertEqual(done.refundKopecks, 49_900)
        let rows = try deliveries(job.id)
        XCTAssertEqual(rows.map(\.kind), ["message"])
        XCTAssertEqual(rows[0].payload["outcome"]?.stringValue, "failed")
    }

    func testASinglePhotoIsSentAsAPhotoNotAnAlbum() throws {
        let job = try JobFixtures.running(deps, telegramID: 7451, photos: 11)
        try JobFixtures.settle(c, job, succeeded: 11, failed: 0)
        try JobFinish.finish(c, jobID: job.id)
        XCTAssertEqual(try deliveries(job.id).map(\.kind), ["photo", "album", "message"], "the short batch first")
    }

    func testNotFinishableWhileATaskRunsOrOnceCanceled() throws {
        let job = try JobFixtures.running(deps, telegramID: 7501, photos: 7)
        try JobFixtures.settle(c, job, succeeded: 6, failed: 0)
        XCTAssertNil(try JobFinish.finish(c, jobID: job.id), "one task still running")
        XCTAssertEqual(try c.query("SELECT status FROM generation_jobs WHERE id = $1", [job.id])[0].string("status"), "processing")
        try JobFixtures.settle(c, job, succeeded: 6, failed: 1)
        try c.execute("UPDATE generation_jobs SET status = 'canceled', finished_at = now() WHERE id = $1", [job.id])
        XCTAssertNil(try JobFinish.finish(c, jobID: job.id), "an admin's cancel is final")
        XCTAssertEqual(try count("telegram_deliveries"), 0)
    }

    /// A refund never takes more than the payment has left (a manual refund came first);
    /// cut below what the rule owes, it raises an alert per job (a person checks the
    /// customer got everything owed). A refund that is not cut raises none.
    func testTheRefundIsCappedByWhatOtherRefundsAlreadyTookAndTheCutIsAlerted() throws {
        let job = try JobFixtures.running(deps, telegramID: 7551, photos: 7)
        try c.execute("""
            INSERT INTO refunds (payment_id, amount_kopecks, reason, requested_by) VALUES ($1, 40000, 'manual', 'admin')
            """, [job.paymentID])
        try JobFixtures.settle(c, job, succeeded: 0, failed: 7)
        XCTAssertEqual(try JobFinish.finish(c, jobID: job.id, adminChatID: 4242)?.refundKopecks, 9_900)
        let alerts = try c.query("SELECT chat_id, payload->>'key' AS key, payload->>'text' AS text FROM telegram_deliveries WHERE kind = 'alert'")
        XCTAssertEqual(alerts.map { $0.string("key") }, ["refund-cut:job:\(job.id)"])
        XCTAssertEqual(alerts.first?.int("chat_id"), 4242)
        XCTAssertTrue(alerts.first?.requiredString("text").contains("owes 499.00 RUB") == true, alerts.first?.string("text") ?? "")
        XCTAssertTrue(alerts.first?.requiredString("text").contains("cut to 99.00 RUB") == true, alerts.first?.string("text") ?? "")

        let whole = try JobFixtures.running(deps, telegramID: 7552, photos: 7)
        try JobFixtures.settle(c, whole, succeeded: 0, failed: 7)
        XCTAssertEqual(try JobFinish.finish(c, jobID: whole.id, adminChatID: 4242)?.refundKopecks, 49_900)
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM telegram_deliveries WHERE kind = 'alert'")[0].int("n"), 1, "not cut: no alert")
    }

    func testFinishingTwiceChangesNothing() throws {
        let job = try JobFixtures.running(deps, telegramID: 7601, photos: 23)
        try JobFixtures.settle(c, job, succeeded: 18, failed: 5)
        XCTAssertNotNil(try JobFinish.finish(c, jobID: job.id))
        let before = try snapshot(job.id)
        XCTAssertNil(try JobFinish.finish(c, jobID: job.id))
        XCTAssertEqual(try snapshot(job.id), before)
    }

    /// Finishers on separate connections race on many jobs at once: each job ends once,
    /// with one set of rows.
    func testConcurrentFinishersFinishEachJobOnce() throws {
        var jobs: [JobFixtures.Job] = []
        for i in 0..<6 {
            let job = try JobFixtures.running(deps, telegramID: Int64(7700 + i), photos: 23)
            try JobFixtures.settle(c, job, succeeded: 18, failed: 5)
            jobs.append(job)
        }
        let ids = jobs.map(\.id)
        let url = db.url
        let wins = Locked<[Int]>([])
        let errors = Locked<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            do {
                let conn = try Connection(url)
                for id in ids.shuffled() {
                    if let done = try JobFinish.finish(conn, jobID: id) { wins.mutate { $0.append(done.jobID) } }
                }
            } catch {
                errors.mutate { $0.append("\(error)") }
            }
        }
        XCTAssertEqual(errors.value, [])
        XCTAssertEqual(wins.value.sorted(), ids.sorted(), "each job finished by exactly one finisher")
        XCTAssertEqual(try count("refunds"), 6)
        XCTAssertEqual(try count("telegram_deliveries"), 18)
    }

    /// A poller killed between its commit and its finish leaves a job nobody finishes:
    /// `finishStranded` finds it.
    func testStrandedJobsAreFound() throws {
        let job = try JobFixtures.running(deps, telegramID: 7801, photos: 7)
        let other = try JobFixtures.running(deps, telegramID: 7802, photos: 7)
        try JobFixtures.settle(c, job, succeeded: 7, failed: 0)
        try JobFixtures.settle(c, other, succeeded: 3, failed: 0)
        XCTAssertEqual(try JobFinish.finishStranded(c, limit: 10, alertChat: nil).finished.map(\.jobID), [job.id])
        XCTAssertEqual(try JobFinish.finishStranded(c, limit: 10, alertChat: nil).finished.map(\.jobID), [])
    }

    /// A stranded job whose finish throws (here a test-only trigger refuses it) is counted,
    /// alerted once an hour, and skipped: the jobs after it are still finished, also when
    /// the failing one fills a whole batch, and it finishes once the cause is gone.
    func testAStrandedJobWhoseFinishFailsIsAlertedAndSkipped() throws {
        let jobs = try (0..<3).map { try JobFixtures.running(deps, telegramID: Int64(7830 + $0), photos: 2) }
        for job in jobs { try JobFixtures.settle(c, job, succeeded: 2, failed: 0) }
        try JobFinishFailure.install(c, jobID: jobs[0].id)

        let first = try JobFinish.finishStranded(c, limit: 1, alertChat: DeliveryFixtures.adminChat)
        XCTAssertEqual(first, JobFinish.StrandedBatch(finished: [], failed: [jobs[0].id], examined: 1, lastJobID: jobs[0].id))
        let rest = try JobFinish.finishStranded(c, limit: 10, after: first.lastJobID, alertChat: DeliveryFixtures.adminChat)
        XCTAssertEqual(rest.finished.map(\.jobID), [jobs[1].id, jobs[2].id], "the jobs behind it")
        XCTAssertEqual(try JobFinish.finishStranded(c, limit: 10, alertChat: DeliveryFixtures.adminChat).failed, [jobs[0].id])
        XCTAssertEqual(try Counters.value(c, "jobs.finish_failed"), 2)
        XCTAssertEqual(Set(try JobFinishFailure.alerts(c)), ["job-finish-failed:\(jobs[0].id)"], "one key (queued once an hour)")
        XCTAssertEqual(try c.query("SELECT status FROM generation_jobs WHERE id = $1", [jobs[0].id])[0].string("status"), "processing")
        XCTAssertEqual(try count("refunds") + (try c.query("SELECT count(*)::int AS n FROM telegram_deliveries WHERE job_id = $1",
                                                            [jobs[0].id])[0].requiredInt("n")), 0, "nothing of it half done")

        try JobFinishFailure.remove(c)
        XCTAssertEqual(try JobFinish.finishStranded(c, limit: 10, alertChat: DeliveryFixtures.adminChat).finished.map(\.jobID), [jobs[0].id])
        XCTAssertEqual(try InvariantAudit.run(c), [])
    }

    // MARK: helpers

    func released(_ jobID: Int) throws -> Int {
        try c.query("SELECT count(*)::int AS n FROM generated_photos WHERE job_id = $1 AND released_at IS NOT NULL", [jobID])[0]
            .requiredInt("n")
    }

    func userID(_ telegramID: Int64) throws -> Int? {
        try c.query("SELECT id FROM users WHERE telegram_user_id = $1", [telegramID]).first?.int("id")
    }

    func deliveries(_ jobID: Int) throws -> [(kind: String, batch: Int, payload: JSON)] {
        try c.query("SELECT kind, batch_no, payload::text AS payload FROM telegram_deliveries WHERE job_id = $1 ORDER BY batch_no", [jobID])
            .map { ($0.requiredString("kind"), $0.requiredInt("batch_no"), try JSON.parse(Array($0.requiredString("payload").utf8))) }
    }

    func count(_ table: String) throws -> Int {
        try c.query("SELECT count(*)::int AS n FROM \(table)")[0].requiredInt("n")
    }

    func snapshot(_ jobID: Int) throws -> String {
        try c.query("""
            SELECT (SELECT row(status, succeeded, failed, finished_at, updated_at)::text FROM generation_jobs WHERE id = $1)
                || (SELECT coalesce(string_agg(row(id, kind, batch_no, payload)::text, ';' ORDER BY id), '') FROM telegram_deliveries WHERE job_id = $1)
                || (SELECT coalesce(string_agg(row(id, amount_kopecks)::text, ';'), '') FROM refunds WHERE job_id = $1) AS s
            """, [jobID])[0].requiredString("s")
    }

    /// Money the bank already gave back (a refund made in its dashboard has no refund row
    /// here) is not refunded a second time.
    func testTheRefundNeverExceedsWhatTheBankStillHolds() throws {
        let job = try JobFixtures.running(deps, telegramID: 7190, photos: 7)
        try c.execute("UPDATE payments SET status = 'partially_refunded', refunded_kopecks = amount_kopecks - 1000 WHERE id = $1",
                      [job.paymentID])
        try JobFixtures.settle(c, job, succeeded: 0, failed: 7)
        _ = try XCTUnwrap(try JobFinish.finish(c, jobID: job.id))
        XCTAssertEqual(try c.query("SELECT amount_kopecks FROM refunds WHERE job_id = $1", [job.id])[0].int("amount_kopecks"), 1000,
                       "only what the bank still holds")
    }
}

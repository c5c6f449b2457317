import Foundation
import JSON
import PinGlassTesting
import XCTest

/// The customer's journey in the Mini App, in chromium on a phone-sized screen, opened through
/// the simulated Telegram (`/sim/telegram/open`), paying on the simulated bank's page, with the
/// cron duties running: the stories of Tests/Browser, then what the database says of them (a
/// story cannot pass on a backend that did not do the work). Screenshots of every screen in
/// `.run/test/browser/<story>/`.
final class MiniAppStoryTests: BrowserTestCase {
    /// Home → avatar → 3 selfies → starter → pay at the bank → generate → progress → the
    /// gallery of 7, every image loaded.
    func testSuccessStory() throws {
        let user: Int64 = 72_001
        try duties(["dispatch", "poll-kie", "deliver"])
        let result = try story("success", user: user, env: ["PINGLASS_EXPECT_PHOTOS": "7"])
        XCTAssertEqual(result["photos"]?.intValue, 7)

        XCTAssertEqual(try number("""
            SELECT count(*)::int AS n FROM reference_photos r JOIN avatars a ON a.id = r.avatar_id JOIN users u ON u.id = a.user_id
            WHERE u.telegram_user_id = $1
            """, [Int(user)]), 3, "the three selfies are stored")
        let payment = try XCTUnwrap(row("""
            SELECT p.status, p.tier, p.email FROM payments p JOIN users u ON u.id = p.user_id WHERE u.telegram_user_id = $1
            """, [Int(user)]))
        XCTAssertEqual(payment.string("status"), "succeeded")
        XCTAssertEqual(payment.string("tier"), "starter")
        XCTAssertEqual(payment.string("email"), "customer\(user)@example.com", "the receipt goes to the e-mail typed")
        let customer = try XCTUnwrap(row("SELECT receipt_email, consent_at IS NOT NULL AS consented FROM users WHERE telegram_user_id = $1", [Int(user)]))
        XCTAssertEqual(customer.string("receipt_email"), "customer\(user)@example.com", "remembered for next time")
        XCTAssertEqual(customer.bool("consented"), true, "the consent given on the page is recorded")
        let job = try XCTUnwrap(row("""
            SELECT j.id, j.status, j.succeeded,
                   (SELECT count(*) FROM generated_photos g WHERE g.job_id = j.id AND g.released_at IS NOT NULL)::int AS shown
            FROM generation_jobs j JOIN users u ON u.id = j.user_id WHERE u.telegram_user_id = $1
            """, [Int(user)]))
        XCTAssertEqual(job.string("status"), "completed")
        XCTAssertEqual(job.int("succeeded"), 7)
        XCTAssertEqual(job.int("shown"), 7)
        XCTAssertEqual(try number("SELECT count(*)::int AS n FROM refunds"), 0)
        XCTAssertEqual(try number("SELECT count(*)::int AS n FROM generation_jobs"), 1, "one job, started once")
    }

    /// Kie fails 5 of the 7 photos: the job fails, none of its photos had gone out, so none is
    /// shown and the whole 499 ₽ is refunded; the app says so.
    func testFailureStoryShowsTheRefund() throws {
        let user: Int64 = 72_002
        try kie.set(["failNext": 5])
        try duties(["dispatch", "poll-kie", "deliver", "refund"])
        let result = try story("failure", user: user, env: [
            "PINGLASS_TIER": "starter", "PINGLASS_EXPECT_STATUS": "failed", "PINGLASS_EXPECT_PHOTOS": "0", "PINGLASS_EXPECT_REFUND": "499",
        ])
        XCTAssertEqual(result["photos"]?.intValue, 0)

        let job = try XCTUnwrap(row("""
            SELECT j.id, j.status, j.succeeded, j.failed,
                   (SELECT count(*) FROM generated_photos g WHERE g.job_id = j.id)::int AS made,
                   (SELECT count(*) FROM generated_photos g WHERE g.job_id = j.id AND g.released_at IS NOT NULL)::int AS shown
            FROM generation_jobs j JOIN users u ON u.id = j.user_id WHERE u.telegram_user_id = $1
            """, [Int(user)]))
        XCTAssertEqual(job.string("status"), "failed")
        XCTAssertEqual(job.int("failed"), 5)
        XCTAssertEqual(job.int("made"), 2, "two made, and withheld")
        XCTAssertEqual(job.int("shown"), 0)
        try refundReachedTheBank(user: user, job: job.requiredInt("id"), kopecks: 49_900, paymentStatus: "refunded")
    }

    /// The premium set of 23 with 5 failed at Kie: the job is partial, the gallery shows the 18
    /// photos delivered, each loaded, and the notice says 325.86 ₽ (5/23 of 1 499 ₽) came back.
    func testPartialStoryShowsTheDeliveredPhotosAndTheRefund() throws {
        let user: Int64 = 72_004
        try kie.set(["failNext": 5, "createLimit": 50])
        try duties(["dispatch", "poll-kie", "deliver", "refund"])
        let result = try story("failure", user: user, env: [
            "PINGLASS_TIER": "premium", "PINGLASS_EXPECT_STATUS": "partial", "PINGLASS_EXPECT_PHOTOS": "18", "PINGLASS_EXPECT_REFUND": "325.86",
        ], output: "partial")
        XCTAssertEqual(result["photos"]?.intValue, 18)
        let job = try XCTUnwrap(row("""
            SELECT j.id, j.status, (SELECT count(*) FROM generated_photos g WHERE g.job_id = j.id AND g.released_at IS NOT NULL)::int AS shown
            FROM generation_jobs j JOIN users u ON u.id = j.user_id WHERE u.telegram_user_id = $1
            """, [Int(user)]))
        XCTAssertEqual(job.string("status"), "partial")
        XCTAssertEqual(job.int("shown"), 18, "the gallery showed what was delivered")
        try refundReachedTheBank(user: user, job: job.requiredInt("id"), kopecks: 149_900 * 5 / 23, paymentStatus: "partially_refunded")
    }

    /// The job's one refund row succeeded for `kopecks`, the bank gave that much back, and the
    /// payment says so.
    func refundReachedTheBank(user: Int64, job: Int, kopecks: Int, paymentStatus: String) throws {
        let refunds = try c.query("SELECT amount_kopecks, state FROM refunds WHERE job_id = $1", [job])
        XCTAssertEqual(refunds.count, 1)
        XCTAssertEqual(refunds.first?.int("amount_kopecks"), kopecks)
        XCTAssertEqual(refunds.first?.string("state"), "succeeded", "the notice said returned: so does our refund row")
        let payment = try XCTUnwrap(row("""
            SELECT p.status, p.tbank_payment_id FROM payments p JOIN users u ON u.id = p.user_id WHERE u.telegram_user_id = $1
            """, [Int(user)]))
        XCTAssertEqual(payment.string("status"), paymentStatus)
        XCTAssertEqual(try bank.payment(payment.requiredString("tbank_payment_id"))["refunded"]?.intValue, kopecks, "the bank gave it back")
    }

    /// A text file as a selfie is refused and added nowhere; a second generate for one payment
    /// (a second tab) is refused and starts nothing.
    func testRefusals() throws {
        let user: Int64 = 72_003
        try story("refusals", user: user)
        XCTAssertEqual(try number("""
            SELECT count(*)::int AS n FROM reference_photos r JOIN avatars a ON a.id = r.avatar_id JOIN users u ON u.id = a.user_id
            WHERE u.telegram_user_id = $1
            """, [Int(user)]), 3, "only the three photos were stored, not the text file")
        XCTAssertEqual(try number("SELECT count(*)::int AS n FROM generation_jobs"), 1, "one job for one payment")
        XCTAssertEqual(try number("SELECT count(*)::int AS n FROM payments WHERE status = 'succeeded'"), 1)
    }

    /// The session ends (the server answers 401) on home, during the payment poll, on a job's
    /// progress and on a selfie upload: each time the expired-session screen, and no request
    /// after it; a bank page that is not a web address is not followed (Tests/Browser/expired.py).
    func testAnExpiredSessionStopsThePage() throws {
        let user: Int64 = 72_020
        let job = try JobFixtures.job(c, telegramID: user, tasks: .queued)
        // Its avatar `me` without selfies (the fixture's reference has no object to show).
        let avatar = try XCTUnwrap(row("SELECT avatar_id FROM generation_jobs WHERE id = $1", [job.id])).requiredInt("avatar_id")
        try c.execute("DELETE FROM reference_photos WHERE avatar_id = $1", [avatar])
        let created = try stack.client.post("/api/payment/create", body: #"{"tierId":"starter","avatarId":\#(avatar)}"#,
                                            headers: [("Content-Type", "application/json"), Fixtures.auth(telegramID: user)])
        XCTAssertEqual(created.status, 200, created.text)
        try story("expired", user: user, env: ["PINGLASS_JOB": String(job.id)])
        XCTAssertEqual(try number("SELECT count(*)::int AS n FROM reference_photos WHERE avatar_id = $1", [avatar]), 0,
                       "the refused upload stored nothing")
        XCTAssertEqual(try number("""
            SELECT count(*)::int AS n FROM payments p JOIN users u ON u.id = p.user_id WHERE u.telegram_user_id = $1
            """, [Int(user + 1)]), 1, "the new customer's payment was made (its page was not followed)")
    }

    /// A queued job is asked every 2 s, after 10 minutes every 15 s, after an hour no more
    /// until "check again"; a pending refund every 30 s for 10 minutes (Tests/Browser/backoff.py).
    func testTheJobScreenBacksOffAndStops() throws {
        let user: Int64 = 72_030
        let queued = try JobFixtures.job(c, telegramID: user, tasks: .queued)
        let failed = try JobFixtures.job(c, telegramID: user, tasks: .queued)
        try c.execute("UPDATE generation_tasks SET state = 'failed', finished_at = now(), fail_code = '500', fail_message = 'fixture' WHERE job_id = $1",
                      [failed.id])
        try c.execute("UPDATE generation_jobs SET status = 'failed', failed = total_photos, finished_at = now() WHERE id = $1", [failed.id])
        try c.execute("""
            INSERT INTO refunds (payment_id, job_id, amount_kopecks, reason, requested_by) VALUES ($1, $2, 49900, 'fixture', 'system')
            """, [failed.paymentID, failed.id])
        try story("backoff", user: user, env: ["PINGLASS_JOB": String(queued.id), "PINGLASS_REFUND_JOB": String(failed.id)])
        XCTAssertEqual(try row("SELECT status FROM generation_jobs WHERE id = $1", [queued.id])?.string("status"), "queued",
                       "no duty ran: the job stayed queued all along")
    }

    /// Names, contrast in both themes, the keyboard alone from home to the progress screen,
    /// reduced motion (Tests/Browser/accessibility.py). No duty runs: the job stays queued.
    func testAccessibility() throws {
        let user: Int64 = 72_010
        try story("accessibility", user: user)
        let keyboard = try XCTUnwrap(row("""
            SELECT j.status, p.status AS paid FROM generation_jobs j JOIN payments p ON p.id = j.payment_id
            JOIN users u ON u.id = j.user_id WHERE u.telegram_user_id = $1
            """, [Int(user + 2)]), "the keyboard customer paid and started a generation")
        XCTAssertEqual(keyboard.string("paid"), "succeeded")
        XCTAssertEqual(keyboard.string("status"), "queued")
        XCTAssertEqual(try number("SELECT count(DISTINCT a.user_id)::int AS n FROM avatars a"), 3, "light, dark and keyboard customers")
    }
}

import Foundation
import PinGlassTesting
import Postgres
import XCTest
@testable import PinGlass

/// The sweep's money-path alerts (`SweepAlerts+Money.swift`): T-Bank signature failures
/// spiking and the payment success ratio dropping, each once per hour per key, each message
/// linking to the admin page that explains it. Times are the database's clock: rows are
/// placed in the past relative to `now()`, the clock the conditions read.
final class MoneyAlertsTests: DatabaseTestCase {
    var c: Connection!
    static let adminChat: Int64 = 4343

    override func setUpWithError() throws {
        try super.setUpWithError()
        c = try db.connect()
    }

    func alerts(_ config: Sweeper.Config = .init(), base: String? = "https://pinglass.example") -> SweepAlerts {
        var a = SweepAlerts(config: config, adminChatID: Self.adminChat)
        a.adminBaseURL = base
        return a
    }

    func refusedWebhooks(_ n: Int, secondsAgo: Int, source: String = "tbank", outcome: String = "bad_signature",
                         from addr: String = "203.0.113.7") throws {
        try c.execute("""
            INSERT INTO webhook_logs (source, payload, outcome, remote_addr, received_at)
            SELECT $1, '{}'::jsonb, $2, $3::inet, now() - make_interval(secs => $4::int) FROM generate_series(1, $5)
            """, [source, outcome, addr, secondsAgo, n])
    }

    func sentAlerts() throws -> [(key: String, text: String)] {
        try c.query("SELECT payload->>'key' AS key, payload->>'text' AS text FROM telegram_deliveries WHERE kind = 'alert' ORDER BY id")
            .map { ($0.requiredString("key"), $0.requiredString("text")) }
    }

    func testSignatureFailuresAlertAtTheThresholdWithinTheWindow() throws {
        let a = alerts()
        try refusedWebhooks(9, secondsAgo: 60)
        try refusedWebhooks(50, secondsAgo: 16 * 60)                       // outside the 15-minute window
        try refusedWebhooks(5, secondsAgo: 60, source: "kie")               // Kie's are not T-Bank's
        try refusedWebhooks(5, secondsAgo: 60, outcome: "malformed")        // not a signature failure
        XCTAssertEqual(try a.webhookSignatureFailures(c), [], "9 of 10")

        try refusedWebhooks(1, secondsAgo: 5, from: "198.51.100.1")
        let found = try a.webhookSignatureFailures(c)
        XCTAssertEqual(found.map(\.key), ["webhook-signature-failures"])
        XCTAssertEqual(found.first?.page, "/admin/settings")
        XCTAssertTrue(found[0].text.hasPrefix("10 T-Bank notification(s) refused"), found[0].text)
        XCTAssertTrue(found[0].text.contains("from 2 address(es)"), found[0].text)

        var config = Sweeper.Config()
        config.signatureFailureAlertCount = 60
        config.signatureFailureWindowSeconds = 20 * 60
        XCTAssertEqual(try alerts(config).webhookSignatureFailures(c).map(\.key), ["webhook-signature-failures"],
                       "60 within the wider window")
        config.signatureFailureAlertCount = 61
        XCTAssertEqual(try alerts(config).webhookSignatureFailures(c), [])
    }

    /// Payments `minutesAgo` old, `n` of them, in `status`.
    func payments(_ n: Int, _ status: String, minutesAgo: Int) throws {
        for _ in 0..<n {
            let p = try Fixtures.pendingPayment(c, telegramID: Int64(9000 + (try c.query("SELECT count(*)::int AS n FROM payments")[0].requiredInt("n"))),
                                                       status: status, refunded: status == "refunded" ? 49900 : 0)
            try c.execute("UPDATE payments SET created_at = now() - make_interval(mins => $2::int) WHERE id = $1", [p.id, minutesAgo])
        }
    }

    func testPaymentSuccessRatioNeedsEnoughPaymentsAndLooksPastTheGrace() throws {
        let a = alerts()
        XCTAssertEqual(try a.paymentSuccessRatio(c), [], "no payments: no ratio")
        try payments(2, "succeeded", minutesAgo: 30)
        try payments(1, "refunded", minutesAgo: 40)
        try payments(6, "pending", minutesAgo: 20)
        XCTAssertEqual(try a.paymentSuccessRatio(c), [], "9 payments: under the minimum of 10")
        try payments(20, "pending", minutesAgo: 5)      // too young to judge
        try payments(20, "rejected", minutesAgo: 80)    // before the window
        XCTAssertEqual(try a.paymentSuccessRatio(c), [], "still 9 in the window")

        try payments(1, "init_failed", minutesAgo: 50)
        XCTAssertEqual(try a.paymentSuccessRatio(c), [], "3 of 10 succeeded: 30 %, not below it")
        try payments(1, "canceled", minutesAgo: 70)
        let found = try a.paymentSuccessRatio(c)
        XCTAssertEqual(found.map(\.key), ["payment-success-ratio"], "3 of 11")
        XCTAssertEqual(found.first?.page, "/admin")
        XCTAssertTrue(found[0].text.hasPrefix("Only 3 of 11 payment(s) created"), found[0].text)
        XCTAssertTrue(found[0].text.contains("(27 %, alert below 30 %)"), found[0].text)

        var config = Sweeper.Config()
        config.paymentSuccessMinPercent = 25
        XCTAssertEqual(try alerts(config).paymentSuccessRatio(c), [], "27 % is enough at 25 %")
        config.paymentSuccessMinPercent = 30
        config.paymentSuccessMinCount = 12
        XCTAssertEqual(try alerts(config).paymentSuccessRatio(c), [], "11 payments, 12 needed")
    }

    /// Through `raise`: one message per key per hour however many passes find it, each with
    /// the admin page's address under `PUBLIC_BASE_URL`; without one, the text alone.
    func testEachAlertIsSentOncePerHourWithItsAdminLink() throws {
        try refusedWebhooks(12, secondsAgo: 30)
        try payments(10, "rejected", minutesAgo: 30)
        let a = alerts(base: "https://pinglass.example/")
        let first = try a.raise(c)
        let second = try a.raise(c)
        XCTAssertEqual(first.queued, 2)
        XCTAssertEqual(second.found, first.found)
        XCTAssertEqual(second.queued, 0, "the same keys this hour: nothing new")
        let sent = try sentAlerts()
        XCTAssertEqual(sent.map(\.key), ["webhook-signature-failures", "payment-success-ratio"])
        XCTAssertTrue(sent[0].text.hasSuffix("\nhttps://pinglass.example/admin/settings"), sent[0].text)
        XCTAssertTrue(sent[1].text.hasSuffix("\nhttps://pinglass.example/admin"), sent[1].text)

        let bare = alerts(base: nil)
        let c0 = try XCTUnwrap(try bare.conditions(c).first { $0.key == "payment-success-ratio" })
        XCTAssertEqual(bare.message(c0), c0.text)
        XCTAssertEqual(a.message(c0), c0.text + "\nhttps://pinglass.example/admin")
    }

    /// The older alerts link to their pages too: a stale dispatch queue to the queued jobs.
    func testStaleQueueLinksToTheJobsPage() throws {
        let deps = try PollFixtures.deps(db)
        let job = try JobFixtures.queued(deps, telegramID: 6901, photos: 1, deadlineIn: 3600)
        try c.execute("UPDATE generation_tasks SET run_at = now() - interval '1 hour' WHERE job_id = $1", [job.id])
        let stale = try XCTUnwrap(try alerts().conditions(c).first { $0.key == "queue-stale:dispatch" })
        XCTAssertEqual(alerts().message(stale), stale.text + "\nhttps://pinglass.example/admin/jobs?status=queued")
    }
}

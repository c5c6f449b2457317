import Foundation
import PinGlassTesting
import Postgres
import XCTest
import PinGlassConfig
@testable import PinGlass
@testable import PinGlassWeb

/// The operator alerts that the sweep and the dispatcher raise: each condition found
/// with its key, one message per key per hour to the admin chat, logged only without one.
final class SweepAlertsTests: DatabaseTestCase {
    var deps: Dependencies!
    var c: Connection!
    static let adminChat: Int64 = 4242

    override func setUpWithError() throws {
        try super.setUpWithError()
        deps = try PollFixtures.deps(db, env: ["ADMIN_TELEGRAM_CHAT_ID": String(Self.adminChat)])
        c = try db.connect()
    }

    func keys(_ config: Sweeper.Config = .init()) throws -> Set<String> {
        Set(try SweepAlerts(config: config, adminChatID: Self.adminChat).conditions(c).map(\.key))
    }

    /// One heartbeat row: `finishedAgo` nil = a pass started and never finished.
    func run(_ duty: String, host: String, startedAgo: Int, finishedAgo: Int?, ok: Bool?) throws {
        try c.execute("""
            INSERT INTO worker_runs (name, host, started_at, finished_at, ok)
            VALUES ($1, $2, now() - make_interval(secs => $3::int), now() - make_interval(secs => $4::int), $5)
            """, [duty, host, startedAgo, finishedAgo, ok])
    }

    func alertRows() throws -> [(key: String, chat: Int, dedupe: String)] {
        try c.query("""
            SELECT payload->>'key' AS key, chat_id, dedupe_key FROM telegram_deliveries WHERE kind = 'alert' ORDER BY id
            """).map { (key: $0.requiredString("key"), chat: $0.requiredInt("chat_id"), dedupe: $0.requiredString("dedupe_key")) }
    }

    func hour() throws -> String {
        try c.query("SELECT to_char(date_trunc('hour', now() AT TIME ZONE 'UTC'), 'YYYY-MM-DD\"T\"HH24') AS h")[0].requiredString("h")
    }

    func testSilentWorkersAreThoseWithNoSuccessfulPassOnAnyHost() throws {
        XCTAssertEqual(try keys(), [], "nothing ever ran: nothing to miss")
        // dispatch: both hosts' last successful passes are older than 5 minutes.
        try run("dispatch", host: "a", startedAgo: 601, finishedAgo: 600, ok: true)
        try run("dispatch", host: "b", startedAgo: 361, finishedAgo: 360, ok: true)
        // poll-kie: one host fails, the other works: the duty runs.
        try run("poll-kie", host: "a", startedAgo: 61, finishedAgo: 60, ok: true)
        try run("poll-kie", host: "b", startedAgo: 61, finishedAgo: 60, ok: false)
        // reconcile: it runs, but every pass fails.
        try run("reconcile", host: "a", startedAgo: 31, finishedAgo: 30, ok: false)
        // deliver: a pass started over an hour ago and never finished.
        try run("deliver", host: "a", startedAgo: 4_000, finishedAgo: nil, ok: nil)
        // refund: just started on a fresh machine, its first pass still running: no silence yet.
        try run("refund", host: "a", startedAgo: 20, finishedAgo: nil, ok: nil)
        // prune runs daily: ten hours is fine.
        try run("prune", host: "a", startedAgo: 36_001, finishedAgo: 36_000, ok: true)
        // The sweep does not judge itself; a name that is no duty is ignored.
        try run("sweep", host: "a", startedAgo: 9_000, finishedAgo: 9_000, ok: true)
        try run("something-else", host: "a", startedAgo: 9_000, finishedAgo: 9_000, ok: true)
        XCTAssertEqual(try keys(), ["worker-silent:dispatch", "worker-silent:reconcile", "worker-silent:deliver"])

        try c.execute("UPDATE worker_runs SET finished_at = now() - interval '27 hours' WHERE name = 'prune'")
        try c.execute("UPDATE worker_runs SET finished_at = now(), ok = true WHERE name = 'dispatch' AND host = 'b'")
        var config = Sweeper.Config()
        config.workerSilenceSeconds = 3600
        XCTAssertEqual(try keys(config), ["worker-silent:prune", "worker-silent:deliver", "worker-silent:reconcile"],
                       "the silence limit is a setting; a duty whose passes fail stays silent")
        let text = try XCTUnwrap(try SweepAlerts(config: config, adminChatID: nil).conditions(c).first { $0.key == "worker-silent:deliver" }?.text)
        XCTAssertTrue(text.contains("never finished a pass successfully"), text)
    }

    func testQueuesOlderThanTheirDeadline() throws {
        // Fresh work of every kind: no alert.
        let queued = try JobFixtures.queued(deps, telegramID: 6801, photos: 2, deadlineIn: 3600)
        let running = try JobFixtures.running(deps, telegramID: 6802, photos: 2)
        let delivery = try SweepFixtures.delivery(c, state: "pending", leaseIn: nil, runIn: -60)
        // A refund in flight (its lease is live) is not waiting, however old its run_at.
        _ = try SweepFixtures.refund(c, paymentID: running.paymentID, state: "requested", leaseIn: 60, runIn: -3600)
        XCTAssertEqual(try keys(), [])

        try c.execute("UPDATE generation_tasks SET run_at = now() - interval '11 minutes' WHERE id = $1", [queued.tasks[0].id])
        try c.execute("UPDATE generation_tasks SET run_at = now() - interval '11 minutes' WHERE id = $1", [running.tasks[0].id])
        try c.execute("UPDATE telegram_deliveries SET run_at = now() - interval '11 minutes' WHERE id = $1", [delivery])
        _ = try SweepFixtures.refund(c, paymentID: running.paymentID, state: "pending", leaseIn: nil, runIn: -660)
        XCTAssertEqual(try keys(), ["queue-stale:dispatch", "queue-stale:poll-kie", "queue-stale:deliver", "queue-stale:refund"])

        // A job still open well past the latest moment its tasks could have ended.
        try c.execute("UPDATE generation_jobs SET deadline_at = now() - interval '2101 seconds' WHERE id = $1", [running.id])
        XCTAssertTrue(try keys().contains("queue-stale:jobs"))
        try c.execute("UPDATE generation_jobs SET deadline_at = now() - interval '2000 seconds' WHERE id = $1", [running.id])
        XCTAssertFalse(try keys().contains("queue-stale:jobs"))
        var config = Sweeper.Config()
        config.queueAlertSeconds = 3600
        XCTAssertEqual(try keys(config), [], "the age limit is a setting")
    }

    /// Deliveries held back by design are not a stale queue, however old their `run_at`: a
    /// row behind an earlier batch of its job still in its backoff, and a row whose chat is
    /// paced (a 429's retry_after). Only rows the deliverer could claim now count.
    func testDeliveriesHeldBackByDesignAreNotAStaleQueue() throws {
        let job = try DeliveryFixtures.finishedJob(deps, telegramID: 6811, photos: 7, succeeded: 7)   // album, message
        try c.execute("""
            UPDATE telegram_deliveries SET run_at = CASE WHEN kind = 'album' THEN now() + interval '1 hour' ELSE now() - interval '11 minutes' END
            WHERE job_id = $1
            """, [job.id])
        let paced = try SweepFixtures.delivery(c, state: "pending", leaseIn: nil, runIn: -660, chatID: 6812)
        try c.execute("INSERT INTO telegram_chat_pacing VALUES (6812, now() + interval '30 seconds')")
        XCTAssertEqual(try keys(), [], "the message waits for its album, the other row for its chat")

        try c.execute("UPDATE telegram_chat_pacing SET next_send_at = now() - interval '1 second'")
        XCTAssertEqual(try keys(), ["queue-stale:deliver"], "row \(paced) could go now and waits")
    }

    /// 5xx answers are counted per minute by the app itself; a 404 or a 200 is not; an
    /// answer given because the database is down cannot be (and is not tried).
    func testServerErrorsAreCountedAndSustainedOnesAlert() throws {
        let app = try InProcessApp(database: db)
        XCTAssertEqual(try app.client.get("/api/styles").status, 200)
        XCTAssertEqual(try app.client.get("/api/nope").status, 404)
        try c.execute("ALTER TABLE tiers RENAME TO tiers_gone")
        for _ in 0..<3 { XCTAssertEqual(try app.client.get("/api/pricing").status, 500) }
        try c.execute("ALTER TABLE tiers_gone RENAME TO tiers")
        XCTAssertEqual(try ServerErrors.recent(c, seconds: 300), 3)
        let rows = try c.query("SELECT count(*)::int AS n FROM http_5xx_minutes")[0].requiredInt("n")
        XCTAssertTrue((1...2).contains(rows), "one row per minute, not per answer: \(rows)")

        let down = try InProcessApp(config: try Config(variables: ["DATABASE_URL": "host=/nonexistent port=1 dbname=x"]))
        XCTAssertEqual(try down.client.get("/api/pricing").status, 503)
        XCTAssertFalse(down.deps.database.isConnected, "no connection: the 503 is not counted anywhere")

        var config = Sweeper.Config()
        config.serverErrorAlertCount = 4
        XCTAssertEqual(try keys(config), [])
        // Old minutes fall out of the window.
        try c.execute("INSERT INTO http_5xx_minutes (minute, answers) VALUES (date_trunc('minute', now()) - interval '10 minutes', 100)")
        XCTAssertEqual(try keys(config), [])
        try ServerErrors.record(c)
        XCTAssertEqual(try keys(config), ["http-5xx"])
    }

    /// S3: money owed keeps alerting. A failed refund's own `refund-failed:<id>` alert is
    /// raised once (and goes nowhere without a working admin chat), so the sweep raises
    /// `refunds-owed`, one constant key (a message every hour, logged every pass), while any
    /// refund is failed or still requested a day after it was made; until none is left.
    func testRefundsOwedAlertEveryHourUntilNoneIsLeft() throws {
        let p = try Fixtures.pendingPayment(c, telegramID: 6961, status: "succeeded")
        let failed = try SweepFixtures.refund(c, paymentID: p.id, state: "failed", leaseIn: nil, amount: 1_000)
        let open = try SweepFixtures.refund(c, paymentID: p.id, state: "requested", leaseIn: nil, runIn: 600, amount: 2_000)
        func owed() throws -> String? {
            let found = try SweepAlerts(config: .init(), adminChatID: Self.adminChat).conditions(c)
            return found.first { $0.key == "refunds-owed" }?.text
        }
        var text = try XCTUnwrap(try owed())
        XCTAssertTrue(text.contains("1 refund(s) failed and 0 unresolved") && text.contains("10.00 RUB") && text.contains("\(failed)"), text)
        try c.execute("UPDATE refunds SET created_at = now() - interval '25 hours' WHERE id = $1", [open])
        text = try XCTUnwrap(try owed())
        XCTAssertTrue(text.contains("1 refund(s) failed and 1 unresolved") && text.contains("30.00 RUB"), text)

        // One message per hour under the constant key, found (and logged) on every pass.
        let alerts = SweepAlerts(config: .init(), adminChatID: Self.adminChat)
        let hourBefore = try hour()
        let first = try alerts.raise(c), second = try alerts.raise(c)
        XCTAssertEqual(first.found, 1)
        XCTAssertEqual(second.found, 1, "still owed: found again")
        if try hour() == hourBefore {
            XCTAssertEqual(first.queued + second.queued, 1)
            XCTAssertEqual(try alertRows().map(\.dedupe), ["alert:refunds-owed:\(hourBefore)"])
        }
        XCTAssertEqual(try SweepAlerts(config: .init(), adminChatID: nil).raise(c).found, 1, "no admin chat: still logged")

        // Resolved: the failed one re-queued, the other failed then given back in full in the
        // bank's dashboard (a failed refund of a fully refunded payment owes nothing).
        try ManualRefunds.requeue(c, refundID: failed, actor: "test")
        XCTAssertNotNil(try owed(), "the old requested one is still owed")
        try c.execute("UPDATE refunds SET state = 'failed', finished_at = now() WHERE id = $1", [open])
        XCTAssertNotNil(try owed())
        try c.execute("UPDATE payments SET status = 'refunded', refunded_kopecks = amount_kopecks WHERE id = $1", [p.id])
        XCTAssertNil(try owed())
    }

    /// An operator acknowledges `refunds-owed`: quiet while every owed refund was among those
    /// acknowledged, raised again as soon as another refund is owed or the acknowledgement
    /// runs out; audited; nothing to acknowledge when nothing is owed.
    func testAnAcknowledgedRefundsOwedAlertIsQuietUntilAnotherRefundIsOwed() throws {
        let p = try Fixtures.pendingPayment(c, telegramID: 6971, status: "succeeded")
        XCTAssertNil(try SweepAlerts.acknowledgeRefundsOwed(c, reason: "x", seconds: 3600, actor: "cli:anna"), "nothing owed")
        let failed = try SweepFixtures.refund(c, paymentID: p.id, state: "failed", leaseIn: nil, amount: 1_000)
        XCTAssertTrue(try keys().contains("refunds-owed"))
        let acked = try XCTUnwrap(try SweepAlerts.acknowledgeRefundsOwed(c, reason: "  waiting for the bank, ticket 412 ", seconds: 3600,
                                                                         actor: "cli:anna"))
        XCTAssertEqual(acked.refunds, 1)
        XCTAssertEqual(acked.kopecks, 1_000)
        XCTAssertEqual(acked.ids, "\(failed)")
        XCTAssertFalse(try keys().contains("refunds-owed"), "acknowledged: quiet")
        XCTAssertEqual(try SweepAlerts(config: .init(), adminChatID: Self.adminChat).raise(c).found, 0)
        let audit = try c.query("SELECT actor, action, target, details->>'reason' AS reason FROM admin_audit")
        XCTAssertEqual(audit.map { [$0.string("actor"), $0.string("action"), $0.string("target"), $0.string("reason")] },
                       [["cli:anna", "alert.ack", "alert:refunds-owed", "waiting for the bank, ticket 412"]])

        // Another refund becomes owed: raised again, and its text names both.
        let other = try SweepFixtures.refund(c, paymentID: p.id, state: "failed", leaseIn: nil, amount: 2_000)
        let text = try XCTUnwrap(try SweepAlerts(config: .init(), adminChatID: Self.adminChat).conditions(c).first { $0.key == "refunds-owed" }?.text)
        XCTAssertTrue(text.contains("2 refund(s) failed") && text.contains("\(failed), \(other)") && text.contains("ack-alert"), text)
        // Acknowledged again (both), then the acknowledgement runs out.
        XCTAssertEqual(try SweepAlerts.acknowledgeRefundsOwed(c, reason: "both known", seconds: 3600, actor: "cli:anna")?.refunds, 2)
        XCTAssertFalse(try keys().contains("refunds-owed"))
        try c.execute("UPDATE alert_acks SET until = now() - interval '1 second'")
        XCTAssertTrue(try keys().contains("refunds-owed"), "the acknowledgement ran out")
    }

    /// Through whole sweep passes: the first raises the message to the admin chat, the second
    /// in the same hour adds nothing (and still logs it).
    func testEachAlertIsQueuedOncePerKeyPerHour() throws {
        try run("dispatch", host: "a", startedAgo: 601, finishedAgo: 600, ok: true)
        let running = try JobFixtures.running(deps, telegramID: 6901, photos: 1)
        try c.execute("UPDATE generation_tasks SET run_at = now() - interval '11 minutes' WHERE job_id = $1", [running.id])
        let before = try hour()
        let sweeper = try Sweeper(deps: deps)
        let first = try sweeper.runOnce(now: 0, deadline: deps.clock() + 55)
        let second = try sweeper.runOnce(now: 0, deadline: deps.clock() + 55)
        let after = try hour()
        XCTAssertEqual(first.alerts, 2)
        XCTAssertEqual(second.alerts, 2, "still there, still logged")
        let rows = try alertRows()
        if before == after {
            XCTAssertEqual(first.alertsQueued, 2)
            XCTAssertEqual(second.alertsQueued, 0, "the same hour: nothing new")
            XCTAssertEqual(rows.map(\.key).sorted(), ["queue-stale:poll-kie", "worker-silent:dispatch"])
            XCTAssertEqual(Set(rows.map(\.dedupe)), ["alert:queue-stale:poll-kie:\(before)", "alert:worker-silent:dispatch:\(before)"])
        } else {
            XCTAssertTrue((2...4).contains(rows.count), "at most once per key in each of the two hours: \(rows)")
        }
        XCTAssertEqual(Set(rows.map(\.chat)), [Int(Self.adminChat)])
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM telegram_deliveries WHERE kind = 'alert' AND state = 'pending'")[0].int("n"),
                       rows.count, "queued for pinglass deliver")
    }

    func testWithoutAnAdminChatAlertsAreOnlyLogged() throws {
        let noChat = try PollFixtures.deps(db)
        XCTAssertNil(noChat.config.adminTelegramChatID)
        try run("dispatch", host: "a", startedAgo: 601, finishedAgo: 600, ok: true)
        let report = try Sweeper(deps: noChat).runOnce(now: 0, deadline: noChat.clock() + 55)
        XCTAssertEqual(report.alerts, 1)
        XCTAssertEqual(report.alertsQueued, 0)
        XCTAssertEqual(try alertRows().count, 0)
    }

    /// Kie 402: every task submitted meanwhile fails with it; the admin hears it once an hour.
    func testKieOutOfCreditsAlertsOnce() throws {
        let job = try JobFixtures.queued(deps, telegramID: 6951, photos: 3, deadlineIn: 3600)
        let kie = FakeKie()
        kie.createErrors = [.outOfCredits, .outOfCredits, .outOfCredits]
        deps.kie = kie
        let before = try hour()
        let report = try Dispatcher(deps: deps).runOnce(now: deps.clock(), deadline: deps.clock() + 0.3)
        let after = try hour()
        XCTAssertEqual(report.failed, 3)
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM generation_tasks WHERE job_id = $1 AND fail_code = '402'", [job.id])[0].int("n"), 3)
        let rows = try alertRows()
        XCTAssertEqual(Set(rows.map(\.key)), ["kie-out-of-credits"])
        XCTAssertEqual(Set(rows.map(\.chat)), [Int(Self.adminChat)])
        if before == after {
            XCTAssertEqual(rows.count, 1, "one message for three 402s within the hour")
        } else {
            XCTAssertTrue((1...2).contains(rows.count), "\(rows)")
        }
    }
}

import Foundation
import PinGlassTesting
import Postgres
import XCTest
import PinGlassConfig
@testable import PinGlass

/// The pace holds across processes: two deliverers (two connections, two threads, as two
/// cron runs or two VMs would) share FakeTelegram, and the times Telegram saw the calls show
/// at most one message per chat interval per chat (an album of N counting N) and at most the
/// global rate overall, with a margin for calls that arrive late. Real time: the pace lives in PostgreSQL, whose clock tests cannot
/// move; only lower bounds are asserted, which a slow machine cannot break.
final class DeliveryPacingTests: DatabaseTestCase {
    var telegram: FakeTelegram!
    var c: Connection!

    override func setUpWithError() throws {
        try super.setUpWithError()
        telegram = FakeTelegram()
        c = try db.connect()
    }

    func testTwoDeliverersKeepThePerChatAndTheGlobalPace() throws {
        let interval = 0.1, globalRate = 10
        let storage = try TestEnvironment.makeTempDir("pacing-media")
        let setup = try DeliveryFixtures.deps(db, telegram: telegram, env: ["STORAGE_DIR": storage])
        // Two users with 14 photos each (album of 10, album of 4, message, in that order), one
        // chat with eight messages that may go in any order (what two deliverers could race
        // for), and twenty other chats waiting for one message each: 58 messages.
        for chat in [8001, 8002] { try DeliveryFixtures.finishedJob(setup, telegramID: Int64(chat), photos: 14, succeeded: 14) }
        for n in 1...8 { try Alerts.raise(c, chatID: 9000, key: "busy-\(n)", text: "message \(n)") }
        for chat in 1...20 { try Alerts.raise(c, chatID: Int64(chat), key: "pace-\(chat)", text: "message \(chat)") }
        let rows = try DeliveryFixtures.rows(c)
        XCTAssertEqual(rows.count, 34)

        var config = Deliverer.Config()
        config.chatIntervalSeconds = interval
        config.globalPerSecond = globalRate
        let deliverers = try (0..<2).map { _ in
            try Deliverer(deps: DeliveryFixtures.deps(db, telegram: telegram, env: ["STORAGE_DIR": storage]), config: config)
        }
        let errors = Locked<[String]>([])
        let group = DispatchGroup()
        for deliverer in deliverers.map(Locked.init) {
            group.enter()
            Thread {
                defer { group.leave() }
                do {
                    try DeliveryFixtures.drain(deliverer.value, timeout: 60)
                } catch {
                    errors.mutate { $0.append("\(error)") }
                }
            }.start()
        }
        XCTAssertEqual(group.wait(timeout: .now() + 90), .success)
        XCTAssertEqual(errors.value, [])

        // Each row sent once, its ids recorded.
        let calls = telegram.calls.sorted { $0.at < $1.at }
        XCTAssertTrue(calls.allSatisfy { !$0.failed })
        XCTAssertEqual(calls.count, 34, "each row once")
        let after = try DeliveryFixtures.rows(c)
        XCTAssertEqual(Set(after.map(\.state)), ["sent"])
        XCTAssertEqual(after.flatMap(\.messageIDs).sorted(), calls.flatMap(\.messageIDs).sorted())

        // Per chat: the gap after a call is at least its messages times the interval.
        for (chat, chatCalls) in Dictionary(grouping: calls, by: \.chatID) {
            for (a, b) in zip(chatCalls, chatCalls.dropFirst()) {
                XCTAssertGreaterThanOrEqual(b.at - a.at, Double(a.cost) * interval - 0.001,
                                            "chat \(chat): \(a.cost) messages, then the next after \(b.at - a.at) s")
            }
        }
        XCTAssertEqual(calls.filter { $0.chatID == 8001 }.map(\.cost), [4, 10, 1], "a job's rows in order (the short batch first)")

        // Overall, as Telegram counts (on arrival): no stretch of 1.05 s holds more than the
        // rate. The budget counts over 1.1 s, so a call that takes up to 0.05 s longer to
        // arrive than the calls after it (a slow upload) still leaves every second of
        // arrivals within the rate; a budget of exactly 1 s let the next window's first call
        // arrive just over 1 s after the first one, and any lag on that one put both in one
        // second. 58 messages at 10/s take at least 4 s from the first to the last.
        for (i, call) in calls.enumerated() {
            let burst = calls[i...].prefix { $0.at < call.at + 1.05 }.map(\.cost).reduce(0, +)
            XCTAssertLessThanOrEqual(burst, globalRate, "messages in the 1.05 s from \(call.at)")
        }
        let total = calls.map(\.cost).reduce(0, +)
        XCTAssertEqual(total, 58)
        XCTAssertGreaterThanOrEqual(calls.last!.at - calls.first!.at, Double(total / globalRate - 1))
    }

    /// The race the claim's guard is for: a deliverer whose snapshot saw a chat free, while
    /// another one holds it (claimed a row of it, not yet committed), must not claim another
    /// row of that chat once the other commits. The other deliverer is played by hand, and
    /// the claim is let go only once PostgreSQL shows it waiting for that chat's lock.
    func testAClaimLosesAChatHeldMeanwhile() throws {
        let telegram = FakeTelegram()
        let deps = try DeliveryFixtures.deps(db, telegram: telegram)
        let deliverer = Locked(try Deliverer(deps: deps))
        try Alerts.raise(c, chatID: 9100, key: "held", text: "wait for your turn")
        try c.execute("INSERT INTO telegram_chat_pacing VALUES (9100, now() - interval '1 second')")
        let claimed = Locked<[Int]?>(nil)
        let watcher = try db.connect()
        let done = DispatchSemaphore(value: 0)
        try c.withTransaction { tx in
            try tx.execute("UPDATE telegram_chat_pacing SET next_send_at = now() + interval '1 minute' WHERE chat_id = 9100")
            Thread {
                let d = deliverer.value
                let rows = try? d.claim(d.deps.db(), budget: 25).map(\.id)
                claimed.mutate { $0 = rows }
                done.signal()
            }.start()
            try Subprocess.waitUntil(timeout: 20, "the claim to wait for the chat's lock") {
                try watcher.query("""
                    SELECT count(*)::int AS n FROM pg_stat_activity
                    WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%telegram_chat_pacing%'
                    """)[0].requiredInt("n") == 1
            }
        }
        XCTAssertEqual(done.wait(timeout: .now() + 20), .success)
        XCTAssertEqual(claimed.value, [], "the chat was held meanwhile: nothing claimed")
        XCTAssertEqual(try DeliveryFixtures.rows(c).map(\.state), ["pending"])
    }
}

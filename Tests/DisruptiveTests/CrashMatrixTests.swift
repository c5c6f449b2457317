import XCTest
import Foundation
import PinGlassTesting
import Postgres
@testable import PinGlass

/// The crash-point matrix (crash safety and recovery): for every named crash
/// point, the paid story runs until the process that owns the point dies there (exit 137),
/// then every cron duty runs pass after pass until no work is open, and the end is the one
/// every story must reach (`assertSettled`): no photo lost or doubled, every photo in the
/// chat once, the refund made once at the bank, `pinglass audit` clean.
///
/// The story: an avatar with a reference, the starter tier (7 photos, 499 ₽) paid on the
/// simulated bank, generate, Kie failing the first two tasks it creates (a `partial` job:
/// 5 of 7 is at least 70 %, so 2/7 of the price goes back, 142.57 ₽ — a partial Cancel;
/// after `dispatch.after-create` the orphaned first task is one of the two, so 1/7).
/// The points in the pool (webhook, generate) crash a worker armed through the pool's
/// environment; the others crash the armed `pinglass` command. The deeper checks of each
/// point live beside it (CrashPointTests, DispatchCrashTests, PollKieCrashTests,
/// RefundSimulatorTests, SweepCrashTests); the matrix is the same proof for all of them.
final class CrashMatrixTests: XCTestCase {
    enum Owner: Equatable {
        /// A FastCGI worker: nginx answers 502 and the master logs the exit code.
        case pool
        /// A cron command (`pinglass <duty>`).
        case duty(String)
    }

    static let points: [(name: String, owner: Owner)] = [
        ("webhook.after-log", .pool),
        ("webhook.after-transition", .pool),
        ("generate.before-commit", .pool),
        ("dispatch.after-intent", .duty("dispatch")),
        ("dispatch.after-create", .duty("dispatch")),
        ("poll.after-download", .duty("poll-kie")),
        ("poll.after-store", .duty("poll-kie")),
        ("poll.after-commit", .duty("poll-kie")),
        ("deliver.after-send", .duty("deliver")),
        ("refund.after-intent", .duty("refund")),
        ("refund.after-bank-ok", .duty("refund")),
        ("sweep.mid-run", .duty("sweep")),
    ]

    /// Points in the code that are not steps of the paid story, and where they are proven.
    static let outsideTheStory = [
        "worker.start": "a pool worker dying before it serves any request: PoolTests.testWorkersDyingAtStartAreRespawnedWithBackoff",
    ]

    /// Every `Crashpoint.hit("…")` in Sources (comments aside): a new point cannot be left
    /// out of the matrix unnoticed.
    static func pointsInSources() throws -> Set<String> {
        let sources = try TestEnvironment.root() + "/Sources"
        let pattern = try NSRegularExpression(pattern: #"Crashpoint\.hit\("([^"]+)"\)"#)
        var found = Set<String>()
        let files = FileManager.default.enumerator(atPath: sources)
        while let path = files?.nextObject() as? String {
            guard path.hasSuffix(".swift") else { continue }
            let text = try String(contentsOfFile: sources + "/" + path, encoding: .utf8)
            for line in text.split(separator: "\n") where !line.trimmingCharacters(in: .whitespaces).hasPrefix("//") {
                let s = String(line)
                for m in pattern.matches(in: s, range: NSRange(s.startIndex..., in: s)) {
                    if let r = Range(m.range(at: 1), in: s) { found.insert(String(s[r])) }
                }
            }
        }
        return found
    }

    func testTheMatrixCoversEveryCrashPointInTheSources() throws {
        let inSources = try Self.pointsInSources()
        XCTAssertGreaterThanOrEqual(inSources.count, 13, "the scan found the points: \(inSources)")
        let listed = Set(Self.points.map(\.name)).union(Self.outsideTheStory.keys)
        XCTAssertEqual(Self.points.count, Set(Self.points.map(\.name)).count, "each point once")
        XCTAssertEqual(inSources.subtracting(listed), [], "crash points in the code that the matrix does not run")
        XCTAssertEqual(listed.subtracting(inSources), [], "matrix points that are no longer in the code")
    }

    /// The matrix in three parts, so a parallel run spreads them over its workers; together
    /// they run every point of `points` once (the last part takes whatever the first two do not).
    func testEveryCrashPointInThePoolLosesNoPhotoAndMovesNoMoneyTwice() throws {
        try runPoints { $0.owner == .pool }
    }

    func testEveryCrashPointOfGenerationLosesNoPhotoAndMovesNoMoneyTwice() throws {
        try runPoints { $0.owner == .duty("dispatch") || $0.owner == .duty("poll-kie") }
    }

    func testEveryOtherCrashPointLosesNoPhotoAndMovesNoMoneyTwice() throws {
        try runPoints { $0.owner != .pool && $0.owner != .duty("dispatch") && $0.owner != .duty("poll-kie") }
    }

    func runPoints(_ which: ((name: String, owner: Owner)) -> Bool) throws {
        var timings: [String] = []
        for (n, point) in Self.points.enumerated() where which(point) {
            let start = Date()
            do {
                try run(point.name, point.owner, telegramID: Int64(62_000 + n))
            } catch {
                XCTFail("\(point.name): \(error)")
            }
            timings.append(String(format: "%@ %.1fs", point.name, Date().timeIntervalSince(start)))
        }
        XCTAssertFalse(timings.isEmpty, "no crash point in this part of the matrix")
        print("crash matrix: " + timings.joined(separator: ", "))
    }

    /// One point: the story to the crash, the duties to quiet, the settled end.
    func run(_ point: String, _ owner: Owner, telegramID: Int64) throws {
        let db = try makeDatabase()
        let story = try PaidStory(database: db, telegramID: telegramID, poolEnvironment: owner == .pool ? ["CRASHPOINT": point] : [:])
        defer { story.stop() }
        try story.kie.set(["failNext": 2])
        let duties = Quiesce(environment: story.cliEnvironment)
        try story.prepareAvatar()

        try story.pay()
        if point.hasPrefix("webhook.") {
            try assertWorkerDied(story, point)
            // Every notification died with its worker: nothing of it is left.
            let sent = try story.bank.notifications(story.bankPaymentID)
            XCTAssertFalse(sent.isEmpty, point)
            XCTAssertTrue(sent.allSatisfy { $0["delivered"]?.boolValue == false && $0["lastStatus"]?.intValue == 502 }, "\(point): \(sent)")
            XCTAssertEqual(try story.payment().status, "pending", point)
            XCTAssertEqual(try Fixtures.outcomes(story.db, paymentID: story.paymentID), [], point)
            try story.restartPool(["CRASHPOINT": nil])
            // No re-sent notification is waited for: reconcile asks the bank (GetState).
            try duties.run()
        }
        XCTAssertEqual(try story.payment().status, "succeeded", point)

        if point == "generate.before-commit" {
            XCTAssertEqual(try story.generate().status, 502, point)
            try assertWorkerDied(story, point)
            XCTAssertEqual(try story.db.query("SELECT count(*)::int AS n FROM generation_jobs")[0].int("n"), 0, "\(point): rolled back")
            XCTAssertFalse(try story.payment().consumed, point)
            try story.restartPool(["CRASHPOINT": nil])
        }
        let job = try story.startJob()

        var repeated = RepeatedDelivery.none
        if case .duty(let duty) = owner {
            let crash = try duties.runUntilCrash(duty: duty, at: point)
            if point == "deliver.after-send" { repeated = try sentButNotRecorded(story.db) }
            let moved = try Quiesce.leasesRunOut(story.db)
            if ["dispatch.after-intent", "dispatch.after-create", "deliver.after-send", "refund.after-intent", "refund.after-bank-ok"].contains(point) {
                XCTAssertGreaterThan(moved, 0, "\(point): the killed process held a lease (pass \(crash.pass))")
            }
        }
        try duties.run()
        try assertSettled(story, job: job, outcome: .partial, repeated: repeated, point)
    }

    /// A pool worker was killed at the point: the master logged its exit code (and nginx
    /// answered 502, checked by the caller where it sees the answer).
    func assertWorkerDied(_ story: PaidStory, _ point: String) throws {
        try Subprocess.waitUntil("\(point): a worker killed") { story.stack.log().contains("exited with code 137") }
    }

    /// The batch a deliverer sent and died before recording: the row it left `sending`.
    /// Telegram has no idempotency key, so that batch is sent again once the lease ends —
    /// always, here: the design repeats it rather than risk losing it (LeaseRescuer,
    /// Deliverer). It is the only thing that may show twice, and it must show exactly twice.
    func sentButNotRecorded(_ c: Connection) throws -> RepeatedDelivery {
        let rows = try c.query("""
            SELECT d.kind, (SELECT array_to_string(array_agg(encode(p.sha256, 'hex')), ',') FROM generated_photos p
                            WHERE p.id IN (SELECT (e ->> 'id')::bigint FROM jsonb_array_elements(coalesce(d.payload -> 'photos', '[]')) e)) AS shas
            FROM telegram_deliveries d WHERE d.state = 'sending'
            """)
        XCTAssertEqual(rows.count, 1, "one row was being sent when the deliverer died")
        guard let row = rows.first else { return .none }
        if row.string("kind") == "message" { return .finalMessage }
        return .photos(Set((row.string("shas") ?? "").split(separator: ",").map(String.init)))
    }
}

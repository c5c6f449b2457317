import XCTest
import Foundation
import PinGlassTesting
import Postgres
@testable import PinGlass

/// PostgreSQL restarted in the middle of a full paid story, with every
/// cron duty running as the long-lived loop cron starts (`--for … --every 1s`): nothing is
/// lost (the story settles as any other: photos delivered once, the refund made once, the
/// audit clean), and each duty recovers on its next pass by itself, in the same process.
///
/// It stops and starts the shared cluster, so it takes it exclusively
/// (`TestEnvironment.pgControl`) and refuses to run beside another test process.
final class PostgresRestartTests: XCTestCase {
    func testARestartMidRunLosesNothingAndEveryDutyRecoversInTheSameProcess() throws {
        let db = try makeDatabase()
        // Kie takes 3 s per task: the restart falls while every task is at Kie.
        let story = try PaidStory(database: db, telegramID: 64_001,
                                  kie: ["waitingSeconds": .double(0.1), "queuingSeconds": .double(0.1), "generatingSeconds": .double(3)])
        defer { story.stop() }
        try story.kie.set(["failNext": 2])
        try story.prepareAvatar()
        try story.pay()

        let logs = try TestEnvironment.makeTempDir("restart-duties")
        var loops: [(duty: String, process: ChildProcess)] = []
        defer {
            for loop in loops { loop.process.terminate() }
            for loop in loops { loop.process.wait() }
        }
        for duty in Quiesce.duties {
            let args = [duty, "--for", "120s", "--every", "1s"] + (Quiesce.testFlags[duty] ?? [])
            loops.append((duty, try Subprocess.start(TestEnvironment.binDir() + "/pinglass", args, environment: story.cliEnvironment,
                                                     logPath: logs + "/\(duty).log")))
        }
        func log(_ duty: String) -> String { (try? String(contentsOfFile: logs + "/\(duty).log", encoding: .utf8)) ?? "" }

        let job = try story.startJob()
        let c = story.db
        try Subprocess.waitUntil(timeout: 20, interval: 0.05, "every task submitted to Kie") {
            try c.query("SELECT count(*)::int AS n FROM generation_tasks WHERE job_id = $1 AND state = 'running'", [job])[0].int("n") == 7
        }
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM generated_photos")[0].int("n"), 0, "the restart comes before any photo")

        // The restart, held down until every duty has met it (a failed pass in its log): a
        // restart of a fraction of a second can fall between two passes and go unnoticed,
        // since a session found closed is reopened before anything is sent.
        let restartStart = Date()
        try TestEnvironment.pgControl("stop")
        var up = false
        defer { if !up { try? TestEnvironment.pgControl("start") } }
        try Subprocess.waitUntil(timeout: 15, interval: 0.1, "every duty to meet the stopped database") {
            loops.allSatisfy { log($0.duty).contains("pass failed") }
        }
        try TestEnvironment.pgControl("start")
        up = true
        let restartSeconds = Date().timeIntervalSince(restartStart)
        let back = try c.query("SELECT now()::text AS t")[0].requiredString("t")

        // Each duty has a good pass that began after the restart, without being started again.
        try Subprocess.waitUntil(timeout: 15, interval: 0.1, "a good pass of every duty after the restart") {
            try c.query("SELECT count(*)::int AS n FROM worker_runs WHERE ok AND started_at > $1::timestamptz AND finished_at >= started_at",
                        [back])[0].int("n") == Quiesce.duties.count
        }
        try Subprocess.waitUntil(timeout: 60, interval: 0.2, "the story to settle") { try Quiesce.openWork(c).isEmpty }
        for loop in loops {
            XCTAssertTrue(loop.process.isRunning, "\(loop.duty) kept running through the restart: \(log(loop.duty).suffix(2000))")
        }
        try assertSettled(story, job: job, outcome: .partial, "after a PostgreSQL restart")

        let failedPasses = loops.map { "\($0.duty): \(log($0.duty).components(separatedBy: "pass failed").count - 1)" }
        print(String(format: "PostgreSQL down for %.1fs; failed passes: ", restartSeconds) + failedPasses.joined(separator: ", "))
    }

    /// PostgreSQL goes down while an album is on its way to Telegram (which shows it): the
    /// deliverer knows the send went through and records it once the database is back,
    /// in the same pass. Nothing waits for the row's lease to run out, and the album is not
    /// sent a second time (only a killed deliverer may repeat a batch: CrashMatrixTests).
    func testPostgresDownWhileAnAlbumIsInFlightShowsItOnce() throws {
        let db = try makeDatabase()
        let story = try PaidStory(database: db, telegramID: 64_002)
        defer { story.stop() }
        try story.kie.set(["failNext": 2])
        try story.prepareAvatar()
        try story.pay()
        let job = try story.startJob()
        let c = story.db
        try Subprocess.waitUntil(timeout: 30, interval: 0.1, "the job to finish") {
            for duty in ["dispatch", "poll-kie"] {
                let run = try story.cli([duty] + (Quiesce.testFlags[duty] ?? []))
                XCTAssertEqual(run.status, 0, run.output)
            }
            return try c.query("SELECT status FROM generation_jobs WHERE id = $1", [job])[0].string("status") == "partial"
        }

        // Telegram answers two seconds after it showed a message; the deliverer keeps its
        // default lease (2 minutes), as in production.
        try story.telegram.set(["latencyMs": 2000])
        let logPath = try TestEnvironment.makeTempDir("album-in-flight") + "/deliver.log"
        let deliver = try Subprocess.start(TestEnvironment.binDir() + "/pinglass", ["deliver", "--for", "60s", "--every", "1s"],
                                           environment: story.cliEnvironment, logPath: logPath)
        defer { deliver.terminate(); deliver.wait() }
        func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
        try Subprocess.waitUntil(timeout: 20, interval: 0.05, "the album in the chat") {
            try story.telegram.messages(chat: story.telegramID).contains { $0["photoSha256"]?.stringValue != nil }
        }
        try TestEnvironment.pgControl("stop")
        var up = false
        defer { if !up { try? TestEnvironment.pgControl("start") } }
        // Telegram's answer reaches the deliverer while the database is down.
        try Subprocess.waitUntil(timeout: 15, interval: 0.1, "the deliverer to meet the stopped database") {
            log().contains("database is unreachable") || log().contains("pass failed")
        }
        try TestEnvironment.pgControl("start")
        up = true

        try Subprocess.waitUntil(timeout: 20, interval: 0.2, "every delivery recorded") { try Quiesce.openWork(c).deliveries == 0 }
        XCTAssertTrue(deliver.isRunning, "the same deliverer: \(log().suffix(2000))")
        try story.telegram.set(["latencyMs": nil])
        try Quiesce(environment: story.cliEnvironment).run()      // the refund
        try assertSettled(story, job: job, outcome: .partial, "PostgreSQL down while an album was in flight")
    }
}

import Foundation
import PinGlassTestSupport
import Postgres
import XCTest
@testable import PinGlass

/// The batching rule: an album for every ten stored photos while a job runs, the rest and
/// the final message at its finish, each photo in exactly one row of its own job, however
/// many pollers store photos of one job at once.
final class DeliveryBatchesTests: PipelineTestCase {
    /// Poll-kie's commit for one task (`KiePoller.storePhoto`: the task succeeds, its photo
    /// is inserted, full albums are made, in one transaction): the albums made.
    static func store(_ conn: Connection, _ job: PollFixtures.Job, task: Int) throws -> Int {
        try conn.withTransaction { tx in
            let albums = { try tx.query("SELECT count(*)::int AS n FROM telegram_deliveries WHERE job_id = $1", [job.id])[0].requiredInt("n") }
            let before = try albums()
            _ = try KiePoller.storePhoto(tx, taskID: task, jobID: job.id, key: "generated/fixture-\(task).jpg",
                                         contentType: "image/jpeg", bytes: GenerationFixtures.jpeg(task))
            return try albums() - before
        }
    }

    func photos(_ jobID: Int) throws -> [(id: Int, delivery: Int?, index: Int)] {
        try c.query("""
            SELECT p.id, p.delivery_id, t.prompt_index FROM generated_photos p JOIN generation_tasks t ON t.id = p.task_id
            WHERE p.job_id = $1 ORDER BY t.prompt_index
            """, [jobID]).map { ($0.requiredInt("id"), $0.int("delivery_id"), $0.requiredInt("prompt_index")) }
    }

    /// Every photo of the job is in exactly one of its rows, and the row's payload and the
    /// photo's `delivery_id` agree.
    func assertEachPhotoOnce(_ jobID: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        let rows = try DeliveryFixtures.rows(c, jobID: jobID)
        let all = try photos(jobID)
        XCTAssertEqual(rows.flatMap(\.photoIDs).sorted(), all.map(\.id).sorted(), "each photo once", file: file, line: line)
        for p in all {
            XCTAssertEqual(rows.first { $0.photoIDs.contains(p.id) }?.id, p.delivery, "photo \(p.id)", file: file, line: line)
        }
    }

    func testTheTenthPhotoMakesAnAlbumAndTheFinishMakesTheRest() throws {
        let job = try PollFixtures.runningJob(deps, telegramID: 7801, photos: 23)
        // Photos arrive out of prompt order.
        let order = [3, 0, 7, 1, 9, 2, 11, 4, 5]
        for i in order { XCTAssertEqual(try Self.store(c, job, task: job.tasks[i].id), 0, "nine photos: no album yet") }
        XCTAssertEqual(try Self.store(c, job, task: job.tasks[6].id), 1)
        var rows = try DeliveryFixtures.rows(c, jobID: job.id)
        XCTAssertEqual(rows.map(\.kind), ["album"])
        let first10 = try photos(job.id).filter { [0, 1, 2, 3, 4, 5, 6, 7, 9, 11].contains($0.index) }.map(\.id)
        XCTAssertEqual(rows[0].photoIDs, first10, "the ten stored, in prompt order")
        XCTAssertEqual(try Self.store(c, job, task: job.tasks[8].id), 0)

        for i in [10, 12, 13, 14, 15, 16, 17] { _ = try Self.store(c, job, task: job.tasks[i].id) }
        try c.execute("""
            UPDATE generation_tasks SET state = 'failed', finished_at = now(), fail_code = '500' WHERE job_id = $1 AND state = 'running'
            """, [job.id])
        let done = try XCTUnwrap(try JobFinish.finish(c, jobID: job.id))
        XCTAssertEqual(done.deliveries, 2, "the rest and the message")
        rows = try DeliveryFixtures.rows(c, jobID: job.id)
        XCTAssertEqual(rows.map(\.kind), ["album", "album", "message"])
        XCTAssertEqual(rows.map(\.batchNo), [0, 1, 2])
        XCTAssertEqual(rows.map(\.photoIDs.count), [10, 8, 0])
        try assertEachPhotoOnce(job.id)
        XCTAssertEqual(try c.query("SELECT payload ->> 'photoCount' AS n FROM telegram_deliveries WHERE id = $1", [rows[2].id])[0]
                        .string("n"), "18")
        XCTAssertEqual(try c.withTransaction { try DeliveryBatches.addFullAlbums($0, jobID: job.id) }, 0,
                       "a finished job gets nothing more")
    }

    /// A remainder of one photo is a `photo` row; twenty photos stored before any album make
    /// two albums at once.
    func testARemainderOfOneIsAPhotoAndLateAlbumsCatchUp() throws {
        let job = try PollFixtures.runningJob(deps, telegramID: 7802, photos: 23)
        try PollFixtures.settle(c, job, succeeded: 21, failed: 0)   // stored without the batching step
        XCTAssertEqual(try c.withTransaction { try DeliveryBatches.addFullAlbums($0, jobID: job.id) }, 2)
        try PollFixtures.settle(c, job, succeeded: 21, failed: 2)
        try JobFinish.finish(c, jobID: job.id)
        XCTAssertEqual(try DeliveryFixtures.rows(c, jobID: job.id).map(\.kind), ["album", "album", "photo", "message"])
        try assertEachPhotoOnce(job.id)
    }

    /// Four pollers commit photos of the same jobs at once: the job's lock serialises the
    /// batching, so no photo lands in two rows and no album is short; and never by a
    /// deadlock that `withTransaction`'s retry would hide (none was retried).
    func testConcurrentCommitsPutEachPhotoInExactlyOneRow() throws {
        let jobs = try (0..<3).map { try PollFixtures.runningJob(deps, telegramID: Int64(7810 + $0), photos: 23) }
        let work = Locked(jobs.flatMap { job in job.tasks.map { (job, $0.id) } }.shuffled())
        let url = db.url
        let errors = Locked<[String]>([])
        let retries = Locked(0)
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            do {
                let conn = try Connection(url)
                defer { retries.mutate { $0 += conn.serializationRetries } }
                while true {
                    var next: (PollFixtures.Job, Int)?
                    work.mutate { if !$0.isEmpty { next = $0.removeLast() } }
                    guard let (job, task) = next else { break }
                    _ = try DeliveryBatchesTests.store(conn, job, task: task)
                }
            } catch {
                errors.mutate { $0.append("\(error)") }
            }
        }
        XCTAssertEqual(errors.value, [])
        XCTAssertEqual(retries.value, 0, "no commit deadlocked (40P01) or was retried")
        for job in jobs {
            let rows = try DeliveryFixtures.rows(c, jobID: job.id)
            XCTAssertEqual(rows.map(\.photoIDs.count), [10, 10], "two full albums while running")
            XCTAssertEqual(try photos(job.id).filter { $0.delivery == nil }.count, 3)
            try JobFinish.finish(c, jobID: job.id)
            XCTAssertEqual(try DeliveryFixtures.rows(c, jobID: job.id).map(\.kind), ["album", "album", "album", "message"])
            try assertEachPhotoOnce(job.id)
        }
        XCTAssertEqual(try InvariantAudit.run(c), [])
    }

    /// The interleaving that deadlocked: two pollers have each inserted a photo of the job
    /// (its foreign key holds a key-share lock on the job row) and both ask for the job's
    /// batching lock. A third transaction holds that lock meanwhile, so both are surely at
    /// that point together when it lets go. `FOR UPDATE` there conflicted with the other's
    /// key-share lock: each waited for the other (40P01, then a hidden retry). Now the
    /// second simply waits for the first to commit.
    func testTwoPollersStoringPhotosOfOneJobNeverDeadlock() throws {
        let job = try PollFixtures.runningJob(deps, telegramID: 7820, photos: 23)
        let shared = Locked(job)
        let url = db.url
        let watcher = try db.connect()
        let errors = Locked<[String]>([])
        let retries = Locked(0)
        let group = DispatchGroup()
        try c.withTransaction { tx in
            let holder = try tx.query("SELECT pg_backend_pid() AS pid")[0].requiredInt("pid")
            try tx.execute("SELECT 1 FROM generation_jobs WHERE id = $1 FOR NO KEY UPDATE", [job.id])
            for task in job.tasks.prefix(2) {
                group.enter()
                Thread {
                    defer { group.leave() }
                    do {
                        let conn = try Connection(url)
                        _ = try DeliveryBatchesTests.store(conn, shared.value, task: task.id)
                        retries.mutate { $0 += conn.serializationRetries }
                    } catch {
                        errors.mutate { $0.append("\(error)") }
                    }
                }.start()
            }
            try Subprocess.waitUntil(timeout: 20, "both pollers past their insert, waiting for the job's lock") {
                try watcher.query("""
                    SELECT count(*)::int AS n FROM pg_stat_activity
                    WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> $1 AND query LIKE '%generation_jobs%'
                    """, [holder])[0].requiredInt("n") == 2
            }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(errors.value, [])
        XCTAssertEqual(retries.value, 0, "neither commit deadlocked (40P01) nor was retried")
        XCTAssertEqual(try photos(job.id).count, 2)
    }
}

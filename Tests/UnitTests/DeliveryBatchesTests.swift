import Foundation
import PinGlassTesting
import Postgres
import XCTest
@testable import PinGlass

/// The batching rule: while a job runs, the short batch first and then an album of ten as
/// soon as their photos are stored; the rest and the final message at its finish; each
/// photo in exactly one row of its own job, however many pollers store photos of one job at
/// once.
final class DeliveryBatchesTests: PipelineTestCase {
    /// Poll-kie's commit for one task (`KiePoller.storePhoto`: the task succeeds, its photo
    /// is inserted, full albums are made, in one transaction): the albums made.
    static func store(_ conn: Connection, _ job: JobFixtures.Job, task: Int) throws -> Int {
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

    /// The sizes while running: the remainder by ten first, then tens.
    func testTheShortBatchComesFirst() {
        func plan(_ total: Int) -> [Int] {
            var sizes: [Int] = [], released = 0
            while released < total {
                sizes.append(DeliveryBatches.batchSize(total: total, released: released))
                released += sizes.last!
            }
            return sizes
        }
        XCTAssertEqual(plan(23), [3, 10, 10])
        XCTAssertEqual(plan(20), [10, 10])
        XCTAssertEqual(plan(15), [5, 10])
        XCTAssertEqual(plan(7), [7])
        XCTAssertEqual(plan(11), [1, 10])
    }

    /// 23 photos: the third stored makes the batch of 3, ten more the first album; the
    /// finish makes an album of what is left (here 5 of the last 10, the rest failed) and
    /// the message.
    func testTheShortBatchGoesFirstThenAlbumsAndTheFinishMakesTheRest() throws {
        let job = try JobFixtures.running(deps, telegramID: 7801, photos: 23)
        // Photos arrive out of prompt order.
        for i in [3, 0] { XCTAssertEqual(try Self.store(c, job, task: job.tasks[i].id), 0, "two photos: no batch yet") }
        XCTAssertEqual(try Self.store(c, job, task: job.tasks[7].id), 1, "the third makes the short batch")
        var rows = try DeliveryFixtures.rows(c, jobID: job.id)
        XCTAssertEqual(rows.map(\.kind), ["album"])
        XCTAssertEqual(rows[0].photoIDs, try photos(job.id).filter { [0, 3, 7].contains($0.index) }.map(\.id), "in prompt order")
        for i in [1, 9, 2, 11, 4, 5, 6, 8, 10] { XCTAssertEqual(try Self.store(c, job, task: job.tasks[i].id), 0, "fewer than ten waiting") }
        XCTAssertEqual(try Self.store(c, job, task: job.tasks[12].id), 1)
        rows = try DeliveryFixtures.rows(c, jobID: job.id)
        XCTAssertEqual(rows.map(\.photoIDs.count), [3, 10])
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM generated_photos WHERE job_id = $1 AND released_at IS NOT NULL",
                                   [job.id])[0].int("n"), 13, "photos in a row are released")

        for i in 13...17 { _ = try Self.store(c, job, task: job.tasks[i].id) }
        try c.execute("""
            UPDATE generation_tasks SET state = 'failed', finished_at = now(), fail_code = '500' WHERE job_id = $1 AND state = 'running'
            """, [job.id])
        let done = try XCTUnwrap(try JobFinish.finish(c, jobID: job.id))
        XCTAssertEqual(done.outcome, .partial, "18 of 23")
        XCTAssertEqual(done.deliveries, 2, "the rest and the message")
        rows = try DeliveryFixtures.rows(c, jobID: job.id)
        XCTAssertEqual(rows.map(\.kind), ["album", "album", "album", "message"])
        XCTAssertEqual(rows.map(\.batchNo), [0, 1, 2, 3])
        XCTAssertEqual(rows.map(\.photoIDs.count), [3, 10, 5, 0])
        try assertEachPhotoOnce(job.id)
        XCTAssertEqual(try c.query("SELECT payload ->> 'photoCount' AS n FROM telegram_deliveries WHERE id = $1", [rows[3].id])[0]
                        .string("n"), "18")
        XCTAssertEqual(try c.withTransaction { try DeliveryBatches.addReadyBatches($0, jobID: job.id) }, 0,
                       "a finished job gets nothing more")
    }

    /// A short batch of one is a `photo` row; twenty-one photos stored before any batch make
    /// all three batches at once.
    func testABatchOfOneIsAPhotoAndLateBatchesCatchUp() throws {
        let job = try JobFixtures.running(deps, telegramID: 7802, photos: 21)
        try JobFixtures.settle(c, job, succeeded: 21, failed: 0)   // stored without the batching step
        XCTAssertEqual(try c.withTransaction { try DeliveryBatches.addReadyBatches($0, jobID: job.id) }, 3)
        try JobFinish.finish(c, jobID: job.id)
        let rows = try DeliveryFixtures.rows(c, jobID: job.id)
        XCTAssertEqual(rows.map(\.kind), ["photo", "album", "album", "message"])
        XCTAssertEqual(rows.map(\.photoIDs.count), [1, 10, 10, 0])
        try assertEachPhotoOnce(job.id)
    }

    /// What the finish cuts goes short first as well: eleven photos still in no row at the
    /// end (none batched while running) are a photo, then an album of ten, in prompt order.
    func testTheFinishCutsTheShortBatchFirst() throws {
        let job = try JobFixtures.running(deps, telegramID: 7803, photos: 12)
        try JobFixtures.settle(c, job, succeeded: 11, failed: 1)   // stored without the batching step
        XCTAssertEqual(try JobFinish.finish(c, jobID: job.id)?.outcome, .partial)
        let rows = try DeliveryFixtures.rows(c, jobID: job.id)
        XCTAssertEqual(rows.map(\.kind), ["photo", "album", "message"])
        XCTAssertEqual(rows.map(\.photoIDs.count), [1, 10, 0])
        XCTAssertEqual(rows.dropLast().flatMap(\.photoIDs), try photos(job.id).map(\.id), "in prompt order")
        try assertEachPhotoOnce(job.id)
    }

    /// Four pollers commit photos of the same jobs at once: the job's lock serialises the
    /// batching, so no photo lands in two rows and no album is short; and never by a
    /// deadlock that `withTransaction`'s retry would hide (none was retried).
    func testConcurrentCommitsPutEachPhotoInExactlyOneRow() throws {
        let jobs = try (0..<3).map { try JobFixtures.running(deps, telegramID: Int64(7810 + $0), photos: 23) }
        let work = Locked(jobs.flatMap { job in job.tasks.map { (job, $0.id) } }.shuffled())
        let url = db.url
        let errors = Locked<[String]>([])
        let retries = Locked(0)
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            do {
                let conn = try Connection(url)
                defer { retries.mutate { $0 += conn.serializationRetries } }
                while true {
                    var next: (JobFixtures.Job, Int)?
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
            XCTAssertEqual(rows.map(\.photoIDs.count), [3, 10, 10], "every batch while running, the short one first")
            XCTAssertEqual(try photos(job.id).filter { $0.delivery == nil }.count, 0)
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
        let job = try JobFixtures.running(deps, telegramID: 7820, photos: 23)
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

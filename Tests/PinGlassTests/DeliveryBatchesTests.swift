import Foundation
import PinGlassTestSupport
import Postgres
import XCTest
@testable import PinGlass

/// The batching rule: an album for every ten stored photos while a job runs, the rest and
/// the final message at its finish, each photo in exactly one row of its own job, however
/// many pollers store photos of one job at once.
final class DeliveryBatchesTests: XCTestCase {
    var db: TestDatabase!
    var deps: Dependencies!
    var c: Connection!

    override func setUpWithError() throws {
        db = try TestDatabase()
        deps = try PollFixtures.deps(db)
        c = try db.connect()
    }
    override func tearDown() { db?.drop() }

    /// What poll-kie's commit does for one task: the task succeeds, its photo is inserted, and
    /// full albums are made, in one transaction.
    static func store(_ conn: Connection, _ job: PollFixtures.Job, task: Int) throws -> Int {
        try conn.withTransaction { tx in
            try tx.execute("UPDATE generation_tasks SET state = 'succeeded', finished_at = now() WHERE id = $1 AND state = 'running'",
                           [task])
            try tx.execute("""
                INSERT INTO generated_photos (job_id, task_id, avatar_id, storage_key, content_type, byte_size, sha256)
                SELECT j.id, $2, j.avatar_id, 'generated/fixture-' || $2::bigint || '.jpg', 'image/jpeg', 64, sha256($2::bigint::text::bytea)
                FROM generation_jobs j WHERE j.id = $1
                """, [job.id, task])
            return try DeliveryBatches.addFullAlbums(tx, jobID: job.id)
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
    /// batching, so no photo lands in two rows and no album is short.
    func testConcurrentCommitsPutEachPhotoInExactlyOneRow() throws {
        let jobs = try (0..<3).map { try PollFixtures.runningJob(deps, telegramID: Int64(7810 + $0), photos: 23) }
        let work = Locked(jobs.flatMap { job in job.tasks.map { (job, $0.id) } }.shuffled())
        let url = db.url
        let errors = Locked<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            do {
                let conn = try Connection(url)
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
}

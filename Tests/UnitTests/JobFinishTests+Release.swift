import Foundation
import PinGlassTesting
import Postgres
import XCTest
@testable import PinGlass

/// When a failed job's photos were released, against when it ended.
extension JobFinishTests {
    /// A sweep's transaction that began before a poller released a batch finishes the job
    /// after that release all the same: the audit's "released at or after its end" is not
    /// raised for a photo the customer rightly got while the job ran.
    func testAFinishWhoseTransactionBeganBeforeABatchEndsAfterThatRelease() throws {
        let job = try JobFixtures.running(deps, telegramID: 7331, photos: 23)
        let sweep = try db.connect()
        let done = try sweep.withTransaction { tx -> FinishedJob? in
            _ = try tx.query("SELECT now()")   // the transaction's time is fixed from here
            // Meanwhile a poller stores three photos: the short batch goes out.
            for task in job.tasks.prefix(3) { _ = try DeliveryBatchesTests.store(c, job, task: task.id) }
            XCTAssertEqual(try released(job.id), 3)
            try JobFixtures.settle(c, job, succeeded: 15, failed: 8)
            return try JobFinish.finish(tx, jobID: job.id)
        }
        XCTAssertEqual(done?.outcome, .failed, "15 of 23 is below 70 %")
        XCTAssertEqual(done?.withheld, 12)
        let order = try c.query("""
            SELECT bool_and(g.released_at < j.finished_at) AS before FROM generated_photos g JOIN generation_jobs j ON j.id = g.job_id
            WHERE j.id = $1 AND g.released_at IS NOT NULL
            """, [job.id])[0]
        XCTAssertEqual(order.bool("before"), true, "every release before the end")
        XCTAssertEqual(try InvariantAudit.run(c), [])
    }

    /// A photo row inserted already released is refused for a failed job (the guard on
    /// UPDATE alone let it through), with the same SQLSTATE and a message saying why.
    func testAPhotoOfAFailedJobCannotBeInsertedReleased() throws {
        let job = try JobFixtures.running(deps, telegramID: 7332, photos: 7)
        try JobFixtures.settle(c, job, succeeded: 2, failed: 5)
        XCTAssertEqual(try JobFinish.finish(c, jobID: job.id)?.outcome, .failed)
        let last = try XCTUnwrap(job.tasks.last).id   // a task with no photo
        XCTAssertThrowsError(try c.execute("""
            INSERT INTO generated_photos (job_id, task_id, avatar_id, storage_key, content_type, byte_size, sha256, released_at)
            SELECT j.id, $2, j.avatar_id, 'generated/late.jpg', 'image/jpeg', 64, sha256('late'::bytea), now()
            FROM generation_jobs j WHERE j.id = $1
            """, [job.id, last])) { error in
            guard case .server(let state, let message)? = error as? PostgresError else { return XCTFail("\(error)") }
            XCTAssertEqual(state, "23514")
            XCTAssertTrue(message.contains("failed job \(job.id) is withheld"), message)
        }
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM generated_photos WHERE job_id = $1", [job.id])[0].int("n"), 2)
    }
}

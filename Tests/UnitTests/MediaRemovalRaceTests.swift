import Foundation
import Logging
import PinGlassTesting
import Postgres
import XCTest
@testable import PinGlass

/// Removing photos (the customer's deletion, the avatar's, the retention pass) against what
/// runs at the same time: a re-queue, a delivery claim, a reference upload, a generate. Each
/// race is driven with explicit transactions: a holder connection takes the lock the two
/// sides meet at, both sides are started and seen waiting for it in `pg_stat_activity`, and
/// the holder lets go; the queue order decides who goes first, and the end state must be
/// consistent (docs/architecture.md#media-retention).
final class MediaRemovalRaceTests: DatabaseTestCase {
    var telegram: FakeTelegram!
    var deps: Dependencies!
    var c: Connection!
    var storage: String!
    let log = Logger(label: "test")

    override func setUpWithError() throws {
        try super.setUpWithError()
        telegram = FakeTelegram()
        storage = try TestEnvironment.makeTempDir("media")
        deps = try makeDeps()
        c = try db.connect()
    }

    /// Dependencies with their own connection (one per thread), sharing the media folder.
    func makeDeps() throws -> Dependencies {
        try DeliveryFixtures.deps(db, telegram: telegram, env: ["STORAGE_DIR": storage])
    }

    func lockWaiters() throws -> Int {
        try c.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")[0]
            .requiredInt("n")
    }

    /// Runs `body` on another thread with its own dependencies; `wait()` hands back its outcome.
    func background<T>(_ body: @escaping @Sendable (Dependencies) throws -> T) throws -> () -> Result<T, Error>? {
        nonisolated(unsafe) let own = try makeDeps()
        nonisolated(unsafe) var outcome: Result<T, Error>?
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            outcome = Result { try body(own) }
            done.signal()
        }
        return {
            guard done.wait(timeout: .now() + 30) == .success else { return nil }
            done.signal()
            return outcome
        }
    }

    func waitingDeliveriesOfRemovedPhotos() throws -> Int {
        try c.query("""
            SELECT count(*)::int AS n FROM telegram_deliveries d JOIN generated_photos g ON g.delivery_id = d.id
            WHERE d.state IN ('pending', 'sending') AND g.media_removed_at IS NOT NULL
            """)[0].requiredInt("n")
    }

    func avatarOf(_ job: JobFixtures.Job) throws -> Int {
        try c.query("SELECT avatar_id FROM generation_jobs WHERE id = $1", [job.id])[0].requiredInt("avatar_id")
    }

    /// A delivery withdrawn because its photos were removed cannot be re-queued: nothing is
    /// left to send. Re-queued anyway, it failed again with "stored photo missing" and
    /// raised the operator's alert; now it is refused and nothing changes.
    func testADeliveryWithdrawnBecauseItsPhotosWentIsNotRequeued() throws {
        let job = try DeliveryFixtures.finishedJob(deps, telegramID: 7801, photos: 3, succeeded: 3)
        try Avatars.delete(deps, userID: try JobFixtures.user(c, telegramID: 7801), id: try avatarOf(job), log: log)
        let album = try XCTUnwrap(try DeliveryFixtures.rows(c, jobID: job.id).first)
        XCTAssertEqual(album.state, "failed")
        XCTAssertEqual(album.lastError, "withdrawn: the customer deleted the avatar")

        XCTAssertEqual(try DeliveryRequeue.requeue(c, id: album.id, actor: "cli:test"), .photosRemoved(count: 3))
        let after = try XCTUnwrap(try DeliveryFixtures.rows(c, jobID: job.id).first)
        XCTAssertEqual(after.state, "failed", "left failed")
        XCTAssertEqual(after.lastError, album.lastError)
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM admin_audit")[0].requiredInt("n"), 0, "nothing recorded")

        var config = Deliverer.Config()
        config.chatIntervalSeconds = 0.05
        config.globalPerSecond = 1000
        try DeliveryFixtures.drain(try Deliverer(deps: deps, config: config))
        XCTAssertEqual(telegram.sent.map(\.method), [.message], "only the final message goes")
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM telegram_deliveries WHERE kind = 'alert'")[0].requiredInt("n"), 0,
                       "no operator alert")
    }

    /// The retention pass and a re-queue of the same photos' failed delivery: before, the
    /// pass decided on a snapshot and marked the photos removed after the re-queue had
    /// committed, leaving a pending delivery of removed photos. Now the pass locks the photos
    /// then the delivery, the re-queue share-locks the photos first: the re-queue waits and
    /// is refused.
    func testARequeueRacingTheRetentionPassNeverLeavesADeliveryWaitingForARemovedPhoto() throws {
        let job = try DeliveryFixtures.finishedJob(deps, telegramID: 7811, photos: 3, succeeded: 3)
        try c.execute("""
            UPDATE telegram_deliveries SET state = CASE kind WHEN 'album' THEN 'failed' ELSE 'sent' END,
                   last_error = CASE kind WHEN 'album' THEN 'Forbidden: bot was blocked by the user' END,
                   sent_at = CASE kind WHEN 'album' THEN NULL ELSE now() END
            WHERE job_id = $1
            """, [job.id])
        try c.execute("UPDATE generation_jobs SET finished_at = now() - interval '100 days' WHERE id = $1", [job.id])
        let album = try XCTUnwrap(try DeliveryFixtures.rows(c, jobID: job.id).first)

        let holder = try db.connect()
        try holder.execute("BEGIN")
        try holder.execute("SELECT 1 FROM generated_photos WHERE job_id = $1 FOR UPDATE", [job.id])
        let pruned = try background { deps in
            try Pruner(deps: deps, config: .init()).runOnce(now: deps.clock(), deadline: deps.clock() + 55)
        }
        try Subprocess.waitUntil("the retention pass waiting for the photos") { try lockWaiters() == 1 }
        let albumID = album.id
        let requeued = try background { deps in try DeliveryRequeue.requeue(deps.db(), id: albumID, actor: "cli:test") }
        try Subprocess.waitUntil("the re-queue waiting too") { try lockWaiters() == 2 }
        try holder.execute("ROLLBACK")

        XCTAssertEqual(try pruned()?.get().expiredPhotos, 3)
        XCTAssertEqual(try requeued()?.get(), .photosRemoved(count: 3))
        XCTAssertEqual(try waitingDeliveriesOfRemovedPhotos(), 0)
        XCTAssertEqual(try DeliveryFixtures.rows(c, jobID: job.id).first?.state, "failed")
    }

    /// A delivery claim (its row becoming `sending`, not committed yet) and the customer's
    /// deletion: the deletion waits for the claim and then refuses (409), nothing removed.
    /// (A claim that comes while a removal holds the rows passes them over: `SKIP LOCKED`.)
    func testAClaimRacingADataDeletion() throws {
        let job = try DeliveryFixtures.finishedJob(deps, telegramID: 7821, photos: 3, succeeded: 3)
        let userID = try JobFixtures.user(c, telegramID: 7821)
        let holder = try db.connect()
        try holder.execute("BEGIN")
        try holder.execute("""
            UPDATE telegram_deliveries SET state = 'sending', lease_token = gen_random_uuid(), lease_until = now() + interval '1 minute'
            WHERE job_id = $1 AND kind = 'album'
            """, [job.id])
        let deleted = try background { deps in try DataDeletion.run(deps, userID: userID, log: Logger(label: "test")) }
        try Subprocess.waitUntil("the deletion waiting for the claimed delivery") { try lockWaiters() == 1 }
        try holder.execute("COMMIT")
        guard case .failure(let error)? = deleted() else { return XCTFail("the deletion went ahead of a photo being sent") }
        XCTAssertEqual(error as? AccountError, .deliveryInFlight)
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM generated_photos WHERE media_removed_at IS NOT NULL")[0].requiredInt("n"), 0)

        // The deliverer gives the row back: the deletion then withdraws it.
        try c.execute("UPDATE telegram_deliveries SET state = 'pending', lease_token = NULL, lease_until = NULL WHERE job_id = $1", [job.id])
        XCTAssertEqual(try DataDeletion.run(deps, userID: userID, log: log).photos, 3)
        XCTAssertEqual(try DeliveryFixtures.rows(c, jobID: job.id).map(\.state), ["failed", "pending"])
        XCTAssertEqual(try waitingDeliveriesOfRemovedPhotos(), 0)
    }

    /// A reference upload and the customer's deletion meet at the avatar's lock: whichever
    /// comes second sees the other. Deletion first: the upload finds the avatar deleted and
    /// removes its object again; no selfie row or object is left.
    func testAnUploadRacingADataDeletionLeavesNoSelfie() throws {
        let ready = try GenerationFixtures.readyToGenerate(c, telegramID: 7831)
        let userID = try JobFixtures.user(c, telegramID: 7831)
        let holder = try db.connect()
        try holder.execute("BEGIN")
        try holder.execute("SELECT 1 FROM avatars WHERE id = $1 FOR UPDATE", [ready.avatarID])
        let deleted = try background { deps in try DataDeletion.run(deps, userID: userID, log: Logger(label: "test")) }
        try Subprocess.waitUntil("the deletion waiting for the avatar") { try lockWaiters() == 1 }
        let avatarID = ready.avatarID
        let uploaded = try background { deps in
            try References.add(deps, userID: userID, avatarID: avatarID,
                               [ReferenceUpload(index: 0, bytes: GenerationFixtures.jpeg(5), declaredType: "image/jpeg")])
        }
        try Subprocess.waitUntil("the upload's row waiting for the avatar") { try lockWaiters() == 2 }
        try holder.execute("ROLLBACK")

        XCTAssertEqual(try deleted()?.get().avatars, 1)
        guard case .failure(let error)? = uploaded() else { return XCTFail("the upload was stored for a deleted avatar") }
        XCTAssertEqual(error as? AvatarError, .notFound)
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM reference_photos")[0].requiredInt("n"), 0)
        XCTAssertEqual(try deps.media.list(prefix: "references/", after: nil, limit: 100).map(\.key), [], "no selfie object left")
    }

    /// A generate and the customer's deletion meet at the user's lock. Deletion first: the
    /// generate finds the avatar deleted, and its payment stays unconsumed. Generate first:
    /// the deletion finds the job queued and refuses (409), nothing removed.
    func testAGenerateRacingADataDeletion() throws {
        for deletionFirst in [true, false] {
            let telegramID: Int64 = deletionFirst ? 7841 : 7842
            // A production payment: this install is public (PUBLIC_BASE_URL https), test payments are refused.
            let ready = try GenerationFixtures.readyToGenerate(c, telegramID: telegramID, terminal: "production")
            let userID = try JobFixtures.user(c, telegramID: telegramID)
            let avatarID = ready.avatarID
            let generate: @Sendable (Dependencies) throws -> StartedJob = { deps in
                try GenerationStart(deps: deps).start(user: AuthenticatedUser(id: userID, telegramID: telegramID), avatarID: avatarID,
                                                      styleID: "pinglass", paymentBankID: nil)
            }
            let delete: @Sendable (Dependencies) throws -> DataDeletion.Counts = { deps in
                try DataDeletion.run(deps, userID: userID, log: Logger(label: "test"))
            }
            let holder = try db.connect()
            try holder.execute("BEGIN")
            try holder.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", [userID])
            let deleted: () -> Result<DataDeletion.Counts, Error>?
            let started: () -> Result<StartedJob, Error>?
            if deletionFirst {
                deleted = try background(delete)
                try Subprocess.waitUntil("the deletion waiting for the user") { try lockWaiters() == 1 }
                started = try background(generate)
            } else {
                started = try background(generate)
                try Subprocess.waitUntil("the generate waiting for the user") { try lockWaiters() == 1 }
                deleted = try background(delete)
            }
            try Subprocess.waitUntil("both waiting") { try lockWaiters() == 2 }
            try holder.execute("ROLLBACK")
            let consumed = { try self.c.query("SELECT consumed_by_job FROM payments WHERE id = $1", [ready.paymentID])[0].int("consumed_by_job") }
            if deletionFirst {
                XCTAssertEqual(try deleted()?.get().avatars, 1)
                guard case .failure(let error)? = started() else { return XCTFail("a job started on a deleted avatar") }
                XCTAssertEqual(error as? GenerationError, .avatarNotFound)
                XCTAssertNil(try consumed(), "the payment is not used up")
            } else {
                let job = try XCTUnwrap(try started()?.get())
                guard case .failure(let error)? = deleted() else { return XCTFail("the deletion went ahead of a queued generation") }
                XCTAssertEqual(error as? AccountError, .generationRunning)
                XCTAssertEqual(try consumed(), job.jobID)
                XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM reference_photos WHERE avatar_id = $1", [avatarID])[0]
                    .requiredInt("n"), 1, "its selfie stays for Kie")
            }
        }
        // The queued job is left queued (no dispatcher here): the audit's "is finished" rule
        // looks only at jobs untouched for 10 minutes.
    }
}

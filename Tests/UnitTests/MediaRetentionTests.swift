import Foundation
import PinGlassTesting
import Postgres
import XCTest
@testable import PinGlass

/// The retention pass of `pinglass prune` (`MEDIA_RETENTION_DAYS`, 90 by default): selfies
/// older than that go with their rows, generated photos of jobs that ended longer ago lose
/// their objects while their rows stay; what is younger, in use or on its way stays. The audit
/// run when the database is dropped finds every rule kept.
final class MediaRetentionTests: PipelineTestCase {
    func prune(now: Double? = nil) throws -> Pruner.Report {
        try Pruner(deps: deps, config: .init()).runOnce(now: now ?? deps.clock(), deadline: deps.clock() + 55)
    }
    func stored(_ key: String) -> Bool { (try? deps.media.get(key: key)) != nil }
    func keys(_ sql: String, _ params: [PostgresEncodable?] = []) throws -> [String] {
        try c.query(sql, params).map { $0.requiredString("storage_key") }
    }

    /// A stored selfie of `avatarID` uploaded `ageDays` ago; its key.
    func selfie(_ avatarID: Int, ageDays: Int, seed: Int) throws -> String {
        let key = MediaKeys.reference(contentType: "image/jpeg")
        try deps.media.put(key: key, bytes: GenerationFixtures.jpeg(seed), contentType: "image/jpeg")
        try c.execute("""
            INSERT INTO reference_photos (avatar_id, storage_key, content_type, byte_size, sha256, created_at)
            VALUES ($1, $2::text, 'image/jpeg', 64, sha256(convert_to($2::text, 'UTF8')), now() - make_interval(days => $3))
            """, [avatarID, key, ageDays])
        return key
    }

    /// A finished job whose photos were delivered, ended `ageDays` ago.
    func finished(_ telegramID: Int64, endedDaysAgo ageDays: Int, photos: Int = 3) throws -> JobFixtures.Job {
        let job = try DeliveryFixtures.finishedJob(deps, telegramID: telegramID, photos: photos, succeeded: photos)
        try c.execute("""
            UPDATE telegram_deliveries SET state = 'sent', sent_at = now() - make_interval(days => $2) WHERE job_id = $1
            """, [job.id, ageDays])
        try c.execute("UPDATE generation_jobs SET finished_at = now() - make_interval(days => $2) WHERE id = $1", [job.id, ageDays])
        return job
    }

    func testSelfiesAndPhotosPastTheRetentionGoTheirRowsAsTheDesignSays() throws {
        let old = try finished(9501, endedDaysAgo: 91)
        let recent = try finished(9502, endedDaysAgo: 89)
        let oldPhotos = try keys("SELECT storage_key FROM generated_photos WHERE job_id = $1", [old.id])
        let recentPhotos = try keys("SELECT storage_key FROM generated_photos WHERE job_id = $1", [recent.id])
        let avatar = try c.query("SELECT avatar_id FROM generation_jobs WHERE id = $1", [old.id])[0].requiredInt("avatar_id")
        let oldSelfie = try selfie(avatar, ageDays: 91, seed: 1)
        let youngSelfie = try selfie(avatar, ageDays: 89, seed: 2)
        // An old selfie of an avatar whose generation runs now: Kie may be fetching it.
        let running = try JobFixtures.running(deps, telegramID: 9503, photos: 2)
        let busyAvatar = try c.query("SELECT avatar_id FROM generation_jobs WHERE id = $1", [running.id])[0].requiredInt("avatar_id")
        let busySelfie = try selfie(busyAvatar, ageDays: 200, seed: 3)
        let fixtureSelfies = try c.query("SELECT count(*)::int AS n FROM reference_photos WHERE created_at > now() - interval '1 day'")[0]
            .requiredInt("n")
        let rowsBefore = try c.query("SELECT count(*)::int AS n FROM generated_photos")[0].requiredInt("n")

        let report = try prune()
        XCTAssertEqual(report.expiredReferences, 1)
        XCTAssertEqual(report.expiredPhotos, 3)
        XCTAssertEqual(report.objectsSkipped, 0)
        XCTAssertFalse(stored(oldSelfie))
        XCTAssertTrue(stored(youngSelfie))
        XCTAssertTrue(stored(busySelfie), "in use by a running generation")
        XCTAssertEqual(try keys("SELECT storage_key FROM reference_photos WHERE storage_key = ANY($1::text[])", [[oldSelfie, youngSelfie, busySelfie]]).sorted(),
                       [youngSelfie, busySelfie].sorted(), "an expired selfie's row goes with it")
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM reference_photos WHERE created_at > now() - interval '1 day'")[0]
            .requiredInt("n"), fixtureSelfies)
        XCTAssertEqual(oldPhotos.filter(stored), [], "photos of a job that ended 91 days ago are removed")
        XCTAssertEqual(recentPhotos.filter(stored), recentPhotos, "89 days: kept")
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM generated_photos")[0].requiredInt("n"), rowsBefore, "every photo row stays")
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM generated_photos WHERE media_removed_at IS NOT NULL AND job_id = $1",
                                   [old.id])[0].requiredInt("n"), 3)
        XCTAssertEqual(try JobProgress.load(c, userID: try JobFixtures.user(c, telegramID: 9501), jobID: old.id).photoCount, 0)
        XCTAssertEqual(try JobProgress.load(c, userID: try JobFixtures.user(c, telegramID: 9502), jobID: recent.id).photoCount, 3)
        XCTAssertEqual(try InvariantAudit.run(c), [])

        XCTAssertEqual(try prune(), Pruner.Report(), "a second run finds nothing")
        try JobFixtures.settle(c, running, succeeded: 2, failed: 0)
        try DeliveryFixtures.storePhotos(deps, jobID: running.id)
        _ = try JobFinish.finish(c, jobID: running.id)
        XCTAssertEqual(try prune().expiredReferences, 1, "once the generation ended, its old selfie goes too")
        XCTAssertFalse(stored(busySelfie))
    }

    /// An avatar whose every selfie passed the retention is `draft` again, in the prune's
    /// transaction: it no longer offers a generation that would be refused with
    /// NO_REFERENCE_IMAGES. One with a younger selfie left stays `ready`.
    func testAnAvatarLeftWithoutSelfiesIsADraftAgain() throws {
        let bare = try GenerationFixtures.readyToGenerate(c, telegramID: 9531)
        let kept = try GenerationFixtures.readyToGenerate(c, telegramID: 9532)
        try c.execute("UPDATE reference_photos SET created_at = now() - interval '91 days' WHERE avatar_id = ANY($1::bigint[])",
                      [[String(bare.avatarID), String(kept.avatarID)]])
        _ = try selfie(kept.avatarID, ageDays: 10, seed: 4)
        XCTAssertEqual(try prune().expiredReferences, 2)
        func avatar(_ id: Int) throws -> (status: String, refs: Int) {
            let r = try c.query("""
                SELECT status, (SELECT count(*) FROM reference_photos r WHERE r.avatar_id = a.id)::int AS n FROM avatars a WHERE id = $1
                """, [id])[0]
            return (r.requiredString("status"), r.requiredInt("n"))
        }
        XCTAssertEqual(try avatar(bare.avatarID).status, "draft")
        XCTAssertEqual(try avatar(bare.avatarID).refs, 0)
        XCTAssertEqual(try avatar(kept.avatarID).status, "ready")
        XCTAssertEqual(try avatar(kept.avatarID).refs, 1)
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM avatars a WHERE status = 'ready' AND NOT EXISTS (SELECT 1 FROM reference_photos r WHERE r.avatar_id = a.id)")[0].requiredInt("n"), 0)
    }

    /// `keptUntil` and the prune read one rule: a job's photos stay exactly as long as its
    /// answer says (with MEDIA_RETENTION_DAYS=7 here).
    func testTheRetentionIsTheConfiguredOneForThePruneAndTheAnswer() throws {
        deps = try PollFixtures.deps(db, env: ["MEDIA_RETENTION_DAYS": "7"])
        let justIn = try finished(9511, endedDaysAgo: 6)
        let justOut = try finished(9512, endedDaysAgo: 8)
        let keptUntil = try JobProgress.load(c, userID: try JobFixtures.user(c, telegramID: 9511), jobID: justIn.id,
                                             retention: MediaRetention(days: 7)).keptUntil
        XCTAssertEqual(keptUntil, try c.query("""
            SELECT to_char((finished_at + interval '7 days') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS t
            FROM generation_jobs WHERE id = $1
            """, [justIn.id])[0].string("t"))
        XCTAssertEqual(try prune().expiredPhotos, 3)
        XCTAssertEqual(try c.query("SELECT job_id FROM generated_photos WHERE media_removed_at IS NOT NULL GROUP BY job_id").map { $0.requiredInt("job_id") },
                       [justOut.id])
    }

    /// A batch whose photos are skipped because their delivery became active while the pass
    /// waited for them does not end the pass: the next batch (which leaves them out) still
    /// removes the other expired photos; the skipped ones stay for a later run.
    func testPhotosSkippedInABatchDoNotEndThePass() throws {
        let busy = try finished(9531, endedDaysAgo: 100)
        // 100 photos: the first batch (100, the smallest) is the busy job's 3 and 97 of these.
        let other = try finished(9532, endedDaysAgo: 100, photos: 100)
        let busyPhotos = try c.query("SELECT id FROM generated_photos WHERE job_id = $1 ORDER BY id", [busy.id]).map { $0.requiredInt("id") }
        XCTAssertEqual(busyPhotos.count, 3)
        XCTAssertLessThan(busyPhotos.last!, try c.query("SELECT min(id)::int AS n FROM generated_photos WHERE job_id = $1", [other.id])[0]
            .requiredInt("n"), "the busy job's photos come first")
        var config = Pruner.Config()
        config.batchSize = 100
        nonisolated(unsafe) let pruner = try Pruner(deps: deps, config: config)
        nonisolated(unsafe) let clock = deps.clock
        let holder = try db.connect()
        try holder.execute("BEGIN")
        try holder.execute("SELECT 1 FROM generated_photos WHERE id = $1 FOR UPDATE", [busyPhotos[0]])
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var outcome: Result<Pruner.Report, Error>?
        DispatchQueue.global().async {
            outcome = Result { try pruner.runOnce(now: clock(), deadline: clock() + 55) }
            done.signal()
        }
        try Subprocess.waitUntil("the prune waiting for the held photo") {
            try c.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")[0]
                .requiredInt("n") == 1
        }
        // Meanwhile an operator re-queues the busy job's album: its delivery is pending again.
        try holder.execute("UPDATE telegram_deliveries SET state = 'pending', sent_at = NULL WHERE job_id = $1 AND kind = 'album'", [busy.id])
        try holder.execute("COMMIT")
        XCTAssertEqual(done.wait(timeout: .now() + 20), .success)
        let report = try XCTUnwrap(try outcome?.get())
        XCTAssertEqual(report.expiredPhotos, 100, "the other job's last 3 photos went in the next batch")
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM generated_photos WHERE job_id = $1 AND media_removed_at IS NULL",
                                   [other.id])[0].requiredInt("n"), 0)
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM generated_photos WHERE job_id = $1 AND media_removed_at IS NULL",
                                   [busy.id])[0].requiredInt("n"), 3, "the photos of the re-queued delivery stay")
    }

    /// A photo whose delivery is still waiting is left for a later run; an object that survived
    /// its photo's removal (a failed delete) is deleted by the orphan pass.
    func testAWaitingDeliveryKeepsItsPhotosAndASurvivingObjectGoesLater() throws {
        let job = try finished(9521, endedDaysAgo: 100)
        try c.execute("UPDATE telegram_deliveries SET state = 'pending', sent_at = NULL WHERE job_id = $1 AND kind = 'album'", [job.id])
        XCTAssertEqual(try prune().expiredPhotos, 0)
        try c.execute("UPDATE telegram_deliveries SET state = 'sent', sent_at = now() WHERE job_id = $1", [job.id])

        // As if a delete had failed: the rows say removed, the objects are still there.
        let photos = try keys("UPDATE generated_photos SET media_removed_at = now() WHERE job_id = $1 RETURNING storage_key", [job.id])
        XCTAssertEqual(photos.filter(stored).count, 3)
        XCTAssertEqual(try prune().orphanedObjects, 0, "younger than the orphan grace")
        let report = try prune(now: deps.clock() + Double(PrunerDefaults.orphanGraceSeconds) + 60)
        XCTAssertEqual(report.orphanedObjects, 3, "a row marked removed names no object")
        XCTAssertEqual(photos.filter(stored), [])
    }
}

import Postgres

/// The retention pass of `pinglass prune`: the customer's faces are not kept past
/// `MEDIA_RETENTION_DAYS` (`MediaRetention`, docs/architecture.md#media-retention).
///
/// - Selfies older than that go, row and object, except those of an avatar whose generation
///   is queued or running (Kie fetches them by link): each batch locks its avatars
///   (`SKIP LOCKED`, as `GenerationStart` locks the avatar it starts a job for) and looks for
///   a running job again once it holds them, so a job starting this moment keeps its selfies.
///   An avatar left without any is `draft` again (`Avatars.draftIfNoReferences`).
/// - Generated photos of jobs that ended longer ago than that lose their object and are
///   marked `media_removed_at`; their rows stay (payments, refunds and `pinglass audit` count
///   a job's photos). A photo whose delivery is still waiting or being sent is left for a
///   later run (a job that ended that long ago has none, unless an operator re-queued one),
///   decided with the deliveries locked (`MediaRemoval`): a re-queue or a claim racing the
///   pass either comes first and keeps the photo, or waits and finds it removed.
///
/// Rows change first, objects go after the commit; an object that cannot be deleted is
/// counted in `objectsSkipped`, and the orphan pass deletes it later (no row, or a row marked
/// removed, names it).
extension Pruner {
    var retention: MediaRetention { MediaRetention(days: deps.config.mediaRetentionDays) }

    func pruneExpiredMedia(_ db: Connection, deadline: Double, _ report: inout Report) throws {
        while true {
            guard deps.clock() < deadline else { report.stoppedAtDeadline = true; return }
            let (avatars, keys) = try expiredReferences(db)
            report.expiredReferences += keys.count
            report.objectsSkipped += MediaRemoval.deleteObjects(deps.media, keys, log: log)
            if avatars < config.batchSize { break }
        }
        while true {
            guard deps.clock() < deadline else { report.stoppedAtDeadline = true; return }
            // The batch's end is what it looked at, not what it removed: photos skipped because
            // their delivery became active meanwhile would otherwise end the pass early. The
            // next batch's selection leaves those out, so they are not looked at again.
            let (keys, lookedAt) = try db.withTransaction { tx in
                try MediaRemoval.removeGeneratedBatch(tx, photos: """
                    SELECT g.id FROM generated_photos g JOIN generation_jobs j ON j.id = g.job_id
                    WHERE g.media_removed_at IS NULL AND \(retention.photosExpiredSQL(job: "j"))
                      AND NOT EXISTS (SELECT 1 FROM telegram_deliveries d
                                      WHERE d.id = g.delivery_id AND d.state IN ('pending', 'sending'))
                    ORDER BY g.id LIMIT $1
                    """, [config.batchSize], reason: "withdrawn: the photo passed MEDIA_RETENTION_DAYS", inFlight: .skip)
            }
            report.expiredPhotos += keys.count
            report.objectsSkipped += MediaRemoval.deleteObjects(deps.media, keys, log: log)
            if lookedAt < config.batchSize { break }
        }
    }

    /// One batch of expired selfies: how many avatars it locked, and the keys of the rows it
    /// deleted.
    func expiredReferences(_ db: Connection) throws -> (avatars: Int, keys: [String]) {
        let expired = retention.referenceExpiredSQL(reference: "r")
        let active = "EXISTS (SELECT 1 FROM generation_jobs j WHERE j.avatar_id = a.id AND j.status IN ('queued', 'processing'))"
        return try db.withTransaction { tx in
            let avatars = try tx.query("""
                SELECT a.id FROM avatars a
                WHERE EXISTS (SELECT 1 FROM reference_photos r WHERE r.avatar_id = a.id AND \(expired)) AND NOT \(active)
                ORDER BY a.id LIMIT $1
                FOR UPDATE OF a SKIP LOCKED
                """, [config.batchSize]).map { String($0.requiredInt("id")) }
            guard !avatars.isEmpty else { return (0, []) }
            // Read again now that the avatars are ours: a job committed while we waited is seen.
            let keys = try tx.query("""
                DELETE FROM reference_photos r USING avatars a
                WHERE a.id = r.avatar_id AND a.id = ANY($1::bigint[]) AND \(expired) AND NOT \(active)
                RETURNING r.storage_key
                """, [avatars]).map { $0.requiredString("storage_key") }
            // An avatar left without selfies is `draft` again, in this transaction.
            try Avatars.draftIfNoReferences(tx, avatarIDs: avatars.compactMap { Int($0) })
            return (avatars.count, keys)
        }
    }
}

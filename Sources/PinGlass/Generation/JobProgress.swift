import Postgres

/// What `GET /api/generate?job_id=` and `GET /api/jobs/{id}` show: this job's progress, its
/// photos (signed links) and its refund, for the job's owner only. Only released photos are
/// shown (`DeliveryBatches`): a photo stored but not yet in a delivery batch is not out yet,
/// and a failed job's withheld photos never are (their price is refunded, `RefundRule`).
public struct JobProgress: Equatable, Sendable {
    public let jobID: Int
    public let avatarID: Int
    public let status: String
    public let completed: Int
    public let failed: Int
    public let total: Int
    public let photos: [(id: Int, storageKey: String)]
    public let refund: (amount: Int, status: String)?
    public let createdAt: String
    public let updatedAt: String

    public static func == (a: JobProgress, b: JobProgress) -> Bool {
        a.jobID == b.jobID && a.status == b.status && a.completed == b.completed && a.failed == b.failed
            && a.photos.map(\.id) == b.photos.map(\.id)
    }

    public var percentage: Int { total == 0 ? 0 : (completed + failed) * 100 / total }

    static let utc = #"'YYYY-MM-DD"T"HH24:MI:SS"Z"'"#

    /// The job if it is the user's; `GenerationError.jobNotFound` otherwise.
    public static func load(_ db: some Queryable, userID: Int, jobID: Int) throws -> JobProgress {
        guard let j = try db.query("""
            SELECT j.id, j.avatar_id, j.status, j.total_photos,
                   (SELECT count(*) FROM generation_tasks t WHERE t.job_id = j.id AND t.state = 'succeeded')::int AS done,
                   (SELECT count(*) FROM generation_tasks t WHERE t.job_id = j.id AND t.state = 'failed')::int AS failed,
                   to_char(j.created_at AT TIME ZONE 'UTC', \(utc)) AS created,
                   to_char(j.updated_at AT TIME ZONE 'UTC', \(utc)) AS updated,
                   r.amount_kopecks AS refund_amount, r.state AS refund_state
            FROM generation_jobs j LEFT JOIN refunds r ON r.job_id = j.id
            WHERE j.id = $1 AND j.user_id = $2
            """, [jobID, userID], retry: .idempotent).first else { throw GenerationError.jobNotFound }
        let photos = try db.query("""
            SELECT id, storage_key FROM generated_photos WHERE job_id = $1 AND released_at IS NOT NULL ORDER BY task_id
            """,
                                  [jobID], retry: .idempotent).map { (id: $0.requiredInt("id"), storageKey: $0.requiredString("storage_key")) }
        return JobProgress(jobID: j.requiredInt("id"), avatarID: j.requiredInt("avatar_id"), status: j.requiredString("status"),
                           completed: j.requiredInt("done"), failed: j.requiredInt("failed"), total: j.requiredInt("total_photos"),
                           photos: photos,
                           refund: j.int("refund_amount").map { ($0, j.requiredString("refund_state")) },
                           createdAt: j.requiredString("created"), updatedAt: j.requiredString("updated"))
    }
}

import Postgres
import JSON

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
        guard let j = try db.query(sql(job: "$1", user: "$2"), [jobID, userID], retry: .idempotent).first else {
            throw GenerationError.jobNotFound
        }
        return try from(j)
    }

    /// One statement for the job, its counts, its refund and its released photos (as a JSON
    /// array of `[id, storage_key]`; a failed job's withheld photos are never listed), with the
    /// job and the user as SQL expressions, so the progress endpoint can run it in the
    /// statement that finds the user.
    package static func sql(job: String, user: String) -> String {
        """
        SELECT j.id AS job_id, j.avatar_id, j.status, j.total_photos,
               (SELECT count(*) FROM generation_tasks t WHERE t.job_id = j.id AND t.state = 'succeeded')::int AS done,
               (SELECT count(*) FROM generation_tasks t WHERE t.job_id = j.id AND t.state = 'failed')::int AS failed,
               to_char(j.created_at AT TIME ZONE 'UTC', \(utc)) AS created,
               to_char(j.updated_at AT TIME ZONE 'UTC', \(utc)) AS updated,
               r.amount_kopecks AS refund_amount, r.state AS refund_state,
               (SELECT COALESCE(json_agg(json_build_array(g.id, g.storage_key) ORDER BY g.task_id), '[]')::text
                FROM generated_photos g WHERE g.job_id = j.id AND g.released_at IS NOT NULL) AS photos
        FROM generation_jobs j LEFT JOIN refunds r ON r.job_id = j.id
        WHERE j.id = \(job) AND j.user_id = \(user)
        """
    }

    package static func from(_ j: Row) throws -> JobProgress {
        let photos = try JSON.parse(j.requiredString("photos")).arrayValue ?? []
        return JobProgress(jobID: j.requiredInt("job_id"), avatarID: j.requiredInt("avatar_id"), status: j.requiredString("status"),
                  completed: j.requiredInt("done"), failed: j.requiredInt("failed"), total: j.requiredInt("total_photos"),
                  photos: photos.compactMap { p in
                      guard let pair = p.arrayValue, pair.count == 2, let id = pair[0].intValue, let key = pair[1].stringValue else { return nil }
                      return (id: id, storageKey: key)
                  },
                  refund: j.int("refund_amount").map { ($0, j.requiredString("refund_state")) },
                  createdAt: j.requiredString("created"), updatedAt: j.requiredString("updated"))
    }
}

import Postgres
import JSON

/// What `GET /api/generate?job_id=` and `GET /api/jobs/{id}` show: this job's progress, its
/// photos (signed links), its refund and until when its photos are kept, for the job's owner
/// only; `GET /api/jobs` lists the same without the photos. Only released photos are shown
/// (`DeliveryBatches`): a photo stored but not yet in a delivery batch is not out yet, and a
/// failed job's withheld photos never are (their price is refunded, `RefundRule`). A photo
/// whose object was removed (`MediaRemoval`) is not shown either.
public struct JobProgress: Equatable, Sendable {
    /// The refund of a partial or failed job, as the customer sees it.
    public struct Refund: Equatable, Sendable {
        public let amount: Int
        public let status: String
        /// When the refund was decided (its row written), ISO 8601 UTC.
        public let requestedAt: String
        /// When the bank confirmed it, nil until then (and for a refund that failed).
        public let refundedAt: String?
    }

    public let jobID: Int
    public let avatarID: Int
    public let status: String
    public let completed: Int
    public let failed: Int
    public let total: Int
    /// The shown photos; nil in a list (`listSQL`), where only `photoCount` is read.
    public let photos: [(id: Int, storageKey: String)]?
    /// How many photos are shown.
    public let photoCount: Int
    public let refund: Refund?
    /// When the job's photos are removed (`MediaRetention`), nil while it runs.
    public let keptUntil: String?
    public let createdAt: String
    public let updatedAt: String

    public static func == (a: JobProgress, b: JobProgress) -> Bool {
        a.jobID == b.jobID && a.status == b.status && a.completed == b.completed && a.failed == b.failed
            && a.photos?.map(\.id) == b.photos?.map(\.id) && a.photoCount == b.photoCount && a.refund == b.refund
            && a.keptUntil == b.keptUntil
    }

    public var percentage: Int { total == 0 ? 0 : (completed + failed) * 100 / total }

    /// The most jobs `GET /api/jobs` lists.
    public static let listLimit = 50

    static let utc = #"'YYYY-MM-DD"T"HH24:MI:SS"Z"'"#

    /// The job if it is the user's; `GenerationError.jobNotFound` otherwise.
    public static func load(_ db: some Queryable, userID: Int, jobID: Int, retention: MediaRetention = MediaRetention()) throws -> JobProgress {
        guard let j = try db.query(sql(job: "$1", user: "$2", retention: retention), [jobID, userID], retry: .idempotent).first else {
            throw GenerationError.jobNotFound
        }
        return try from(j)
    }

    /// The photos shown of the job `g` rows belong to.
    static let shown = "g.released_at IS NOT NULL AND g.media_removed_at IS NULL"

    /// The job's own columns, its counts and its refund (joined as `r`).
    static func columns(_ retention: MediaRetention) -> String {
        """
        j.id AS job_id, j.avatar_id, j.status, j.total_photos,
        (SELECT count(*) FROM generation_tasks t WHERE t.job_id = j.id AND t.state = 'succeeded')::int AS done,
        (SELECT count(*) FROM generation_tasks t WHERE t.job_id = j.id AND t.state = 'failed')::int AS failed,
        to_char(j.created_at AT TIME ZONE 'UTC', \(utc)) AS created,
        to_char(j.updated_at AT TIME ZONE 'UTC', \(utc)) AS updated,
        to_char(\(retention.keptUntilSQL(job: "j")) AT TIME ZONE 'UTC', \(utc)) AS kept_until,
        r.amount_kopecks AS refund_amount, r.state AS refund_state,
        to_char(r.created_at AT TIME ZONE 'UTC', \(utc)) AS refund_requested,
        CASE WHEN r.state = 'succeeded' THEN to_char(r.finished_at AT TIME ZONE 'UTC', \(utc)) END AS refund_done
        """
    }

    /// One statement for the job, its counts, its refund and its shown photos (as a JSON
    /// array of `[id, storage_key]`), with the job and the user as SQL expressions, so the
    /// progress endpoint can run it in the statement that finds the user.
    package static func sql(job: String, user: String, retention: MediaRetention) -> String {
        """
        SELECT \(columns(retention)),
               (SELECT COALESCE(json_agg(json_build_array(g.id, g.storage_key) ORDER BY g.task_id), '[]')::text
                FROM generated_photos g WHERE g.job_id = j.id AND \(shown)) AS photos
        FROM generation_jobs j LEFT JOIN refunds r ON r.job_id = j.id
        WHERE j.id = \(job) AND j.user_id = \(user)
        """
    }

    /// The user's newest jobs (at most `listLimit`), newest first when ordered by
    /// `listOrder`, with their photo counts instead of their photos.
    package static func listSQL(user: String, retention: MediaRetention) -> String {
        """
        SELECT \(columns(retention)),
               (SELECT count(*) FROM generated_photos g WHERE g.job_id = j.id AND \(shown))::int AS photo_count,
               j.created_at AS sort_at
        FROM generation_jobs j LEFT JOIN refunds r ON r.job_id = j.id
        WHERE j.user_id = \(user)
        ORDER BY j.created_at DESC, j.id DESC LIMIT \(listLimit)
        """
    }

    /// The order of `listSQL`'s rows under `alias`.
    package static func listOrder(_ alias: String) -> String { "\(alias).sort_at DESC, \(alias).job_id DESC" }

    /// A row of `sql` (with its photos), or of `listSQL` (`listed`: its photo count).
    package static func from(_ j: Row, listed: Bool = false) throws -> JobProgress {
        var photos: [(id: Int, storageKey: String)]?
        if !listed {
            photos = (try JSON.parse(j.requiredString("photos")).arrayValue ?? []).compactMap { p in
                guard let pair = p.arrayValue, pair.count == 2, let id = pair[0].intValue, let key = pair[1].stringValue else { return nil }
                return (id: id, storageKey: key)
            }
        }
        return JobProgress(jobID: j.requiredInt("job_id"), avatarID: j.requiredInt("avatar_id"), status: j.requiredString("status"),
                  completed: j.requiredInt("done"), failed: j.requiredInt("failed"), total: j.requiredInt("total_photos"),
                  photos: photos, photoCount: photos?.count ?? j.requiredInt("photo_count"),
                  refund: j.int("refund_amount").map {
                      Refund(amount: $0, status: j.requiredString("refund_state"), requestedAt: j.requiredString("refund_requested"),
                             refundedAt: j.string("refund_done"))
                  },
                  keptUntil: j.string("kept_until"), createdAt: j.requiredString("created"), updatedAt: j.requiredString("updated"))
    }
}

import Postgres
import JSON

/// The ONE rule that turns a job's stored photos into Telegram delivery rows: batches of at
/// most `albumSize` photos in prompt order, an `album` for 2–10 photos and a `photo` for one,
/// numbered `batch_no` 0, 1, … per job, then one final `message` row. A photo that joins a
/// row is released to the customer (`released_at`): only released photos are ever sent or
/// shown, and a job that ends `failed` releases nothing more (`RefundRule`).
///
/// Delivery is progressive, because Telegram allows about one message per second per chat
/// and an album of N counts as N: the 23 photos of a large job need 22 s of sending, so they
/// cannot all wait for the job's end. While a job runs, poll-kie makes the next batch as soon
/// as enough stored photos wait for it, in the transaction that stores the photo
/// (`addReadyBatches`). The short batch goes FIRST (`batchSize`: 3 + 10 + 10 for 23 photos):
/// the chat is busy N seconds after an album of N, so a short batch sent early costs the
/// chat's pace almost nothing while the rest is generating, and the last full album is not
/// held back behind it. The finish makes rows for whatever is left (unless the job failed)
/// and the final message (`addRemainder`). Both take only photos whose `delivery_id` is
/// NULL, under the job's row lock, and mark them with the row they join (migration 0008: a
/// photo can only join a row of its own job), so each photo ends in at most one row
/// (docs/reliability.md#R4: one delivery row per job and batch, `(job_id, batch_no)` unique).
///
/// ```swift
/// // poll-kie, in the transaction that stores a photo:
/// if try DeliveryBatches.addReadyBatches(tx, jobID: job) > 0 { try tx.execute("SELECT pg_notify('deliver', $1)", [String(job)]) }
/// ```
public enum DeliveryBatches {
    /// Photos per Telegram album (`sendMediaGroup` takes 2–10 items).
    public static let albumSize = 10
    /// How long the delivery worker keeps trying a row (`give_up_at`).
    public static let giveUpSeconds = 24 * 3600

    /// Makes the batches of a running job that have all their photos stored (`batchSize`),
    /// from its photos in no delivery row yet. Locks the job row (`jobLock`: serialising
    /// pollers storing photos of the same job, and the finish); a job that is not running
    /// (finished, canceled) gets nothing here. Returns the rows made.
    @discardableResult
    public static func addReadyBatches(_ tx: Transaction, jobID: Int) throws -> Int {
        guard let job = try tx.query("""
            SELECT u.telegram_user_id, j.total_photos FROM generation_jobs j JOIN users u ON u.id = j.user_id
            WHERE j.id = $1 AND j.status IN ('queued', 'processing')
            \(jobLock)
            """, [jobID]).first else { return 0 }
        return try addBatches(tx, jobID: jobID, chatID: job.requiredInt("telegram_user_id"),
                              plan: .whileRunning(total: job.requiredInt("total_photos")))
    }

    /// The size of the next batch of a running job of `total` photos when `released` of them
    /// are in rows already: the remainder of `total` by `albumSize` first, then full albums
    /// (23 photos: 3, 10, 10; 20: 10, 10; 7: 7).
    public static func batchSize(total: Int, released: Int) -> Int {
        let first = total % albumSize == 0 ? albumSize : total % albumSize
        return released < first ? first - released : albumSize - (released - first) % albumSize
    }

    /// The lock on a job row (alias `j`) that serialises whoever batches its photos or
    /// finishes it. `FOR NO KEY UPDATE`, not `FOR UPDATE`: a poller inserting a photo (or a
    /// finish inserting a delivery or refund row) holds a key-share lock on the job through
    /// the foreign key before it asks for this one, and `FOR UPDATE` conflicts with key-share
    /// locks, so two pollers storing photos of one job waited for each other (40P01). This
    /// mode conflicts with itself and with writes of the job row, not with key-share locks.
    static let jobLock = "FOR NO KEY UPDATE OF j"

    /// At the job's finish (the caller holds the job's lock): rows for the photos still in no
    /// row when `releasing` (a job at or above the refund rule's threshold; a failed job's
    /// photos in no row stay withheld), cut short batch first then albums of `albumSize`
    /// (as while the job runs), then the final
    /// message with `message` as payload. Returns the rows made.
    static func addRemainder(_ tx: Transaction, jobID: Int, chatID: Int, releasing: Bool, message: JSON) throws -> Int {
        let made = releasing ? try addBatches(tx, jobID: jobID, chatID: chatID, plan: .atTheEnd) : 0
        _ = try insert(tx, jobID: jobID, chatID: chatID, kind: "message", batchNo: nextBatchNo(tx, jobID: jobID), payload: message)
        return made + 1
    }

    /// How waiting photos are cut.
    enum Plan {
        /// Only batches whose every photo is stored, sized by `batchSize`.
        case whileRunning(total: Int)
        /// Everything waiting: the short batch first (the remainder by `albumSize`), then
        /// albums of `albumSize`.
        case atTheEnd
    }

    /// The photos of the job in no row yet, in prompt order, cut into batches by `plan`.
    /// Each batch is inserted and its photos marked and released, guarded by `delivery_id IS
    /// NULL` (a count that differs aborts the transaction).
    static func addBatches(_ tx: Transaction, jobID: Int, chatID: Int, plan: Plan) throws -> Int {
        let waiting = try tx.query("""
            SELECT p.id, p.storage_key FROM generated_photos p JOIN generation_tasks t ON t.id = p.task_id
            WHERE p.job_id = $1 AND p.delivery_id IS NULL
            ORDER BY t.prompt_index, p.id
            """, [jobID]).map { (id: $0.requiredInt("id"), storageKey: $0.requiredString("storage_key")) }
        var batches: [ArraySlice<(id: Int, storageKey: String)>] = []
        switch plan {
        case .atTheEnd:
            // Short first here too (11 waiting: a photo, then an album of ten).
            let short = waiting.count % albumSize
            if short > 0 { batches.append(waiting[0..<short]) }
            batches += stride(from: short, to: waiting.count, by: albumSize).map { waiting[$0..<($0 + albumSize)] }
        case .whileRunning(let total):
            var released = try tx.query("""
                SELECT count(*)::int AS n FROM generated_photos WHERE job_id = $1 AND released_at IS NOT NULL
                """, [jobID])[0].requiredInt("n")
            var start = 0
            while true {
                let size = batchSize(total: total, released: released)
                guard waiting.count - start >= size else { break }
                batches.append(waiting[start..<(start + size)])
                start += size
                released += size
            }
        }
        guard !batches.isEmpty else { return 0 }
        var batchNo = try nextBatchNo(tx, jobID: jobID)
        for batch in batches {
            let payload: JSON = ["jobId": .int(jobID),
                                 "photos": .array(batch.map { ["id": .int($0.id), "storageKey": .string($0.storageKey)] })]
            let id = try insert(tx, jobID: jobID, chatID: chatID, kind: batch.count == 1 ? "photo" : "album", batchNo: batchNo,
                                payload: payload)
            // The statement's own time, not the transaction's start: a finish that locks the
            // job after this commits stamps a later finished_at, even when its transaction
            // began before this one (the audit compares the two).
            let marked = try tx.execute("""
                UPDATE generated_photos SET delivery_id = $1, released_at = clock_timestamp()
                WHERE id = ANY($2::bigint[]) AND job_id = $3 AND delivery_id IS NULL
                """, [id, batch.map { String($0.id) }, jobID])
            guard marked == batch.count else { throw BatchConflict(jobID: jobID) }
            batchNo += 1
        }
        return batches.count
    }

    static func nextBatchNo(_ tx: Transaction, jobID: Int) throws -> Int {
        try tx.query("SELECT coalesce(max(batch_no) + 1, 0)::int AS n FROM telegram_deliveries WHERE job_id = $1", [jobID])[0]
            .requiredInt("n")
    }

    /// A plain INSERT: under the job's lock `(job_id, batch_no)` is free, and a conflict would
    /// mean a bug, so it aborts the transaction rather than skip a batch.
    static func insert(_ tx: Transaction, jobID: Int, chatID: Int, kind: String, batchNo: Int, payload: JSON) throws -> Int {
        try tx.query("""
            INSERT INTO telegram_deliveries (job_id, chat_id, kind, batch_no, payload, give_up_at)
            VALUES ($1, $2, $3, $4, $5::jsonb, now() + make_interval(secs => $6))
            RETURNING id
            """, [jobID, chatID, kind, batchNo, payload.serialized, giveUpSeconds])[0].requiredInt("id")
    }

    /// Photos changed under the job's lock: never expected; the transaction is rolled back.
    struct BatchConflict: Error, CustomStringConvertible {
        let jobID: Int
        var description: String { "photos of job \(jobID) joined another delivery row meanwhile" }
    }
}

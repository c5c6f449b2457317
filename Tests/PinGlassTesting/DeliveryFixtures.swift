import Foundation
import PinGlass
import Postgres
import Platform

/// Finished jobs whose delivery rows wait for `pinglass deliver`, with their photos stored,
/// and the helpers the deliver tests share.
///
/// ```swift
/// let job = try DeliveryFixtures.finishedJob(deps, telegramID: 7001, photos: 23, succeeded: 18)
/// let rows = try DeliveryFixtures.rows(c, jobID: job.id)      // album, album, message
/// ```
public enum DeliveryFixtures {
    /// Dependencies for a deliverer of `database` with `telegram` as Telegram, the admin chat
    /// `adminChat` and results stored in a fresh folder (or `storage`).
    public static func deps(_ database: TestDatabase, telegram: FakeTelegram, env: [String: String] = [:]) throws -> Dependencies {
        // Media links on loopback (Telegram could not fetch them: photos are uploaded) unless
        // `env` names a public PUBLIC_MEDIA_URL.
        var vars = ["ADMIN_TELEGRAM_CHAT_ID": String(adminChat), "PUBLIC_BASE_URL": "https://pinglass.example",
                    "PUBLIC_MEDIA_URL": "http://127.0.0.1/media"]
        vars.merge(env) { $1 }
        let deps = try PollFixtures.deps(database, env: vars)
        deps.telegram = telegram
        return deps
    }

    public static let adminChat: Int64 = -100_777

    /// A job of `photos` tasks whose first `succeeded` made a photo (stored, bytes
    /// `GenerationFixtures.jpeg(task id)`) and the rest failed, finished by `JobFinish`.
    @discardableResult
    public static func finishedJob(_ deps: Dependencies, telegramID: Int64, photos: Int, succeeded: Int,
                                   languageCode: String? = nil) throws -> JobFixtures.Job {
        let c = try deps.db()
        let job = try JobFixtures.running(deps, telegramID: telegramID, photos: photos)
        try JobFixtures.settle(c, job, succeeded: succeeded, failed: photos - succeeded)
        try storePhotos(deps, jobID: job.id)
        try c.execute("UPDATE users SET language_code = $2 WHERE telegram_user_id = $1", [telegramID, languageCode])
        _ = try JobFinish.finish(c, jobID: job.id)
        return job
    }

    /// Puts the bytes of every photo row of the job in the media store.
    public static func storePhotos(_ deps: Dependencies, jobID: Int) throws {
        for p in try deps.db().query("SELECT task_id, storage_key FROM generated_photos WHERE job_id = $1", [jobID]) {
            try deps.media.put(key: p.requiredString("storage_key"), bytes: GenerationFixtures.jpeg(p.requiredInt("task_id")),
                               contentType: "image/jpeg")
        }
    }

    /// A delivery row as the tests look at it.
    public struct DeliveryRow {
        public let id: Int
        public let kind: String
        public let batchNo: Int
        public let state: String
        public let chatID: Int64
        public let attempts: Int
        public let messageIDs: [Int]
        public let lastError: String?
        public let photoIDs: [Int]
    }

    public static func rows(_ c: Connection, jobID: Int? = nil, where condition: String = "true") throws -> [DeliveryRow] {
        try c.query("""
            SELECT id, kind, batch_no, state, chat_id, attempts, array_to_string(telegram_message_ids, ',') AS ids, last_error,
                   (SELECT string_agg(e ->> 'id', ',') FROM jsonb_array_elements(CASE WHEN jsonb_typeof(payload -> 'photos') = 'array'
                                                                   THEN payload -> 'photos' ELSE '[]' END) e) AS photos
            FROM telegram_deliveries d WHERE ($1::bigint IS NULL OR job_id = $1) AND \(condition) ORDER BY job_id, batch_no, id
            """, [jobID]).map {
            DeliveryRow(id: $0.requiredInt("id"), kind: $0.requiredString("kind"), batchNo: $0.requiredInt("batch_no"),
                        state: $0.requiredString("state"), chatID: Int64($0.requiredInt("chat_id")), attempts: $0.requiredInt("attempts"),
                        messageIDs: ($0.string("ids") ?? "").split(separator: ",").compactMap { Int($0) },
                        lastError: $0.string("last_error"),
                        photoIDs: ($0.string("photos") ?? "").split(separator: ",").compactMap { Int($0) })
        }
    }

    /// Everything waiting is due now: backoffs, 429 waits, the chats' pace and a pause of
    /// the global budget are over (the database's clock cannot be moved, so the rows are).
    public static func makeDue(_ c: Connection) throws {
        try c.execute("UPDATE telegram_deliveries SET run_at = now() WHERE state = 'pending'")
        try c.execute("UPDATE telegram_chat_pacing SET next_send_at = now()")
        try c.execute("DELETE FROM rate_events WHERE name = $1", [DelivererDefaults.budgetName])
    }

    /// Runs passes until no row waits, waiting between them as the command's loop does (until
    /// the next row comes due); gives up after `timeout` seconds. The wait is real: the pace
    /// is kept in PostgreSQL's clock (`run_at`, a chat's next send, the budget's window, all
    /// compared with `now()`), which a test clock cannot move.
    @discardableResult
    public static func drain(_ deliverer: Deliverer, timeout: Double = 30) throws -> [Deliverer.Report] {
        var reports: [Deliverer.Report] = []
        let end = Date().addingTimeInterval(timeout)
        while true {
            let now = System.now()
            reports.append(try deliverer.runOnce(now: now, deadline: now + 55))
            guard let wait = try deliverer.secondsUntilDue() else { return reports }
            guard Date() < end else { throw Subprocess.WaitTimeout(what: "deliveries to drain") }
            Thread.sleep(forTimeInterval: min(max(wait, 0.01), 1))
        }
    }
}

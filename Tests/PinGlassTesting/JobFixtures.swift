import Foundation
import PinGlass
import Postgres
import LibCrypto
import ProviderWire

/// The one builder of the rows a test starts from: users, payments, avatars, jobs, their
/// tasks and photos. Every other fixture (`Fixtures.pendingPayment`,
/// `GenerationFixtures.readyToGenerate`, `DeliveryFixtures.finishedJob`) writes through it, so
/// a schema change is made here once.
///
/// ```swift
/// let job = try JobFixtures.running(deps, telegramID: 7001, photos: 7)      // tasks at Kie
/// let never = try JobFixtures.queued(deps, telegramID: 7002, photos: 3, deadlineIn: -60)
/// try JobFixtures.settle(c, job, succeeded: 5, failed: 2)
/// ```
public enum JobFixtures {
    public struct Job {
        public let id: Int
        public let paymentID: Int
        public let amountKopecks: Int
        /// Task row ids and their Kie task ids (empty before submission), by prompt index.
        public let tasks: [(id: Int, kieID: String)]
    }

    /// The user of `telegramID` (created on first use, as authentication does); its row id.
    public static func user(_ db: Connection, telegramID: Int64) throws -> Int {
        try Users.resolve(db, TelegramUser(id: telegramID, username: nil, firstName: "T", lastName: nil, languageCode: nil))
    }

    /// A payment row of the user of `telegramID` in `status` (`pending` as Init leaves it, with
    /// its payment link; `paidNow` sets `paid_at`). Its row id, bank id and order id.
    public static func payment(_ db: Connection, telegramID: Int64, status: String, amount: Int = 49900, tier: String = "starter",
                               photos: Int = 7, mode: String = "test", terminalKey: String = "k", refunded: Int = 0,
                               paymentURL: String? = "http://sim/pay", paidNow: Bool = false) throws -> (id: Int, bankID: String, orderID: String) {
        let userID = try user(db, telegramID: telegramID)
        let bankID = String(Int.random(in: 100_000_000...999_999_999))
        let orderID = "pg" + Crypto.hex(Crypto.randomBytes(8))
        let id = try db.query("""
            INSERT INTO payments (user_id, order_id, terminal, terminal_key, tbank_payment_id, payment_url, tier, photo_count,
                                  amount_kopecks, status, refunded_kopecks, paid_at, redirect_due_at)
            VALUES ($1, $2, $3, $4, $5, $11, $6, $7, $8, $9, $10, CASE WHEN $12 THEN now() END, now() + interval '1 day')
            RETURNING id
            """, [userID, orderID, mode, terminalKey, bankID, tier, photos, amount, status, refunded, paymentURL, paidNow],
            retry: .never)[0].requiredInt("id")
        return (id, bankID, orderID)
    }

    /// A user with an avatar holding one reference photo (row only) and a succeeded payment
    /// of `photos` photos; (avatar id, payment row id, bank payment id).
    @discardableResult
    public static func readyToGenerate(_ db: Connection, telegramID: Int64, tier: String = "starter", photos: Int = 7,
                                       terminal: String = "test") throws -> (avatarID: Int, paymentID: Int, bankID: String) {
        let userID = try user(db, telegramID: telegramID)
        let avatarID = try db.query("INSERT INTO avatars (user_id, name, status) VALUES ($1, 'me', 'ready') RETURNING id",
                                    [userID], retry: .never)[0].requiredInt("id")
        try db.execute("""
            INSERT INTO reference_photos (avatar_id, storage_key, content_type, byte_size, sha256)
            VALUES ($1, 'references/' || md5(random()::text) || '.jpg', 'image/jpeg', 100, sha256(random()::text::bytea))
            """, [avatarID], retry: .never)
        let paid = try payment(db, telegramID: telegramID, status: "succeeded", tier: tier, photos: photos, mode: terminal,
                               paymentURL: nil, paidNow: true)
        return (avatarID, paid.id, paid.bankID)
    }

    /// Where a job's tasks stand: `queued` as `POST /api/generate` leaves them (due, never
    /// submitted), or `running` at Kie as dispatch leaves them (`kie-<job>-<index>`, submitted
    /// now, a deadline 20 minutes ahead, one attempt).
    public enum Tasks { case queued, running }

    /// A paid job (its payment consumed) of `photos` tasks; the job `queued` or `processing`
    /// with its tasks, its deadline `deadlineIn` seconds from now (negative: already past),
    /// created `createdSecondsAgo` seconds ago.
    public static func job(_ db: Connection, telegramID: Int64, photos: Int = 7, tasks: Tasks,
                           deadlineIn: Int = 7200, createdSecondsAgo: Int = 0) throws -> Job {
        let ready = try readyToGenerate(db, telegramID: telegramID, photos: photos)
        let jobID = try db.withTransaction { tx in
            let id = try tx.query("SELECT nextval('generation_jobs_id_seq')::bigint AS id")[0].requiredInt("id")
            try tx.execute("UPDATE payments SET consumed_by_job = $1 WHERE id = $2", [id, ready.paymentID])
            try tx.execute("""
                INSERT INTO generation_jobs (id, user_id, avatar_id, payment_id, style_id, total_photos, status, deadline_at, created_at)
                SELECT $1, user_id, $2, id, 'pinglass', photo_count, $4, now() + make_interval(secs => $5), now() - make_interval(secs => $6)
                FROM payments WHERE id = $3
                """, [id, ready.avatarID, ready.paymentID, tasks == .running ? "processing" : "queued", deadlineIn, createdSecondsAgo])
            switch tasks {
            case .queued:
                try tx.execute("""
                    INSERT INTO generation_tasks (job_id, prompt_index, prompt_text)
                    SELECT $1::bigint, i, 'a portrait, fixture prompt ' || i FROM generate_series(0, $2 - 1) AS i
                    """, [id, photos])
            case .running:
                try tx.execute("""
                    INSERT INTO generation_tasks (job_id, prompt_index, prompt_text, state, kie_task_id, submitted_at, deadline_at, attempts)
                    SELECT $1::bigint, i, 'a portrait, fixture prompt ' || i, 'running', 'kie-' || $1::bigint || '-' || i, now(),
                           now() + interval '20 minutes', 1
                    FROM generate_series(0, $2 - 1) AS i
                    """, [id, photos])
            }
            return id
        }
        let rows = try db.query("SELECT id, coalesce(kie_task_id, '') AS k FROM generation_tasks WHERE job_id = $1 ORDER BY prompt_index",
                                [jobID]).map { (id: $0.requiredInt("id"), kieID: $0.requiredString("k")) }
        return Job(id: jobID, paymentID: ready.paymentID, amountKopecks: 49_900, tasks: rows)
    }

    /// A job whose tasks are all running at Kie, its deadline two hours ahead.
    public static func running(_ deps: Dependencies, telegramID: Int64, photos: Int = 7) throws -> Job {
        try job(deps.db(), telegramID: telegramID, photos: photos, tasks: .running)
    }

    /// A job that never started: `queued`, every task queued and due.
    public static func queued(_ deps: Dependencies, telegramID: Int64, photos: Int, deadlineIn: Int) throws -> Job {
        try job(deps.db(), telegramID: telegramID, photos: photos, tasks: .queued, deadlineIn: deadlineIn)
    }

    /// Ends the job's first `succeeded` tasks with a stored photo row and the next `failed`
    /// ones as Kie failures; the rest stay running. Tasks already ended are left alone.
    public static func settle(_ db: Connection, _ job: Job, succeeded: Int, failed: Int) throws {
        for (i, task) in job.tasks.enumerated() where i < succeeded + failed {
            if i < succeeded {
                try db.execute("""
                    INSERT INTO generated_photos (job_id, task_id, avatar_id, storage_key, content_type, byte_size, sha256)
                    SELECT j.id, $2, j.avatar_id, 'generated/fixture-' || $2::bigint || '.jpg', 'image/jpeg', 64, sha256($2::bigint::text::bytea)
                    FROM generation_jobs j JOIN generation_tasks t ON t.id = $2 AND t.state = 'running' WHERE j.id = $1
                    """, [job.id, task.id])
                try db.execute("UPDATE generation_tasks SET state = 'succeeded', finished_at = now() WHERE id = $1 AND state = 'running'",
                               [task.id])
            } else {
                try db.execute("""
                    UPDATE generation_tasks SET state = 'failed', finished_at = now(), fail_code = '500', fail_message = 'fixture'
                    WHERE id = $1 AND state = 'running'
                    """, [task.id])
            }
        }
    }
}

import Foundation
import PinGlass
import Postgres
import Providers

/// Jobs as the poller and the finisher find them: paid, consumed, and their tasks where
/// dispatch leaves them (running at Kie).
///
/// ```swift
/// let job = try PollFixtures.runningJob(deps, telegramID: 7001, photos: 7)
/// try PollFixtures.settle(c, job, succeeded: 5, failed: 2)
/// ```
public enum PollFixtures {
    public struct Job {
        public let id: Int
        public let paymentID: Int
        public let amountKopecks: Int
        /// Task row ids and their Kie task ids, by prompt index.
        public let tasks: [(id: Int, kieID: String)]
    }

    /// A paid job (the payment consumed, as `POST /api/generate` leaves it) whose tasks are
    /// all `running` at Kie (`kie-<job>-<index>`), due now, with a deadline 20 minutes ahead.
    public static func runningJob(_ deps: Dependencies, telegramID: Int64, photos: Int = 7) throws -> Job {
        let db = try deps.db()
        let ready = try GenerationFixtures.readyToGenerate(db, telegramID: telegramID, photos: photos)
        let jobID = try db.withTransaction { tx in
            let id = try tx.query("SELECT nextval('generation_jobs_id_seq')::bigint AS id")[0].requiredInt("id")
            try tx.execute("UPDATE payments SET consumed_by_job = $1 WHERE id = $2", [id, ready.paymentID])
            try tx.execute("""
                INSERT INTO generation_jobs (id, user_id, avatar_id, payment_id, style_id, total_photos, status, deadline_at)
                SELECT $1, user_id, $2, id, 'pinglass', photo_count, 'processing', now() + interval '2 hours' FROM payments WHERE id = $3
                """, [id, ready.avatarID, ready.paymentID])
            try tx.execute("""
                INSERT INTO generation_tasks (job_id, prompt_index, prompt_text, state, kie_task_id, submitted_at, deadline_at, attempts)
                SELECT $1::bigint, i, 'a portrait, fixture prompt ' || i, 'running', 'kie-' || $1::bigint || '-' || i, now(),
                       now() + interval '20 minutes', 1
                FROM generate_series(0, $2 - 1) AS i
                """, [id, photos])
            return id
        }
        let tasks = try db.query("SELECT id, kie_task_id FROM generation_tasks WHERE job_id = $1 ORDER BY prompt_index", [jobID])
            .map { (id: $0.requiredInt("id"), kieID: $0.requiredString("kie_task_id")) }
        return Job(id: jobID, paymentID: ready.paymentID, amountKopecks: 49_900, tasks: tasks)
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

    /// Dependencies for a poller or a finisher of `database`: its own connection, the media
    /// secret, a fresh media folder, results allowed from loopback hosts.
    public static func deps(_ database: TestDatabase, env: [String: String] = [:]) throws -> Dependencies {
        // KIE_API_URL on loopback says Kie is local (the tests' servers are): results may then
        // come from loopback addresses. FakeKie answers instead of anything at that URL.
        var vars = ["MEDIA_KEY_SECRET": GenerationFixtures.mediaSecret, "STORAGE_DIR": try TestEnvironment.makeTempDir("media"),
                    "KIE_RESULT_HOSTS": "127.0.0.1", "KIE_API_URL": "http://127.0.0.1:9/kie"]
        vars.merge(env) { $1 }
        let config = try database.config(vars)
        return Dependencies.live(config: config, database: Database(url: config.databaseURL, applicationName: "test"),
                            migrationsDirectory: try TestDatabase.migrationsDir())
    }
}

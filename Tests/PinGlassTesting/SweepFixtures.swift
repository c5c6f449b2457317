import Foundation
import PinGlass
import Postgres

/// Rows as the sweep finds them (jobs come from `JobFixtures`): leased tasks, deliveries and
/// refunds, and a recorder that catches any write that changes a row already in a terminal state.
///
/// ```swift
/// let job = try JobFixtures.queued(deps, telegramID: 7001, photos: 3, deadlineIn: -60)
/// let d = try SweepFixtures.delivery(c, state: "sending", leaseIn: -5)
/// try SweepFixtures.recordTerminalChanges(c)     // then: SweepFixtures.terminalChanges(c) == []
/// ```
public enum SweepFixtures {
    /// A task in `submitting` with a lease ending `leaseIn` seconds from now, claimed `attempts` times.
    public static func submitting(_ db: Connection, taskID: Int, leaseIn: Double, attempts: Int = 1) throws {
        try db.execute("""
            UPDATE generation_tasks SET state = 'submitting', kie_task_id = NULL, deadline_at = NULL, submitted_at = NULL,
                   lease_token = gen_random_uuid(), lease_until = now() + make_interval(secs => $2::float8), attempts = $3
            WHERE id = $1
            """, [taskID, leaseIn, attempts])
    }

    /// A Telegram message row (no job) in `state`, its lease ending `leaseIn` seconds from now
    /// (nil: no lease); due `runIn` seconds from now. Its id.
    public static func delivery(_ db: Connection, state: String, leaseIn: Double?, runIn: Double = 0, chatID: Int64 = 5001) throws -> Int {
        try db.query("""
            INSERT INTO telegram_deliveries (chat_id, kind, payload, state, attempts, run_at, lease_token, lease_until, give_up_at, sent_at)
            VALUES ($1, 'message', '{"text":"fixture"}', $2, 1, now() + make_interval(secs => $4::float8),
                    CASE WHEN $3::float8 IS NULL THEN NULL ELSE gen_random_uuid() END, now() + make_interval(secs => $3::float8),
                    now() + interval '1 day', CASE WHEN $2 = 'sent' THEN now() END)
            RETURNING id
            """, [chatID, state, leaseIn, runIn])[0].requiredInt("id")
    }

    /// A manual refund row (no job) of `payment` in `state`, its lease ending `leaseIn`
    /// seconds from now (nil: none); due `runIn` seconds from now. Its id.
    public static func refund(_ db: Connection, paymentID: Int, state: String, leaseIn: Double?, runIn: Double = 0,
                              amount: Int = 100) throws -> Int {
        // A succeeded refund carries the bank's amounts (0009), and its money is recorded on the
        // payment, as `pinglass refund` records them, so the audit sees a consistent pair.
        let id = try db.query("""
            INSERT INTO refunds (payment_id, amount_kopecks, reason, requested_by, state, attempts, run_at, lease_token, lease_until,
                                 finished_at, bank_original_kopecks, bank_remaining_kopecks)
            SELECT $1, $2, 'fixture', 'test', $3, 1, now() + make_interval(secs => $5::float8),
                   CASE WHEN $4::float8 IS NULL THEN NULL ELSE gen_random_uuid() END, now() + make_interval(secs => $4::float8),
                   CASE WHEN $3 IN ('succeeded', 'failed') THEN now() END,
                   CASE WHEN $3 = 'succeeded' THEN p.amount_kopecks - p.refunded_kopecks END,
                   CASE WHEN $3 = 'succeeded' THEN p.amount_kopecks - p.refunded_kopecks - $2 END
            FROM payments p WHERE p.id = $1
            RETURNING id
            """, [paymentID, amount, state, leaseIn, runIn])[0].requiredInt("id")
        if state == "succeeded" {
            try db.execute("""
                UPDATE payments SET refunded_kopecks = refunded_kopecks + $2,
                       status = CASE WHEN refunded_kopecks + $2 >= amount_kopecks THEN 'refunded' ELSE 'partially_refunded' END
                WHERE id = $1
                """, [paymentID, amount])
        }
        return id
    }

    /// Installs test-only triggers that record, in `test_terminal_changes`, every update that
    /// changes the state of a task, job, delivery or refund already terminal, and in
    /// `test_task_ends` / `test_job_ends` every move of a task or job into a terminal state.
    /// A sweep overwriting a finished row (the River/Solid Queue bug) shows up there, whoever
    /// did it and whenever.
    public static func recordTerminalChanges(_ db: Connection) throws {
        try db.executeScript("""
            CREATE TABLE test_terminal_changes (tbl text, row_id bigint, old_state text, new_state text);
            CREATE TABLE test_task_ends (task_id bigint, state text);
            CREATE TABLE test_job_ends (job_id bigint, status text);
            CREATE FUNCTION test_watch() RETURNS trigger LANGUAGE plpgsql AS $$
            DECLARE old_s text; new_s text; terminal text[];
            BEGIN
                IF TG_TABLE_NAME = 'generation_jobs' THEN
                    old_s := OLD.status; new_s := NEW.status; terminal := ARRAY['completed', 'partial', 'failed', 'canceled'];
                ELSIF TG_TABLE_NAME = 'generation_tasks' THEN
                    old_s := OLD.state; new_s := NEW.state; terminal := ARRAY['succeeded', 'failed'];
                ELSIF TG_TABLE_NAME = 'telegram_deliveries' THEN
                    old_s := OLD.state; new_s := NEW.state; terminal := ARRAY['sent', 'failed'];
                ELSE
                    old_s := OLD.state; new_s := NEW.state; terminal := ARRAY['succeeded', 'failed'];
                END IF;
                IF old_s = ANY(terminal) AND new_s IS DISTINCT FROM old_s THEN
                    INSERT INTO test_terminal_changes VALUES (TG_TABLE_NAME, OLD.id, old_s, new_s);
                ELSIF new_s = ANY(terminal) AND NOT old_s = ANY(terminal) THEN
                    IF TG_TABLE_NAME = 'generation_tasks' THEN INSERT INTO test_task_ends VALUES (OLD.id, new_s); END IF;
                    IF TG_TABLE_NAME = 'generation_jobs' THEN INSERT INTO test_job_ends VALUES (OLD.id, new_s); END IF;
                END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER test_watch AFTER UPDATE ON generation_tasks FOR EACH ROW EXECUTE FUNCTION test_watch();
            CREATE TRIGGER test_watch AFTER UPDATE ON generation_jobs FOR EACH ROW EXECUTE FUNCTION test_watch();
            CREATE TRIGGER test_watch AFTER UPDATE ON telegram_deliveries FOR EACH ROW EXECUTE FUNCTION test_watch();
            CREATE TRIGGER test_watch AFTER UPDATE ON refunds FOR EACH ROW EXECUTE FUNCTION test_watch();
            """)
    }

    /// What `recordTerminalChanges` caught: "table id old→new" lines (empty: nothing terminal moved).
    public static func terminalChanges(_ db: Connection) throws -> [String] {
        try db.query("SELECT tbl || ' ' || row_id || ' ' || old_state || '→' || coalesce(new_state, 'null') AS line FROM test_terminal_changes")
            .map { $0.requiredString("line") }
    }
}

/// A finish that fails for one job alone, as a conflict, a trigger's refusal or bad data
/// would make it: a test-only trigger refuses ending that job.
///
/// ```swift
/// try JobFinishFailure.install(c, jobID: job.id)   // JobFinish.finish(job) now throws
/// try JobFinishFailure.remove(c)
/// ```
public enum JobFinishFailure {
    public static func install(_ db: Connection, jobID: Int) throws {
        try db.executeScript("""
            CREATE FUNCTION test_refuse_finish() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.id = \(jobID) AND NEW.status IS DISTINCT FROM OLD.status THEN
                    RAISE EXCEPTION 'test: job % may not finish', NEW.id;
                END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER test_refuse_finish BEFORE UPDATE ON generation_jobs FOR EACH ROW EXECUTE FUNCTION test_refuse_finish();
            """)
    }

    public static func remove(_ db: Connection) throws {
        try db.executeScript("DROP TRIGGER test_refuse_finish ON generation_jobs; DROP FUNCTION test_refuse_finish();")
    }

    /// The keys of the alert rows queued, in order.
    public static func alerts(_ db: Connection) throws -> [String] {
        try db.query("SELECT payload ->> 'key' AS key FROM telegram_deliveries WHERE kind = 'alert' ORDER BY id").map { $0.requiredString("key") }
    }
}

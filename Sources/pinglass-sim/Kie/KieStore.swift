import Postgres

/// The simulated Kie's state in schema `sim`. A task's state is never stored: it follows
/// from its timestamps (fixed at creation from the settings of that moment) and the clock,
/// so no background work moves tasks along and every sim worker sees the same task.
enum KieStore {
    static let schema = """
        CREATE SEQUENCE IF NOT EXISTS sim.kie_task_ids START 1001;
        CREATE TABLE IF NOT EXISTS sim.kie_tasks (
            task_id          text PRIMARY KEY,
            seq              bigint NOT NULL,
            account          text NOT NULL,         -- a hash of the API key: Kie limits per account
            model            text NOT NULL,
            param            text NOT NULL,         -- the createTask body as received
            callback_url     text,
            created_at       timestamptz NOT NULL,
            queuing_at       timestamptz NOT NULL,
            generating_at    timestamptz NOT NULL,
            finishes_at      timestamptz,           -- NULL: never finishes
            outcome          text NOT NULL CHECK (outcome IN ('success', 'fail')),
            fail_code        text,
            fail_msg         text,
            result_ttl       interval NOT NULL,     -- the result URL answers 404 after finishes_at + this
            callback_due_at  timestamptz,           -- NULL: no callback
            callback_copies  int NOT NULL DEFAULT 1,
            callback_sent_at timestamptz,
            callback_status  int
        );
        CREATE INDEX IF NOT EXISTS kie_tasks_account_created ON sim.kie_tasks (account, created_at);
        CREATE INDEX IF NOT EXISTS kie_tasks_callback_due ON sim.kie_tasks (callback_due_at) WHERE callback_sent_at IS NULL;
        CREATE TABLE IF NOT EXISTS sim.kie_polls (account text NOT NULL, at timestamptz NOT NULL);
        CREATE INDEX IF NOT EXISTS kie_polls_account_at ON sim.kie_polls (account, at);
        CREATE TABLE IF NOT EXISTS sim.kie_counters (name text PRIMARY KEY, value bigint NOT NULL);
        """

    /// Adds to a counter the tests and benchmarks read (`GET /sim/control/kie/counters`).
    static func count(_ db: some Queryable, _ name: String, by n: Int = 1) throws {
        try db.query("""
            INSERT INTO sim.kie_counters VALUES ($1, $2)
            ON CONFLICT (name) DO UPDATE SET value = sim.kie_counters.value + $2
            """, [name, n])
    }

    /// Takes one from a "next N" switch (`kie.failNext`, `kie.credits` …) atomically; false
    /// when it is unset or used up.
    static func take(_ db: some Queryable, _ name: String) throws -> Bool {
        try db.execute("""
            UPDATE sim.switches SET value = (value::bigint - 1)::text
            WHERE name = $1 AND value ~ '^[0-9]+$' AND value::bigint > 0
            """, ["kie." + name]) == 1
    }

    /// A task as recordInfo, the callbacks and the result URL see it. `final` shows the
    /// outcome even before it is due (an early callback).
    struct Task {
        let id: String
        let seq: Int
        let account: String
        let model: String
        let param: String
        let state: String
        let outcome: String
        let failCode: String?
        let failMessage: String?
        let createdMS: Int
        let finishedMS: Int?
        let expired: Bool
        let callbackURL: String?
        let callbackCopies: Int

        init(_ r: Row) {
            id = r.requiredString("task_id")
            seq = r.requiredInt("seq")
            account = r.requiredString("account")
            model = r.requiredString("model")
            param = r.requiredString("param")
            state = r.requiredString("state")
            outcome = r.requiredString("outcome")
            failCode = r.string("fail_code")
            failMessage = r.string("fail_msg")
            createdMS = r.requiredInt("created_ms")
            finishedMS = r.int("finished_ms")
            expired = r.bool("expired") ?? false
            callbackURL = r.string("callback_url")
            callbackCopies = r.int("callback_copies") ?? 1
        }
    }

    static let taskColumns = """
        task_id, seq, account, model, param, outcome, fail_code, fail_msg, callback_url, callback_copies,
        CASE WHEN clock_timestamp() < queuing_at THEN 'waiting'
             WHEN clock_timestamp() < generating_at THEN 'queuing'
             WHEN finishes_at IS NULL OR clock_timestamp() < finishes_at THEN 'generating'
             ELSE outcome END AS state,
        (extract(epoch FROM created_at) * 1000)::bigint AS created_ms,
        (extract(epoch FROM finishes_at) * 1000)::bigint AS finished_ms,
        coalesce(finishes_at + result_ttl < clock_timestamp(), false) AS expired
        """

    static func task(_ db: some Queryable, _ id: String) throws -> Task? {
        try db.query("SELECT \(taskColumns) FROM sim.kie_tasks WHERE task_id = $1", [id], retry: .idempotent).first.map(Task.init)
    }
}

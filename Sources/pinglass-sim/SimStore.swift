import PinGlass
import Postgres

/// The simulator's state, in schema `sim` of the database it is pointed at, so every
/// FastCGI worker of the simulator sees the same bank. Created on start; never in production.
enum SimStore {
    static let schema = """
        CREATE SCHEMA IF NOT EXISTS sim;
        CREATE TABLE IF NOT EXISTS sim.payments (
            payment_id       bigint PRIMARY KEY,
            terminal_key     text NOT NULL,
            order_id         text NOT NULL,
            amount           int NOT NULL,
            charged          int NOT NULL,
            status           text NOT NULL,
            description      text,
            notification_url text,
            success_url      text,
            fail_url         text,
            receipt          jsonb,
            created_at       timestamptz NOT NULL DEFAULT now(),
            UNIQUE (terminal_key, order_id)
        );
        CREATE SEQUENCE IF NOT EXISTS sim.payment_ids START 7000000001;
        CREATE TABLE IF NOT EXISTS sim.cancels (
            terminal_key        text NOT NULL,
            external_request_id text NOT NULL,
            payment_id          bigint NOT NULL,
            answer              text NOT NULL,
            PRIMARY KEY (terminal_key, external_request_id)
        );
        CREATE TABLE IF NOT EXISTS sim.notifications (
            id            bigserial PRIMARY KEY,
            payment_id    bigint,
            url           text NOT NULL,
            body          text NOT NULL,
            attempts      int NOT NULL DEFAULT 0,
            next_at       timestamptz NOT NULL DEFAULT now(),
            delivered_at  timestamptz,
            last_status   int,
            last_body     text,
            created_at    timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE IF NOT EXISTS sim.switches (name text PRIMARY KEY, value text NOT NULL);
        CREATE TABLE IF NOT EXISTS sim.requests (
            id bigserial PRIMARY KEY, method text NOT NULL, body text NOT NULL, at timestamptz NOT NULL DEFAULT now()
        );
        """

    static func migrate(_ db: Connection) throws {
        try db.execute("SELECT pg_advisory_lock(7346121002)", retry: .idempotent)
        defer { _ = try? db.execute("SELECT pg_advisory_unlock(7346121002)", retry: .idempotent) }
        try db.executeScript(schema)
        try db.executeScript(KieStore.schema)
        try db.executeScript(TelegramStore.schema)
    }

    static func switchValue(_ db: some Queryable, _ name: String) throws -> String? {
        try db.query("SELECT value FROM sim.switches WHERE name = $1", [name], retry: .idempotent).first?.string("value")
    }

    static func switchInt(_ db: some Queryable, _ name: String) throws -> Int { Int(try switchValue(db, name) ?? "") ?? 0 }
    static func switchOn(_ db: some Queryable, _ name: String) throws -> Bool { try switchValue(db, name) == "true" }

    struct Payment {
        let id: Int
        let terminalKey: String
        let orderID: String
        let amount: Int
        let charged: Int
        let status: String
        let description: String
        let notificationURL: String?
        let successURL: String?
        let failURL: String?

        init(_ r: Row) {
            id = r.requiredInt("payment_id")
            terminalKey = r.requiredString("terminal_key")
            orderID = r.requiredString("order_id")
            amount = r.requiredInt("amount")
            charged = r.requiredInt("charged")
            status = r.requiredString("status")
            description = r.string("description") ?? ""
            notificationURL = r.string("notification_url")
            successURL = r.string("success_url")
            failURL = r.string("fail_url")
        }
    }

    static func payment(_ db: some Queryable, _ id: Int, lock: Bool = false) throws -> Payment? {
        try db.query("SELECT * FROM sim.payments WHERE payment_id = $1" + (lock ? " FOR UPDATE" : ""), [id], retry: .idempotent).first.map(Payment.init)
    }
}

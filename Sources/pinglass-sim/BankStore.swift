import Postgres

/// The simulated bank's state in schema `sim`: its payments, Cancels and refunds, the
/// notifications it owes and the requests it received, so every FastCGI worker of the
/// simulator sees the same bank.
enum BankStore {
    static let schema = """
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
        -- How the customer paid: 'ACQ' (card acquiring) or 'SBP' (the Faster Payments System,
        -- where Cancel does not honour ExternalRequestId).
        ALTER TABLE sim.payments ADD COLUMN IF NOT EXISTS route text NOT NULL DEFAULT 'ACQ';
        CREATE SEQUENCE IF NOT EXISTS sim.payment_ids START 7000000001;
        CREATE TABLE IF NOT EXISTS sim.cancels (
            terminal_key        text NOT NULL,
            external_request_id text NOT NULL,
            payment_id          bigint NOT NULL,
            answer              text NOT NULL,
            PRIMARY KEY (terminal_key, external_request_id)
        );
        CREATE TABLE IF NOT EXISTS sim.refunds (
            id                  bigserial PRIMARY KEY,
            payment_id          bigint NOT NULL,
            external_request_id text,
            amount              int NOT NULL,
            status              text NOT NULL,
            original_amount     int NOT NULL,
            new_amount          int NOT NULL,
            at                  timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX IF NOT EXISTS refunds_payment_idx ON sim.refunds (payment_id, id);
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
        CREATE TABLE IF NOT EXISTS sim.requests (
            id bigserial PRIMARY KEY, method text NOT NULL, body text NOT NULL, at timestamptz NOT NULL DEFAULT now()
        );
        """

    /// Every Cancel that gave money back, oldest first.
    static func refunds(_ db: some Queryable, paymentID: Int) throws -> [Row] {
        Array(try db.query("""
            SELECT external_request_id, amount, status, original_amount, new_amount,
                   to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS at
            FROM sim.refunds WHERE payment_id = $1 ORDER BY id
            """, [paymentID], retry: .idempotent))
    }

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
        /// `ACQ` (card) or `SBP`.
        let route: String

        var isSBP: Bool { route == "SBP" }

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
            route = r.string("route") ?? "ACQ"
        }
    }

    static func payment(_ db: some Queryable, _ id: Int, lock: Bool = false) throws -> Payment? {
        try db.query("SELECT * FROM sim.payments WHERE payment_id = $1" + (lock ? " FOR UPDATE" : ""), [id], retry: .idempotent).first.map(Payment.init)
    }
}

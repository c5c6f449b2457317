import Postgres

/// The simulator's state lives in schema `sim` of the database it is pointed at (the schema
/// owner's connection), so every FastCGI worker of the simulator sees the same bank, Kie and
/// Telegram. Created on start; never in production.
enum SimSchema {
    static func migrate(_ db: Connection) throws {
        try db.execute("SELECT pg_advisory_lock(7346121002)", retry: .idempotent)
        defer { _ = try? db.execute("SELECT pg_advisory_unlock(7346121002)", retry: .idempotent) }
        try db.executeScript("CREATE SCHEMA IF NOT EXISTS sim;")
        try db.executeScript(BankStore.schema)
        try db.executeScript(Switches.schema)
        try db.executeScript(KieStore.schema)
        try db.executeScript(TelegramStore.schema)
    }
}

/// Faults and behaviours tests switch on through the control API (`POST /sim/control/switches`
/// for the bank, `kie.`-prefixed names for Kie), one row per switch.
enum Switches {
    static let schema = "CREATE TABLE IF NOT EXISTS sim.switches (name text PRIMARY KEY, value text NOT NULL);"

    static func value(_ db: some Queryable, _ name: String) throws -> String? {
        try db.query("SELECT value FROM sim.switches WHERE name = $1", [name], retry: .idempotent).first?.string("value")
    }

    static func int(_ db: some Queryable, _ name: String) throws -> Int { Int(try value(db, name) ?? "") ?? 0 }
    static func isOn(_ db: some Queryable, _ name: String) throws -> Bool { try value(db, name) == "true" }

    /// A switch that may be limited to a number of uses: while `<name>_times` holds N, it acts
    /// N more times, then both are removed (`{"cancel_error": "9999", "cancel_error_times": 2}`:
    /// the next two Cancels fail). Without `_times` it acts until it is cleared.
    static func take(_ db: Connection, _ name: String) throws -> String? {
        try db.withTransaction { tx in
            guard let value = try tx.query("SELECT value FROM sim.switches WHERE name = $1 FOR UPDATE", [name]).first?.string("value") else {
                return nil
            }
            if let times = try tx.query("SELECT value FROM sim.switches WHERE name = $1 FOR UPDATE", [name + "_times"]).first {
                if (Int(times.string("value") ?? "") ?? 0) <= 1 {
                    try tx.execute("DELETE FROM sim.switches WHERE name = $1 OR name = $1 || '_times'", [name])
                } else {
                    try tx.execute("UPDATE sim.switches SET value = (value::int - 1)::text WHERE name = $1 || '_times'", [name])
                }
            }
            return value
        }
    }
}

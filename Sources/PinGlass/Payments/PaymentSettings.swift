import Postgres

/// Payment settings kept in the `settings` table (read per request, changed by admins).
public enum PaymentSettings {
    public static func terminalMode(_ db: Connection) throws -> TerminalMode {
        let v = try db.query("SELECT value FROM settings WHERE key = 'tbank_mode'").first?.string("value")
        return v.flatMap(TerminalMode.init(rawValue:)) ?? .test
    }
}

import Postgres
import PinGlassConfig

/// Payment settings kept in the `settings` table (read per request, changed by admins).
public enum PaymentSettings {
    public static func terminalMode(_ db: some Queryable) throws -> TerminalMode {
        try read(db, "SELECT value FROM settings WHERE key = 'tbank_mode'")
    }

    /// The same inside `tx`, the row share-locked until it ends: a switch (`setTerminalMode`)
    /// waits for the transaction, so what it decides with the mode holds until its commit.
    public static func terminalMode(_ tx: Transaction, lock: Bool) throws -> TerminalMode {
        try read(tx, "SELECT value FROM settings WHERE key = 'tbank_mode'" + (lock ? " FOR SHARE" : ""))
    }

    private static func read(_ db: some Queryable, _ sql: String) throws -> TerminalMode {
        // No row yet: test mode (a fresh install never charges real cards by accident).
        guard let v = try db.query(sql, retry: .idempotent).first?.string("value") else {
            return .test
        }
        guard let mode = TerminalMode(rawValue: v) else { throw StoredValueError(column: "settings.tbank_mode", value: v) }
        return mode
    }
}

extension PaymentSettings {
    public enum ChangeError: Error, CustomStringConvertible, Equatable {
        case missingCredentials(TerminalMode)
        public var description: String {
            switch self {
            case .missingCredentials(.production):
                return "production mode needs TBANK_TERMINAL_KEY and TBANK_PASSWORD; set them first"
            case .missingCredentials(.test):
                return "test mode needs TBANK_TEST_TERMINAL_KEY and TBANK_TEST_PASSWORD; set them first"
            }
        }
    }

    /// Switches the terminal new payments use; audited. Existing payments keep theirs.
    public static func setTerminalMode(_ db: Connection, config: Config, mode: TerminalMode, actor: String) throws -> TerminalMode {
        guard config.terminal(for: mode) != nil else { throw ChangeError.missingCredentials(mode) }
        return try db.withTransaction { tx in
            let old = try terminalMode(tx)
            try tx.execute("""
                INSERT INTO settings (key, value, updated_by) VALUES ('tbank_mode', $1, $2)
                ON CONFLICT (key) DO UPDATE SET value = $1, updated_by = $2, updated_at = now()
                """, [mode.rawValue, actor])
            try AdminAudit.record(tx, actor: actor, action: "settings.tbank_mode", target: "tbank_mode",
                             details: ["from": .string(old.rawValue), "to": .string(mode.rawValue)])
            return old
        }
    }
}

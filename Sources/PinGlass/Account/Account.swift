import Postgres

/// The customer as the Mini App shows them (`GET /api/me`): who Telegram says they are, the
/// address their receipts go to, and when they agreed to the processing of their photos.
public struct AccountRecord: Equatable, Sendable {
    public let telegramID: Int64
    public let firstName: String?
    public let languageCode: String?
    public let email: String?
    /// ISO 8601 UTC, nil until the customer agreed.
    public let consentAt: String?

    static let columns = """
        telegram_user_id, first_name, language_code, receipt_email,
        to_char(consent_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS consent_at
        """

    init(_ r: Row) {
        telegramID = Int64(r.requiredInt("telegram_user_id"))
        firstName = r.string("first_name")
        languageCode = r.string("language_code")
        email = r.string("receipt_email")
        consentAt = r.string("consent_at")
    }
}

/// Why an account operation did not happen (`Web/` maps these to answers).
public enum AccountError: Error, Equatable, CustomStringConvertible {
    /// A generation of the caller is queued or running: its selfies and photos are in use.
    case generationRunning
    /// One of the caller's photos is being sent to Telegram this moment.
    case deliveryInFlight

    public var description: String {
        switch self {
        case .generationRunning: return "a generation is running; delete your data when it has finished"
        case .deliveryInFlight: return "your photos are being sent to Telegram right now; try again in a minute"
        }
    }
}

/// The caller's own account row. Every statement names the caller's user id, which only
/// authentication provides.
public enum Account {
    /// What to do with the stored receipt address.
    public enum EmailChange: Equatable, Sendable {
        case keep
        case forget
        /// A new address, already checked (`ReceiptEmail.checked`).
        case set(String)
    }

    public static func find(_ db: some Queryable, userID: Int) throws -> AccountRecord {
        AccountRecord(try db.query("SELECT \(AccountRecord.columns) FROM users WHERE id = $1", [userID], retry: .idempotent)[0])
    }

    /// Changes the receipt address as told and, with `consent`, records the time of consent
    /// once (a time already recorded is kept: it says when the customer first agreed).
    /// One statement; repeating it changes nothing more.
    public static func update(_ db: some Queryable, userID: Int, email: EmailChange, consent: Bool) throws -> AccountRecord {
        var newEmail: String?
        if case .set(let e) = email { newEmail = e }
        return AccountRecord(try db.query("""
            UPDATE users SET receipt_email = CASE WHEN $2 THEN $3 ELSE receipt_email END,
                   consent_at = CASE WHEN $4 THEN coalesce(consent_at, now()) ELSE consent_at END,
                   updated_at = now()
            WHERE id = $1
            RETURNING \(AccountRecord.columns)
            """, [userID, email != .keep, newEmail, consent], retry: .idempotent)[0])
    }

    /// The address the receipt of a new payment goes to, in the payment's transaction (the
    /// user row locked by the caller): a given address is remembered for the next payments;
    /// without one, the remembered address (nil: none was ever given).
    public static func receiptEmail(_ tx: Transaction, userID: Int, given: String?) throws -> String? {
        if let given {
            try tx.execute("UPDATE users SET receipt_email = $2, updated_at = now() WHERE id = $1 AND receipt_email IS DISTINCT FROM $2",
                           [userID, given])
            return given
        }
        return try tx.query("SELECT receipt_email FROM users WHERE id = $1", [userID]).first?.string("receipt_email")
    }
}

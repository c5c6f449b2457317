import Postgres
import ProviderWire

/// The authenticated caller of a user endpoint.
public struct AuthenticatedUser: Equatable, Sendable {
    public let id: Int
    public let telegramID: Int64

    public init(id: Int, telegramID: Int64) {
        self.id = id
        self.telegramID = telegramID
    }
}

/// The user rows behind validated Telegram identities.
///
/// Every authenticated request resolves its user, and the Mini App polls job progress every
/// second or two, so the common case must not write: the row is read first and written only
/// when it is missing or its Telegram fields changed (an upsert locks the row and flushes a
/// commit even when nothing changes).
public enum Users {
    /// The user's id, creating or refreshing the row only when needed.
    public static func resolve(_ db: Connection, _ user: TelegramUser) throws -> Int {
        let fields = Fields(user)
        if let row = try db.query("""
            SELECT id, username, first_name, last_name, language_code FROM users WHERE telegram_user_id = $1
            """, [user.id], retry: .idempotent).first,
           Fields(username: row.string("username"), firstName: row.string("first_name"),
                  lastName: row.string("last_name"), languageCode: row.string("language_code")) == fields {
            return row.requiredInt("id")
        }
        return try upsert(db, id: user.id, fields)
    }

    /// The user's id and the user's own rows that `inner` selects, in ONE statement: the
    /// Mini App polls its payment and its job every second or two, and each round trip to
    /// PostgreSQL costs more than the work. `inner` is a SELECT that names the caller as
    /// `me.id` and its own parameters from `$6` (`$1…$5` are the user's); `orderBy` orders
    /// its rows (as `x.<column>`) when there may be several. Only a new user, or one whose
    /// Telegram fields changed, costs a second statement (the upsert); a new user owns no
    /// rows yet, so nothing is read again.
    ///
    /// ```swift
    /// let (userID, rows) = try Users.read(db, tgUser, "SELECT id FROM avatars WHERE user_id = me.id", [])
    /// ```
    public static func read(_ db: Connection, _ user: TelegramUser, _ inner: String, _ params: [PostgresEncodable?],
                            orderBy: String? = nil) throws -> (userID: Int, rows: [Row]) {
        let f = Fields(user)
        let rows = try db.query("""
            WITH me AS (
                SELECT id, (username, first_name, last_name, language_code)
                           IS NOT DISTINCT FROM ($2::text, $3::text, $4::text, $5::text) AS fresh
                FROM users WHERE telegram_user_id = $1)
            SELECT me.id AS me_id, me.fresh AS me_fresh, x.*
            FROM me LEFT JOIN LATERAL (SELECT true AS me_found, y.* FROM (\(inner)) y) x ON true
            \(orderBy.map { "ORDER BY \($0)" } ?? "")
            """, [user.id, f.username, f.firstName, f.lastName, f.languageCode] + params, retry: .idempotent)
        guard let first = rows.first else { return (try upsert(db, id: user.id, f), []) }
        let id = first.requiredInt("me_id")
        if first.bool("me_fresh") != true { _ = try upsert(db, id: user.id, f) }
        return (id, rows.filter { $0.bool("me_found") == true })
    }

    /// Inserts the row or refreshes its fields; a concurrent insert of the same user is
    /// absorbed by ON CONFLICT (docs/reliability.md#R2: deduplicate in the database).
    static func upsert(_ db: Connection, id: Int64, _ f: Fields) throws -> Int {
        try db.query("""
            INSERT INTO users (telegram_user_id, username, first_name, last_name, language_code)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (telegram_user_id) DO UPDATE SET
                username = EXCLUDED.username, first_name = EXCLUDED.first_name,
                last_name = EXCLUDED.last_name, language_code = EXCLUDED.language_code,
                updated_at = now()
            RETURNING id
            """, [id, f.username, f.firstName, f.lastName, f.languageCode], retry: .idempotent)[0].requiredInt("id")
    }

    /// The stored form of the Telegram fields: cut to the column limits in Unicode scalars,
    /// as PostgreSQL's `left()` counts, so a stored row compares equal to what produced it.
    struct Fields: Equatable {
        var username, firstName, lastName, languageCode: String?

        init(username: String?, firstName: String?, lastName: String?, languageCode: String?) {
            self.username = username
            self.firstName = firstName
            self.lastName = lastName
            self.languageCode = languageCode
        }

        init(_ u: TelegramUser) {
            self.init(username: Self.cut(u.username, 64), firstName: Self.cut(u.firstName, 256),
                      lastName: Self.cut(u.lastName, 256), languageCode: Self.cut(u.languageCode, 16))
        }

        static func cut(_ s: String?, _ n: Int) -> String? {
            guard let s else { return nil }
            guard s.unicodeScalars.count > n else { return s }
            var out = String.UnicodeScalarView()
            out.append(contentsOf: s.unicodeScalars.prefix(n))
            return String(out)
        }
    }
}

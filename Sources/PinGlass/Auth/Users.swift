import Postgres

/// The authenticated caller of a user endpoint.
public struct AuthenticatedUser: Equatable, Sendable {
    public let id: Int
    public let telegramID: Int64
}

/// Who is calling: Telegram Mini App init data only (`Authorization: tma <initData>` or
/// `X-Telegram-Init-Data`). No other way to name a user exists.
public enum UserAuth {
    public static func authenticate(_ ctx: Context) throws -> AuthenticatedUser {
        let raw: String
        if let auth = ctx.request.header("authorization"), auth.lowercased().hasPrefix("tma ") {
            raw = String(auth.dropFirst(4)).trimmingSpaces()
        } else if let header = ctx.request.header("x-telegram-init-data") {
            raw = header
        } else {
            throw APIError.unauthorized("send the Telegram Mini App init data as 'Authorization: tma <initData>'")
        }
        guard let token = ctx.config.telegramBotToken else {
            ctx.log.error("TELEGRAM_BOT_TOKEN is not set: cannot authenticate users")
            throw APIError.unavailable("authentication is not configured")
        }
        let user: TelegramUser
        do {
            user = try TelegramInitData.validate(raw, botToken: token, now: ctx.now, maxAge: ctx.config.initDataMaxAge)
        } catch let f as TelegramInitData.Failure {
            throw APIError.unauthorized(f.description)
        }
        let id = try upsert(ctx.db(), user)
        ctx.log[metadataKey: "user_id"] = "\(id)"
        return AuthenticatedUser(id: id, telegramID: user.id)
    }

    /// Inserts or refreshes the user row from validated data; returns its id.
    public static func upsert(_ db: Connection, _ user: TelegramUser) throws -> Int {
        try db.query("""
            INSERT INTO users (telegram_user_id, username, first_name, last_name, language_code)
            VALUES ($1, left($2, 64), left($3, 256), left($4, 256), left($5, 16))
            ON CONFLICT (telegram_user_id) DO UPDATE SET
                username = EXCLUDED.username, first_name = EXCLUDED.first_name,
                last_name = EXCLUDED.last_name, language_code = EXCLUDED.language_code,
                updated_at = now()
            WHERE (users.username, users.first_name, users.last_name, users.language_code)
                  IS DISTINCT FROM (EXCLUDED.username, EXCLUDED.first_name, EXCLUDED.last_name, EXCLUDED.language_code)
            RETURNING id
            """, [user.id, user.username, user.firstName, user.lastName, user.languageCode], retry: .idempotent).first?.int("id")
            ?? db.query("SELECT id FROM users WHERE telegram_user_id = $1", [user.id], retry: .idempotent)[0].requiredInt("id")
    }
}

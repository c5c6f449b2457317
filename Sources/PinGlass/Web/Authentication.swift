import HTTPCore
import Postgres
import Platform
import ProviderWire

/// Who is calling a user endpoint: Telegram Mini App init data only (`Authorization: tma
/// <initData>` or `X-Telegram-Init-Data`). No other way to name a user exists.
enum Authentication {
    static func user(_ ctx: Context) throws -> AuthenticatedUser {
        let user = try telegramUser(ctx)
        return authenticated(ctx, id: try Users.resolve(ctx.db(), user), user)
    }

    /// The caller and the caller's rows `inner` selects, in one statement (`Users.read`):
    /// the polling paths (payment status, job progress, avatar list) cost one round trip.
    static func read(_ ctx: Context, _ inner: String, _ params: [PostgresEncodable?] = [],
                     orderBy: String? = nil) throws -> (AuthenticatedUser, [Row]) {
        let user = try telegramUser(ctx)
        let (id, rows) = try Users.read(ctx.db(), user, inner, params, orderBy: orderBy)
        return (authenticated(ctx, id: id, user), rows)
    }

    static func authenticated(_ ctx: Context, id: Int, _ user: TelegramUser) -> AuthenticatedUser {
        ctx.log[metadataKey: "user_id"] = "\(id)"
        return AuthenticatedUser(id: id, telegramID: user.id)
    }

    /// The validated init data's user (no database involved).
    static func telegramUser(_ ctx: Context) throws -> TelegramUser {
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
        do {
            return try TelegramInitData.validate(raw, botToken: token, now: ctx.now, maxAge: ctx.config.initDataMaxAge)
        } catch let f as TelegramInitData.Failure {
            throw APIError.unauthorized(f.description)
        }
    }
}

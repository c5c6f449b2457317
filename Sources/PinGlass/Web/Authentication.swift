import HTTPCore

/// Who is calling a user endpoint: Telegram Mini App init data only (`Authorization: tma
/// <initData>` or `X-Telegram-Init-Data`). No other way to name a user exists.
enum Authentication {
    static func user(_ ctx: Context) throws -> AuthenticatedUser {
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
        let id = try Users.resolve(ctx.db(), user)
        ctx.log[metadataKey: "user_id"] = "\(id)"
        return AuthenticatedUser(id: id, telegramID: user.id)
    }
}

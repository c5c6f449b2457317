import HTTPCore
import PinGlass
import ProviderWire
import Postgres

/// The caller of a Mini App route, as the `TelegramAuthentication` middleware validated it:
/// its user row, resolved here (created on first sight). No other way to name a user exists.
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

    /// The validated init data's user; a route outside the authenticated group has none
    /// (a programming error: the route table puts every user route in that group).
    static func telegramUser(_ ctx: Context) throws -> TelegramUser {
        guard let user = ctx.telegramUser else {
            ctx.log.error("a user route is outside the authenticated group", metadata: ["path": "\(ctx.request.path)"])
            throw APIError.internalError
        }
        return user
    }
}

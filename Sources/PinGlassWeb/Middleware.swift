import HTTPCore
import PinGlass
import ProviderWire

/// Work that runs around the handlers of a route group, before and after them: it may answer
/// itself (return or throw) or pass the request on with `next`. Given to `Router.group`; the
/// first in the list runs outermost.
///
/// ```swift
/// router.group([TelegramAuthentication()]) { r in r.add("GET", "/api/avatars", AvatarsRoutes.list) }
/// ```
public protocol Middleware: Sendable {
    func handle(_ ctx: Context, next: Router.Handler) throws -> Response
}

/// The Mini App's routes: Telegram Mini App init data only (`Authorization: tma <initData>`
/// or `X-Telegram-Init-Data`), validated with the bot token before the handler runs, and
/// put in `ctx.telegramUser`. No database is touched here: the handler resolves the user row
/// (`Authentication.user`), or reads it with the rows it needs in one statement
/// (`Authentication.read`) on the polling paths. Missing, forged or stale init data is a
/// 401 before anything else of the request is looked at.
public struct TelegramAuthentication: Middleware {
    public init() {}

    public func handle(_ ctx: Context, next: Router.Handler) throws -> Response {
        ctx.telegramUser = try Self.validate(ctx)
        return try next(ctx)
    }

    static func validate(_ ctx: Context) throws -> TelegramUser {
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

/// Counts every answer in the pool's shared table (`RequestMetrics`) under the route the
/// router matched, labelled by its pattern (`/api/avatars/{id}`), never the raw path;
/// requests no route matched count as `unmatched`. It wraps the whole application (`App`),
/// and counts before the answer leaves: whoever has the answer sees it in `/metrics`. The
/// time from here to the answer (on the monotonic clock) goes into the route's latency
/// histogram; an error thrown past every middleware is not an answer and is not timed.
struct RequestCounting: Middleware {
    func handle(_ ctx: Context, next: Router.Handler) throws -> Response {
        let started = ctx.deps.clock.monotonic()
        let response = try next(ctx)
        ctx.deps.requestMetrics?.record(route: ctx.routeIndex, status: response.status,
                                        seconds: ctx.deps.clock.monotonic() - started)
        return response
    }
}

extension RequestMetrics {
    /// The table for this application's routes (in the pool's master, before it forks).
    public static func forApp() throws -> RequestMetrics { try RequestMetrics(routes: RouteTable.router().table) }
}

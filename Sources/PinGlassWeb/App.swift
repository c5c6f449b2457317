import HTTPCore
import PinGlass
import Logging
import Postgres
import LibCrypto

/// The HTTP application: routes a `Request` to its handler (through its group's middleware,
/// `RouteTable`) and turns every outcome into a `Response` with `X-Request-Id`. Errors never
/// leak internals: an `APIError` is rendered as is, a database outage becomes 503, anything
/// else 500 (logged with the request id). Around everything, each answer is counted in the
/// pool's shared table under the route pattern the router matched (`unmatched` when none),
/// never the raw path.
///
/// ```swift
/// let app = App(deps: deps)
/// let response = app.handle(Request(method: "GET", path: "/api/pricing"))
/// ```
public final class App {
    public let deps: Dependencies
    let router: Router
    let log: Logger
    /// The router behind the middleware that wraps every request, matched or not.
    let respond: Router.Handler

    /// Middleware around every request, outermost first; a route group's own middleware
    /// (`RouteTable`) runs inside, once the route is known.
    static let middleware: [any Middleware] = [RequestCounting()]

    /// `log` is the logger every request's logger derives from (tests pass a capturing one).
    public init(deps: Dependencies, log: Logger = Logger(label: "http")) {
        self.deps = deps
        self.log = log
        let router = RouteTable.router()
        self.router = router
        let dispatch: Router.Handler = { ctx in Self.dispatch(router, ctx) }
        respond = Self.middleware.reversed().reduce(dispatch) { next, m in { ctx in try m.handle(ctx, next: next) } }
    }

    public func handle(_ request: Request) -> Response {
        var log = self.log
        let requestID = request.requestID.isEmpty ? String(Crypto.uuid().prefix(8)) : request.requestID
        log[metadataKey: "request_id"] = "\(requestID)"
        let ctx = Context(request: request, deps: deps, log: log, now: deps.clock())
        ctx.requestID = requestID
        var response = Self.run(respond, ctx, log)
        if response.status >= 500 { countServerError(log) }
        response.headers.append("X-Request-Id", requestID)
        if request.method == "HEAD" { response.body = [] }
        return response
    }

    /// The matched route's handler (behind its group's middleware), or the router's 404/405;
    /// every error rendered as an answer, and the request's database work finished.
    static func dispatch(_ router: Router, _ ctx: Context) -> Response {
        let request = ctx.request
        let response: Response
        switch router.match(method: request.method, path: request.path) {
        case .notFound:
            response = APIError.notFound("no such endpoint: \(request.method) \(request.path)").response
        case .methodNotAllowed(let allowed):
            response = APIError.methodNotAllowed(allowed).response
        case .found(let handler, let params, let index):
            ctx.pathParams = params
            ctx.routeIndex = index
            ctx.route = router.route(index)
            response = run(handler, ctx, ctx.log)
        }
        ctx.deps.database.finishRequest()
        return response
    }

    /// Counts a 5xx answer for the sweep's alert (`ServerErrors`), in its own statement after
    /// the request's work is over. Not when the database is why the answer is 5xx: it cannot
    /// be counted there, and trying to reconnect would only slow the answer down.
    func countServerError(_ log: Logger) {
        guard deps.database.isConnected else { return }
        do {
            try ServerErrors.record(deps.database.connection())
        } catch {
            log.warning("could not count a 5xx answer", metadata: ["error": "\(error)"])
        }
        deps.database.finishRequest()
    }

    static func run(_ handler: Router.Handler, _ ctx: Context, _ log: Logger) -> Response {
        do {
            return try handler(ctx)
        } catch let e as APIError {
            return e.response
        } catch let e where APIError(domain: e) != nil {
            return APIError(domain: e)!.response
        } catch let e as PostgresError where e.isUnavailable {
            log.warning("database unavailable", metadata: ["error": "\(e)", "path": "\(ctx.request.path)"])
            return APIError.unavailable().response
        } catch {
            log.error("handler failed", metadata: ["error": "\(error)", "path": "\(ctx.request.path)"])
            return APIError.internalError.response
        }
    }
}

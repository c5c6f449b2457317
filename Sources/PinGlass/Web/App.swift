import HTTPCore
import Logging
import Postgres
import LibCrypto

/// The HTTP application: routes a `Request` to its handler and turns every outcome into a
/// `Response` with `X-Request-Id`. Errors never leak internals: an `APIError` is rendered as
/// is, a database outage becomes 503, anything else 500 (logged with the request id).
///
/// ```swift
/// let app = App(deps: deps)
/// let response = app.handle(Request(method: "GET", path: "/api/pricing"))
/// ```
public final class App {
    public let deps: Dependencies
    let router: Router
    let log: Logger

    /// `log` is the logger every request's logger derives from (tests pass a capturing one).
    public init(deps: Dependencies, log: Logger = Logger(label: "http")) {
        self.deps = deps
        self.log = log
        self.router = Routes.table()
    }

    public func handle(_ request: Request) -> Response {
        var log = self.log
        let requestID = request.requestID.isEmpty ? String(Crypto.uuid().prefix(8)) : request.requestID
        log[metadataKey: "request_id"] = "\(requestID)"
        var response: Response
        var route: Int?
        switch router.match(method: request.method, path: request.path) {
        case .notFound:
            response = APIError.notFound("no such endpoint: \(request.method) \(request.path)").response
        case .methodNotAllowed(let allowed):
            response = APIError.methodNotAllowed(allowed).response
        case .found(let handler, let params, let index):
            route = index
            let ctx = Context(request: request, deps: deps, log: log, now: deps.clock())
            ctx.pathParams = params
            ctx.requestID = requestID
            response = Self.run(handler, ctx, log)
        }
        deps.database.finishRequest()
        // Counted before the answer leaves: whoever has the answer sees it in /metrics.
        deps.requestMetrics?.record(route: route, status: response.status)
        if response.status >= 500 { countServerError(log) }
        response.headers.append(("X-Request-Id", requestID))
        if request.method == "HEAD" { response.body = [] }
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

import HTTPCore
import PinGlass
import ProviderWire
import Logging
import Postgres
import JSON
import PinGlassConfig

/// Everything a handler needs for one request: the request, the configuration, the
/// database, a logger carrying the request id, and the time (injectable in tests).
public final class Context {
    public let request: Request
    public let deps: Dependencies
    public var pathParams: [String: String] = [:]
    public var log: Logger
    public let now: Double
    /// This request's id (nginx's `$request_id`, or one made up when it has none): also
    /// stored on the payment or job the request makes, so the duties' log lines carry it.
    public internal(set) var requestID = ""
    /// The caller, once `TelegramAuthentication` has validated the init data (the Mini App's
    /// routes); nil elsewhere.
    public internal(set) var telegramUser: TelegramUser?
    /// The operator, once `AdminGuard` found the session the cookie names (the admin pages);
    /// nil elsewhere.
    public internal(set) var admin: AdminSessions.Session?
    /// That session's cookie value (logging out ends it).
    var adminToken: String?
    /// The route the router matched, as `(method, pattern)` (`/api/avatars/:id`).
    public internal(set) var route: (method: String, pattern: String)?
    /// That route's index in the router's table (`RequestMetrics` rows follow it).
    var routeIndex: Int?

    init(request: Request, deps: Dependencies, log: Logger, now: Double) {
        self.request = request
        self.deps = deps
        self.log = log
        self.now = now
    }

    public var config: Config { deps.config }
    public func db() throws -> Connection { try deps.db() }

    /// The body as a JSON object; a 400 that says what is wrong otherwise.
    public func jsonBody() throws -> JSON {
        if let ct = request.header("content-type"), !ct.lowercased().hasPrefix("application/json") {
            throw APIError.unsupportedMediaType("expected Content-Type: application/json")
        }
        let value: JSON
        do { value = try JSON.parse(request.body) } catch let e as JSONParseError {
            throw APIError.validation("malformed JSON body: \(e)")
        }
        guard case .object = value else { throw APIError.validation("the body must be a JSON object") }
        return value
    }

    public func pathInt(_ name: String) throws -> Int {
        guard let s = pathParams[name], let v = Int(s), v > 0 else { throw APIError.notFound() }
        return v
    }
}

import HTTPCore
import PinGlass

/// A route table: method + path pattern (`/api/avatars/:id`) → handler. Routes that share
/// middleware are added in a group; the middleware wraps each of the group's handlers.
///
/// ```swift
/// var router = Router()
/// router.add("GET", "/api/health", HealthRoutes.health)
/// router.group([TelegramAuthentication()]) { r in
///     r.add("GET", "/api/jobs/:id", GenerationRoutes.progressByPath)
/// }
/// ```
public struct Router {
    public typealias Handler = (Context) throws -> Response

    struct Route {
        let method: String
        let pattern: String
        let segments: [Substring]
        let handler: Handler
    }

    private var routes: [Route] = []
    /// The middleware of the group being added (outermost first).
    private var middleware: [any Middleware] = []

    public init() {}

    /// Every route as (method, pattern), in table order (the OpenAPI test reads it).
    public var table: [(method: String, pattern: String)] {
        routes.map { ($0.method, $0.pattern) }
    }

    /// The route at `index` of `table`, as it was added (`/api/avatars/:id`).
    public func route(_ index: Int) -> (method: String, pattern: String) { (routes[index].method, routes[index].pattern) }

    public mutating func add(_ method: String, _ pattern: String, _ handler: @escaping Handler) {
        let wrapped = middleware.reversed().reduce(handler) { next, m in { ctx in try m.handle(ctx, next: next) } }
        routes.append(Route(method: method, pattern: pattern, segments: pattern.split(separator: "/"), handler: wrapped))
    }

    /// Adds the routes `build` adds, each behind `middleware` (inside any enclosing group's).
    public mutating func group(_ middleware: [any Middleware], _ build: (inout Router) -> Void) {
        let outer = self.middleware
        self.middleware = outer + middleware
        build(&self)
        self.middleware = outer
    }

    public enum Match {
        /// The handler, the path parameters, and the route's index in `table`.
        case found(Handler, [String: String], route: Int)
        case methodNotAllowed([String])
        case notFound
    }

    /// `path` must be exactly a route's: one leading `/`, no empty segment (`//`), no
    /// trailing `/`. nginx guards some paths with exact locations (the bank's sender list,
    /// the callbacks' 64 KB body limit, the `/metrics` allow-list) and sends every other
    /// path through its open location; a router that also took `/api/payment/webhook/`
    /// would hand that variant to the handler past those guards. The path is used as nginx
    /// passes it (`DOCUMENT_URI`: already percent-decoded, slashes merged) and never decoded
    /// again here, so `%2577ebhook` stays a different segment.
    public func match(method: String, path: String) -> Match {
        guard path.hasPrefix("/") else { return .notFound }
        let parts = path.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        if parts.contains(where: \.isEmpty) { return .notFound }
        var allowed: [String] = []
        for (i, route) in routes.enumerated() {
            guard let params = Self.bind(route.segments, parts) else { continue }
            if route.method == method || (method == "HEAD" && route.method == "GET") {
                return .found(route.handler, params, route: i)
            }
            allowed.append(route.method)
        }
        return allowed.isEmpty ? .notFound : .methodNotAllowed(allowed)
    }

    private static func bind(_ pattern: [Substring], _ parts: [Substring]) -> [String: String]? {
        guard pattern.count == parts.count else { return nil }
        var params: [String: String] = [:]
        for (p, s) in zip(pattern, parts) {
            if p.hasPrefix(":") { params[String(p.dropFirst())] = String(s) } else if p != s { return nil }
        }
        return params
    }
}

import HTTPCore

/// A route table: method + path pattern (`/api/avatars/:id`) → handler.
///
/// ```swift
/// var router = Router()
/// router.add("GET", "/api/jobs/:id") { ctx in try JobsAPI.show(ctx, id: ctx.pathInt("id")) }
/// ```
public struct Router {
    public typealias Handler = (Context) throws -> Response

    struct Route {
        let method: String
        let segments: [Substring]
        let handler: Handler
    }

    private var routes: [Route] = []

    public init() {}

    /// Every route as (method, pattern), in table order (the OpenAPI test reads it).
    public var table: [(method: String, pattern: String)] {
        routes.map { ($0.method, "/" + $0.segments.joined(separator: "/")) }
    }

    public mutating func add(_ method: String, _ pattern: String, _ handler: @escaping Handler) {
        routes.append(Route(method: method, segments: pattern.split(separator: "/"), handler: handler))
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

import Providers
import HTTPCore
import JSON
import PinGlassConfig
import Postgres
import Logging
import PinGlassTesting
import XCTest
@testable import PinGlass
@testable import PinGlassWeb

/// The route table's groups and their middleware: what runs around which handler.
final class RouteGroupTests: XCTestCase {
    /// Records the order middleware and handlers run in.
    struct Mark: Middleware {
        let name: String
        let trail: Locked<[String]>
        func handle(_ ctx: Context, next: Router.Handler) throws -> Response {
            trail.mutate { $0.append(name) }
            return try next(ctx)
        }
    }

    func testAGroupsMiddlewareWrapsOnlyItsRoutesOutermostFirst() throws {
        let trail = Locked<[String]>([])
        var router = Router()
        router.add("GET", "/open") { _ in trail.mutate { $0.append("open") }; return .text("open") }
        router.group([Mark(name: "outer", trail: trail)]) { r in
            r.group([Mark(name: "inner", trail: trail)]) { r in
                r.add("GET", "/inside/:id") { ctx in trail.mutate { $0.append("inside \(ctx.pathParams["id"] ?? "")") }; return .text("in") }
            }
        }
        router.add("GET", "/after") { _ in trail.mutate { $0.append("after") }; return .text("after") }
        let deps = Dependencies.live(config: try Config.load(environment: ["DATABASE_URL": "postgresql://unused"], envFile: nil), database: Database(url: "", applicationName: "t"))
        for path in ["/open", "/inside/7", "/after"] {
            guard case .found(let handler, let params, _) = router.match(method: "GET", path: path) else { return XCTFail(path) }
            let ctx = Context(request: Request(method: "GET", path: path), deps: deps, log: Logger(label: "t"), now: 0)
            ctx.pathParams = params
            _ = try handler(ctx)
        }
        XCTAssertEqual(trail.value, ["open", "outer", "inner", "inside 7", "after"])
        XCTAssertEqual(router.table.map(\.pattern), ["/open", "/inside/:id", "/after"])
    }

    /// Every Mini App route answers 401 without init data, before its own validation (a
    /// malformed id or body included), and the public and provider routes need none.
    func testEveryMiniAppRouteIsBehindTelegramAuthentication() throws {
        let db = try makeDatabase()
        let app = try InProcessApp(database: db)
        let miniApp = [("POST", "/api/payment/create"), ("GET", "/api/payment/status"), ("POST", "/api/avatars"),
                       ("GET", "/api/avatars"), ("GET", "/api/avatars/x"), ("PATCH", "/api/avatars/1"),
                       ("DELETE", "/api/avatars/1"), ("POST", "/api/avatars/1/references"),
                       ("GET", "/api/avatars/1/references"), ("DELETE", "/api/avatars/1/references/2"),
                       ("POST", "/api/generate"), ("GET", "/api/generate"), ("GET", "/api/jobs/0"), ("GET", "/api/jobs"),
                       ("GET", "/api/me"), ("PATCH", "/api/me"), ("DELETE", "/api/me/data")]
        for (method, path) in miniApp {
            let res = try app.client.execute(method, path, headers: [("Content-Type", "application/json")], body: Array("not json".utf8))
            XCTAssertEqual(res.status, 401, "\(method) \(path): \(res.text)")
            XCTAssertEqual(try JSON.parse(res.body)["error"]?["code"]?.stringValue, "UNAUTHORIZED", "\(method) \(path)")
        }
        XCTAssertEqual(Set(try RouteTable.router().table.filter { route in
            try app.client.execute(route.method, route.pattern.replacingOccurrences(of: ":id", with: "1")
                .replacingOccurrences(of: ":refId", with: "2")).status == 401
        }.map { "\($0.method) \($0.pattern)" }).count, miniApp.count, "no other route asks for init data")
        XCTAssertEqual(try app.client.get("/api/pricing").status, 200)
    }
}

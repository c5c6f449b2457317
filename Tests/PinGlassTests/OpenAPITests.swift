import XCTest
import HTTPCore
import PinGlassTestSupport
@testable import PinGlass

final class OpenAPITests: XCTestCase {
    var db: TestDatabase!
    var app: InProcessApp!
    var spec: OpenAPIValidator!

    override func setUpWithError() throws {
        db = try TestDatabase()
        var env = Fixtures.env(simURL: "http://127.0.0.1:9")
        env["PUBLIC_BASE_URL"] = "http://127.0.0.1:8080"
        app = try InProcessApp(database: db, env: env)
        let doc = app.get("/api/openapi.json")
        XCTAssertEqual(doc.status, 200)
        spec = OpenAPIValidator(document: try JSON.parse(doc.body))
    }
    override func tearDown() { db?.drop() }

    func testEveryRouteIsDocumentedAndEveryDocumentedRouteExists() throws {
        let routes = Set(Routes.table().table.map { "\($0.method.lowercased()) \($0.pattern)" })
        var documented = Set<String>()
        for (path, ops) in spec.document["paths"]?.objectValue ?? [] {
            for (method, _) in ops.objectValue ?? [] { documented.insert("\(method) \(path)") }
        }
        XCTAssertEqual(routes, documented)
        XCTAssertEqual(spec.document["openapi"]?.stringValue, "3.0.3")
    }

    func testAnswersMatchTheDocument() throws {
        func assertMatches(_ path: String, _ method: String, _ res: Response, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertEqual(spec.problems(path: path, method: method, status: res.status, body: res.body), [],
                           "\(method) \(path) \(res.status): \(res.bodyText)", file: file, line: line)
        }
        assertMatches("/api/pricing", "GET", app.get("/api/pricing"))
        assertMatches("/api/styles", "GET", app.get("/api/styles"))
        assertMatches("/api/health", "GET", app.get("/api/health"))
        let user = Dictionary(uniqueKeysWithValues: [Fixtures.auth(telegramID: 4242)])
        assertMatches("/api/payment/status", "GET", app.get("/api/payment/status", headers: user))
        assertMatches("/api/payment/status", "GET", app.get("/api/payment/status", query: "payment_id=nope", headers: user))
        assertMatches("/api/payment/create", "POST", app.post("/api/payment/create", body: #"{"tierId":"starter"}"#))
        var withUser = user
        withUser["Content-Type"] = "application/json"
        assertMatches("/api/payment/create", "POST", app.post("/api/payment/create", body: #"{"tierId":"nope"}"#, headers: withUser))
        // The bank at 127.0.0.1:9 does not answer: a documented 502.
        let unanswered = app.post("/api/payment/create", body: #"{"tierId":"starter"}"#, headers: withUser)
        XCTAssertEqual(unanswered.status, 502)
        assertMatches("/api/payment/create", "POST", unanswered)
        // And the validator does find problems.
        XCTAssertFalse(spec.problems(path: "/api/pricing", method: "GET", status: 200, body: Array(#"{"tiers":[{"id":1}]}"#.utf8)).isEmpty)
        XCTAssertFalse(spec.problems(path: "/api/nope", method: "GET", status: 200, body: []).isEmpty)
    }
}

import XCTest
import HTTPCore
import PinGlassTesting
import JSON
import LibCrypto
@testable import PinGlass
@testable import PinGlassWeb

final class OpenAPITests: DatabaseTestCase {
    var app: InProcessApp!
    var spec: OpenAPIValidator!

    override func setUpWithError() throws {
        try super.setUpWithError()
        var env = Fixtures.env(simURL: "http://127.0.0.1:9")
        env["PUBLIC_BASE_URL"] = "http://127.0.0.1:8080"
        app = try InProcessApp(database: db, env: env)
        let doc = try app.client.get("/api/openapi.json")
        XCTAssertEqual(doc.status, 200)
        spec = OpenAPIValidator(document: try JSON.parse(doc.body))
    }

    func testEveryRouteIsDocumentedAndEveryDocumentedRouteExists() throws {
        // The router writes `:id`, OpenAPI `{id}`.
        let routes = Set(RouteTable.router().table.map { route in
            "\(route.method.lowercased()) " + route.pattern.split(separator: "/", omittingEmptySubsequences: false)
                .map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }.joined(separator: "/")
        })
        var documented = Set<String>()
        for (path, ops) in spec.document["paths"]?.objectValue ?? [] {
            for (method, _) in ops.objectValue ?? [] { documented.insert("\(method) \(path)") }
        }
        XCTAssertEqual(routes, documented)
        XCTAssertEqual(spec.document["openapi"]?.stringValue, "3.0.3")
    }

    func testAnswersMatchTheDocument() throws {
        func assertMatches(_ path: String, _ method: String, _ res: TestClient.Response, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertEqual(spec.problems(path: path, method: method, status: res.status, body: res.body), [],
                           "\(method) \(path) \(res.status): \(res.text)", file: file, line: line)
        }
        assertMatches("/api/pricing", "GET", try app.client.get("/api/pricing"))
        assertMatches("/api/styles", "GET", try app.client.get("/api/styles"))
        assertMatches("/api/health", "GET", try app.client.get("/api/health"))
        assertMatches("/metrics", "GET", try app.client.get("/metrics"))
        let user = [Fixtures.auth(telegramID: 4242)]
        assertMatches("/api/payment/status", "GET", try app.client.get("/api/payment/status", headers: user))
        assertMatches("/api/payment/status", "GET", try app.client.get("/api/payment/status", query: "payment_id=nope", headers: user))
        assertMatches("/api/payment/create", "POST", try app.client.post("/api/payment/create", body: #"{"tierId":"starter"}"#))
        let withUser = user + [("Content-Type", "application/json")]
        assertMatches("/api/payment/create", "POST", try app.client.post("/api/payment/create", body: #"{"tierId":"nope"}"#, headers: withUser))
        // The bank at 127.0.0.1:9 does not answer: a documented 502.
        let unanswered = try app.client.post("/api/payment/create", body: #"{"tierId":"starter"}"#, headers: withUser)
        XCTAssertEqual(unanswered.status, 502)
        assertMatches("/api/payment/create", "POST", unanswered)
        // Avatars, references, generate and jobs.
        func call(_ method: String, _ path: String, _ body: String = "", type: String = "application/json") throws -> TestClient.Response {
            try app.client.execute(method, path, headers: user + [("Content-Type", type)], body: Array(body.utf8))
        }
        let created = try call("POST", "/api/avatars", #"{"name":"me"}"#)
        assertMatches("/api/avatars", "POST", created)
        let id = try XCTUnwrap(JSON.parse(created.body)["avatar"]?["id"]?.intValue)
        assertMatches("/api/avatars", "GET", try call("GET", "/api/avatars"))
        assertMatches("/api/avatars/{id}", "GET", try call("GET", "/api/avatars/\(id)"))
        assertMatches("/api/avatars/{id}", "GET", try call("GET", "/api/avatars/999999"))
        assertMatches("/api/avatars/{id}", "PATCH", try call("PATCH", "/api/avatars/\(id)", #"{"name":"renamed"}"#))
        let jpeg = "data:image/jpeg;base64," + Crypto.base64(GenerationFixtures.jpeg(5))
        assertMatches("/api/avatars/{id}/references", "POST", try call("POST", "/api/avatars/\(id)/references", #"{"referenceImages":["\#(jpeg)"]}"#))
        assertMatches("/api/avatars/{id}/references", "GET", try call("GET", "/api/avatars/\(id)/references"))
        assertMatches("/api/generate", "POST", try call("POST", "/api/generate", #"{"avatarId":\#(id)}"#))
        let c = try db.connect()
        let userID = try c.query("SELECT user_id FROM avatars WHERE id = $1", [id])[0].requiredInt("user_id")
        try c.execute("""
            INSERT INTO payments (user_id, order_id, terminal, terminal_key, tbank_payment_id, tier, photo_count, amount_kopecks, status, redirect_due_at)
            VALUES ($1, 'o-openapi', 'test', 'k', 'b-openapi', 'starter', 7, 49900, 'succeeded', now())
            """, [userID])
        let started = try call("POST", "/api/generate", #"{"avatarId":\#(id)}"#)
        XCTAssertEqual(started.status, 202, started.text)
        assertMatches("/api/generate", "POST", started)
        let job = try XCTUnwrap(JSON.parse(started.body)["jobId"]?.intValue)
        assertMatches("/api/jobs/{id}", "GET", try call("GET", "/api/jobs/\(job)"))
        assertMatches("/api/generate", "GET", try app.client.get("/api/generate", query: "job_id=\(job)", headers: user))
        assertMatches("/api/avatars/{id}", "GET", try call("GET", "/api/avatars/\(id)"))
        assertMatches("/api/avatars/{id}", "DELETE", try call("DELETE", "/api/avatars/\(id)"))
        // The account and the job list.
        assertMatches("/api/jobs", "GET", try call("GET", "/api/jobs"))
        assertMatches("/api/me", "GET", try call("GET", "/api/me"))
        assertMatches("/api/me", "PATCH", try call("PATCH", "/api/me", #"{"email":"ann@example.com","consent":true}"#))
        assertMatches("/api/me", "PATCH", try call("PATCH", "/api/me", #"{"email":"nope"}"#))
        let running = try call("DELETE", "/api/me/data")
        XCTAssertEqual(running.status, 409, "the job above is queued")
        assertMatches("/api/me/data", "DELETE", running)
        let fresh = [Fixtures.auth(telegramID: 4244)]
        assertMatches("/api/me/data", "DELETE", try app.client.execute("DELETE", "/api/me/data", headers: fresh))
        assertMatches("/api/jobs", "GET", try app.client.get("/api/jobs", headers: fresh))
        // And the validator does find problems.
        XCTAssertFalse(spec.problems(path: "/api/pricing", method: "GET", status: 200, body: Array(#"{"tiers":[{"id":1}]}"#.utf8)).isEmpty)
        XCTAssertFalse(spec.problems(path: "/api/nope", method: "GET", status: 200, body: []).isEmpty)
    }

    /// The original client's generate fields are documented, and its refusal is a documented answer.
    func testGenerateDocumentsTheOriginalClientsFields() throws {
        let props = spec.document["components"]?["schemas"]?["GenerateRequest"]?["properties"]
        for field in ["avatarId", "styleId", "paymentId", "useStoredReferences", "referenceImages", "telegramUserId"] {
            XCTAssertNotNil(props?[field], field)
        }
        let auth = Fixtures.auth(telegramID: 4343)
        let forged = try app.client.post("/api/generate", body: #"{"avatarId":1,"telegramUserId":1}"#,
                              headers: [auth, ("Content-Type", "application/json")])
        XCTAssertEqual(forged.status, 403)
        XCTAssertEqual(spec.problems(path: "/api/generate", method: "POST", status: forged.status, body: forged.body), [])
    }
}

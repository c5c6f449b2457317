import XCTest
import HTTPCore
import Logging
import PinGlassTesting
import JSON
import PinGlassConfig
@testable import PinGlass
@testable import PinGlassWeb

final class AppTests: DatabaseTestCase {
    var app: InProcessApp!
    override func setUpWithError() throws {
        try super.setUpWithError()
        app = try InProcessApp(database: db)
    }

    func testPricingMatchesTheContract() throws {
        let res = try app.client.get("/api/pricing")
        XCTAssertEqual(res.status, 200)
        XCTAssertEqual(res.header("Content-Type"), "application/json; charset=utf-8")
        XCTAssertEqual(res.header("X-Request-Id"), "test-req")
        let tiers = try XCTUnwrap(try JSON.parse(res.body)["tiers"]?.arrayValue)
        XCTAssertEqual(tiers.map { $0["id"]?.stringValue }, ["starter", "standard", "premium"])
        XCTAssertEqual(tiers.map { $0["photos"]?.intValue }, [7, 15, 23])
        XCTAssertEqual(tiers.map { $0["amount"]?.intValue }, [49900, 99900, 149900])
        XCTAssertEqual(tiers.map { $0["amountRub"]?.intValue }, [499, 999, 1499])
    }

    func testPricingIsCachedPerProcessThenRefreshed() throws {
        var now = 1000.0
        app.deps.cache.monotonic = { now }
        XCTAssertEqual(try app.client.get("/api/pricing").status, 200)
        try db.connect().execute("UPDATE tiers SET amount_kopecks = 55500 WHERE id = 'starter'")
        XCTAssertTrue(try app.client.get("/api/pricing").text.contains("49900"), "served from the cache")
        now += CatalogueRoutes.cacheSeconds + 1
        XCTAssertTrue(try app.client.get("/api/pricing").text.contains("55500"), "refreshed after expiry")
    }

    func testStyles() throws {
        let styles = try XCTUnwrap(try JSON.parse(try app.client.get("/api/styles").body)["styles"]?.arrayValue)
        let pinglass = try XCTUnwrap(styles.first { $0["id"]?.stringValue == "pinglass" })
        XCTAssertGreaterThanOrEqual(pinglass["prompts"]?.intValue ?? 0, 23)
        XCTAssertNotNil(pinglass["name"]?.stringValue)
        XCTAssertNotNil(pinglass["description"]?.stringValue)
    }

    func testHealthReportsEachPartWithoutSecrets() throws {
        let a = try InProcessApp(database: db, env: ["TBANK_TEST_TERMINAL_KEY": "DEMO", "TBANK_TEST_PASSWORD": "s3cret-pw",
                                                     "KIE_API_KEY": "kie-secret", "MEDIA_KEY_SECRET": "media-secret-0123456789"])
        let res = try a.client.get("/api/health")
        XCTAssertEqual(res.status, 200)
        let v = try JSON.parse(res.body)
        XCTAssertEqual(v["status"]?.stringValue, "ok")
        XCTAssertEqual(v["checks"]?["database"]?["ok"], true)
        XCTAssertEqual(v["checks"]?["migrations"]?["pending"]?.intValue, 0)
        XCTAssertEqual(v["checks"]?["tbank"]?["configured"], true)
        XCTAssertEqual(v["checks"]?["tbank"]?["mode"]?.stringValue, "test")
        XCTAssertEqual(v["checks"]?["kie"]?["configured"], true)
        XCTAssertEqual(v["checks"]?["telegram"], ["configured": false, "alertsChat": false])
        let telegram = try JSON.parse(try InProcessApp(database: db, env: ["TELEGRAM_BOT_TOKEN": "7000000001:tg-secret", "ADMIN_TELEGRAM_CHAT_ID": "42"])
            .client.get("/api/health").body)
        XCTAssertEqual(telegram["checks"]?["telegram"], ["configured": true, "alertsChat": true])
        XCTAssertNotNil(v["checks"]?["workers"]?["poll-kie"])
        XCTAssertFalse(res.text.contains("s3cret-pw"))
        XCTAssertFalse(res.text.contains("kie-secret"))
        XCTAssertFalse(res.text.contains("DEMO"))
        XCTAssertEqual(v["checks"]?["storage"], ["ok": true, "backend": "fs", "writable": true, "signingKey": true])
        XCTAssertFalse(res.text.contains("media-secret"))
    }

    /// Storage reports the configured backend honestly, without a network call: fs needs a
    /// writable folder, s3 complete settings, both MEDIA_KEY_SECRET (else links do not open).
    func testHealthReportsTheConfiguredStorage() throws {
        func storage(_ env: [String: String]) throws -> (String?, JSON?) {
            let v = try JSON.parse(try InProcessApp(database: db, env: env).client.get("/api/health").body)
            return (v["status"]?.stringValue, v["checks"]?["storage"])
        }
        let key = ["MEDIA_KEY_SECRET": "media-secret-0123456789"]
        let noKey = try storage([:])
        XCTAssertEqual(noKey.0, "degraded")
        XCTAssertEqual(noKey.1, ["ok": false, "backend": "fs", "writable": true, "signingKey": false])
        let readOnly = try storage(key.merging(["STORAGE_DIR": "/nonexistent/media"]) { $1 })
        XCTAssertEqual(readOnly.0, "degraded")
        XCTAssertEqual(readOnly.1?["writable"], false)
        // An endpoint nobody listens on: health does not call it.
        let s3 = try storage(key.merging(["STORAGE": "s3", "S3_ENDPOINT": "http://127.0.0.1:1", "S3_BUCKET": "b",
                                          "S3_ACCESS_KEY_ID": "AKID", "S3_SECRET_ACCESS_KEY": "s3-secret-value"]) { $1 })
        XCTAssertEqual(s3.0, "ok")
        XCTAssertEqual(s3.1, ["ok": true, "backend": "s3", "configured": true, "signingKey": true])
    }

    func testHealthIsDegradedWithPendingMigrations() throws {
        try db.connect().execute("DELETE FROM schema_migrations WHERE version = '0002'")
        let v = try JSON.parse(try app.client.get("/api/health").body)
        XCTAssertEqual(v["status"]?.stringValue, "degraded")
        XCTAssertEqual(v["checks"]?["migrations"]?["pending"]?.intValue, 1)
    }

    func testHealthIsDownWhenTheDatabaseIsUnreachable() throws {
        let config = try Config(variables: ["DATABASE_URL": "host=/nonexistent port=1 dbname=x"])
        let down = try InProcessApp(config: config)
        let res = try down.client.get("/api/health")
        XCTAssertEqual(res.status, 503)
        XCTAssertEqual(try JSON.parse(res.body)["status"]?.stringValue, "down")
        // Endpoints needing the database answer 503 with the error envelope.
        let pricing = try down.client.get("/api/pricing")
        XCTAssertEqual(pricing.status, 503)
        XCTAssertEqual(try JSON.parse(pricing.body)["error"]?["code"]?.stringValue, "SERVICE_UNAVAILABLE")
        XCTAssertNotNil(pricing.header("Retry-After"))
    }

    func testUnknownPathIs404AndWrongMethodIs405() throws {
        let nf = try app.client.get("/api/nope")
        XCTAssertEqual(nf.status, 404)
        XCTAssertEqual(try JSON.parse(nf.body)["error"]?["code"]?.stringValue, "NOT_FOUND")
        XCTAssertEqual(try JSON.parse(nf.body)["success"], false)
        let na = try app.client.post("/api/pricing", body: "{}")
        XCTAssertEqual(na.status, 405)
        XCTAssertEqual(na.header("Allow"), "GET")
        let head = try app.client.execute("HEAD", "/api/pricing")
        XCTAssertEqual(head.status, 200)
        XCTAssertTrue(head.body.isEmpty)
    }

    func testMalformedJSONIs400SayingWhat() throws {
        func ctx(_ body: String, contentType: String = "application/json") -> Context {
            Context(request: Request(method: "POST", path: "/x", headers: ["Content-Type": contentType], body: Array(body.utf8)),
                    deps: app.deps, log: Logger(label: "t"), now: 0)
        }
        XCTAssertThrowsError(try ctx(#"{"tierId": }"#).jsonBody()) { error in
            let e = error as? APIError
            XCTAssertEqual(e?.status, 400)
            XCTAssertEqual(e?.code, "VALIDATION_ERROR")
            XCTAssertTrue(e?.message.contains("byte 11") ?? false, e?.message ?? "")
        }
        XCTAssertThrowsError(try ctx("[1]").jsonBody()) { XCTAssertEqual(($0 as? APIError)?.message, "the body must be a JSON object") }
        XCTAssertThrowsError(try ctx("").jsonBody()) { XCTAssertEqual(($0 as? APIError)?.status, 400) }
        XCTAssertThrowsError(try ctx("{}", contentType: "text/plain").jsonBody()) { XCTAssertEqual(($0 as? APIError)?.status, 415) }
        XCTAssertEqual(try ctx(#"{"a":1}"#).jsonBody()["a"]?.intValue, 1)
    }

    func testHandlerErrorsBecome500WithoutInternals() throws {
        struct SecretFailure: Error, CustomStringConvertible { var description: String { "SELECT password FROM admin_users" } }
        let c = Context(request: Request(method: "GET", path: "/x"), deps: app.deps, log: Logger(label: "t"), now: 0)
        let res = App.run({ _ in throw SecretFailure() }, c, Logger(label: "t"))
        XCTAssertEqual(res.status, 500)
        XCTAssertEqual(try JSON.parse(res.body)["error"]?["code"]?.stringValue, "INTERNAL_ERROR")
        XCTAssertFalse(res.bodyText.contains("SELECT"))
    }

    func testEveryRequestEndsWithTheConnectionIdle() throws {
        let conn = try app.deps.database.connection()
        try conn.execute("BEGIN")
        _ = try app.client.get("/api/styles")
        XCTAssertTrue(conn.isIdle)
    }
}

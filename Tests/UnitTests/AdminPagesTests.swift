import Foundation
import HTTPCore
import LibCrypto
import Logging
import PinGlassTesting
import Postgres
import XCTest
@testable import PinGlass
@testable import PinGlassWeb

/// The operator's pages in process (docs/admin.md): sessions, CSRF, roles, lockout, expiry
/// and the audit trail, route by route.
final class AdminPagesTests: XCTestCase {
    var db: TestDatabase!
    var app: InProcessApp!
    var clock: TestClock!
    var c: Connection!
    static let password = "correct horse battery"

    override func setUpWithError() throws {
        db = try makeDatabase()
        clock = TestClock(now: Date().timeIntervalSince1970.rounded())
        app = try InProcessApp(database: db)
        app.deps.clock.now = clock.read
        c = try db.connect()
        try AdminAccounts.create(c, login: "ops", role: .admin, password: Self.password, actor: "cli:test")
        try AdminAccounts.create(c, login: "watcher", role: .viewer, password: Self.password, actor: "cli:test")
    }

    override func tearDown() { c?.close() }

    func browser(_ address: String = "10.0.0.7") -> AdminBrowser { AdminBrowser(client: app.client.from(address)) }

    /// The open routes: the login form and the style sheet. Every other `/admin` route is
    /// behind `AdminGuard`.
    static let open: Set<String> = ["GET /admin/login", "POST /admin/login", "GET /admin/admin.css"]
    static let everyRoleMayPost: Set<String> = ["POST /admin/logout", "POST /admin/logout-everywhere"]
    var adminRoutes: [(method: String, pattern: String)] {
        RouteTable.router().table.filter { $0.pattern == "/admin" || $0.pattern.hasPrefix("/admin/") }
            .filter { !Self.open.contains("\($0.method) \($0.pattern)") }
    }

    func path(_ pattern: String) -> String { pattern.replacingOccurrences(of: ":id", with: "1") }

    func testEveryAdminRouteRedirectsToTheLoginWithoutASession() throws {
        XCTAssertTrue(adminRoutes.contains { $0 == ("GET", "/admin") } && adminRoutes.contains { $0 == ("GET", "/admin/audit") })
        var b = browser()
        b.cookies["pinglass_admin"] = "forged-or-expired"
        for r in adminRoutes {
            for client in [browser(), b] {
                var client = client
                let res = r.method == "GET" ? try client.get(path(r.pattern)) : try client.post(path(r.pattern), csrf: "x")
                XCTAssertEqual(res.status, 303, "\(r.method) \(r.pattern)")
                XCTAssertEqual(res.header("location"), "/admin/login", "\(r.method) \(r.pattern)")
            }
        }
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM admin_audit WHERE action <> 'admin.create-user'")[0].requiredInt("n"), 0)
    }

    func testLoginShowsTheDashboardInRoublesAndLogoutEndsTheSession() throws {
        let p = try Fixtures.pendingPayment(c, telegramID: 91_001, amount: 49_900, status: "succeeded")
        try c.execute("UPDATE payments SET paid_at = to_timestamp($2::float8) - interval '1 hour' WHERE id = $1", [p.id, clock.now])
        var b = browser()
        let form = try b.get("/admin/login")
        XCTAssertEqual(form.status, 200)
        XCTAssertTrue(form.text.contains(#"name="username""#) && form.text.contains(#"name="password""#), form.text)
        let loginCookie = try XCTUnwrap(form.headerValues("set-cookie").first { $0.hasPrefix("pinglass_login_csrf=") })
        XCTAssertTrue(loginCookie.contains("HttpOnly; Secure; SameSite=Strict"), loginCookie)

        let res = try b.post("/admin/login", [("username", "ops"), ("password", Self.password)])
        XCTAssertEqual(res.status, 303, res.text)
        XCTAssertEqual(res.header("location"), "/admin")
        let session = try XCTUnwrap(res.headerValues("set-cookie").first { $0.hasPrefix("pinglass_admin=") })
        for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/admin"] { XCTAssertTrue(session.contains(attribute), session) }
        let token = try XCTUnwrap(b.cookies["pinglass_admin"])
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM admin_sessions WHERE token_hash = decode($1, 'hex')",
                                   [Crypto.sha256Hex(token)])[0].requiredInt("n"), 1, "only the token's hash is stored")

        let dash = try b.get("/admin")
        XCTAssertEqual(dash.status, 200, dash.text)
        XCTAssertTrue(dash.text.contains("499 ₽"), dash.text)
        XCTAssertTrue(dash.text.contains("generation_tasks"), dash.text)
        XCTAssertEqual(dash.header("cache-control"), "no-store")
        XCTAssertNotNil(dash.header("content-security-policy"))
        XCTAssertEqual(try b.get("/admin/login").header("location"), "/admin", "logged in: the form sends to the dashboard")

        XCTAssertEqual(try b.post("/admin/logout", csrf: .some(nil)).status, 403, "no CSRF token")
        XCTAssertEqual(try b.get("/admin").status, 200, "still logged in")
        let out = try b.post("/admin/logout")
        XCTAssertEqual(out.status, 303)
        XCTAssertEqual(out.header("location"), "/admin/login")
        XCTAssertTrue(out.headerValues("set-cookie").contains { $0.hasPrefix("pinglass_admin=;") && $0.contains("Max-Age=0") })
        var stale = browser()
        stale.cookies["pinglass_admin"] = token
        XCTAssertEqual(try stale.get("/admin").status, 303, "the old cookie is dead")
        let audit = try c.query("SELECT actor, action, address, request_id FROM admin_audit WHERE actor = 'ops' ORDER BY id")
        XCTAssertEqual(audit.map { "\($0.requiredString("actor")) \($0.requiredString("action")) \($0.string("address") ?? "-") \($0.string("request_id") ?? "-")" },
                       ["ops admin.login 10.0.0.7 test-req", "ops admin.logout 10.0.0.7 test-req"])
    }

    func testCSRFMissingOrWrongIsRefused() throws {
        var b = browser()
        _ = try b.get("/admin/login")
        XCTAssertEqual(try b.post("/admin/login", [("username", "ops"), ("password", Self.password)], csrf: .some(nil)).status, 403)
        XCTAssertEqual(try b.post("/admin/login", [("username", "ops"), ("password", Self.password)], csrf: "wrong").status, 403)
        var noCookie = browser()
        XCTAssertEqual(try noCookie.post("/admin/login", [("username", "ops"), ("password", Self.password)], csrf: "abc").status, 403)
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM admin_sessions")[0].requiredInt("n"), 0)

        XCTAssertEqual(try b.login("ops", Self.password).status, 303)
        for route in adminRoutes where route.method != "GET" {
            XCTAssertEqual(try b.post(path(route.pattern), csrf: .some(nil)).status, 403, "\(route.pattern) without a token")
            XCTAssertEqual(try b.post(path(route.pattern), csrf: "not-the-token").status, 403, "\(route.pattern) with a wrong one")
        }
        // A token of another session does not do either.
        var other = browser()
        XCTAssertEqual(try other.login("ops", Self.password).status, 303)
        let foreign = try XCTUnwrap(other.csrf)
        XCTAssertEqual(try b.post("/admin/logout", csrf: foreign).status, 403)
        XCTAssertEqual(try b.get("/admin").status, 200)
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM admin_sessions")[0].requiredInt("n"), 2)
    }

    /// A viewer sees every page and is refused every state-changing request but logging out;
    /// the guard never lets a refused one reach its handler.
    func testAViewerSeesEverythingAndChangesNothing() throws {
        var v = browser()
        XCTAssertEqual(try v.login("watcher", Self.password).status, 303)
        for route in adminRoutes where route.method == "GET" {
            XCTAssertEqual(try v.get(path(route.pattern)).status, 200, route.pattern)
        }
        var checked = Set<String>()
        for route in adminRoutes where route.method != "GET" && !Self.everyRoleMayPost.contains("\(route.method) \(route.pattern)") {
            let res = try v.post(path(route.pattern))
            XCTAssertEqual(res.status, 403, "\(route.method) \(route.pattern)")
            checked.insert(route.pattern)
        }
        XCTAssertEqual(Set(adminRoutes.filter { $0.method != "GET" }.map { "\($0.method) \($0.pattern)" }).subtracting(checked.map { "POST \($0)" }),
                       Self.everyRoleMayPost, "every other action was refused above")

        // The guard of the admins' group itself: a viewer's action never reaches its handler.
        let ran = Locked(0)
        let guarded: Router.Handler = { ctx in
            try AdminGuard(writers: .admins).handle(ctx) { _ in ran.mutate { $0 += 1 }; return .text("done") }
        }
        func act(_ b: AdminBrowser) throws -> Int {
            let body = "csrf=" + (b.csrf ?? "")
            let request = Request(method: "POST", path: "/admin/anything",
                                  headers: ["Cookie": "pinglass_admin=\(b.cookies["pinglass_admin"] ?? "")",
                                            "Content-Type": "application/x-www-form-urlencoded"], body: Array(body.utf8))
            return try guarded(Context(request: request, deps: app.deps, log: Logger(label: "t"), now: clock.now)).status
        }
        XCTAssertEqual(try act(v), 403)
        XCTAssertEqual(ran.value, 0)
        var a = browser()
        XCTAssertEqual(try a.login("ops", Self.password).status, 303)
        XCTAssertEqual(try act(a), 200)
        XCTAssertEqual(ran.value, 1)

        XCTAssertEqual(try v.post("/admin/logout").status, 303, "a viewer may log out")
    }

    /// The admin routes are counted under their patterns like every route, the guard's own
    /// answers (redirects, 403s) included.
    func testRequestMetricsAreLabelledByTheAdminRoutesPattern() throws {
        app.deps.requestMetrics = try RequestMetrics.forApp()
        var b = browser()
        XCTAssertEqual(try b.get("/admin").status, 303)
        XCTAssertEqual(try b.login("ops", Self.password).status, 303)
        XCTAssertEqual(try b.post("/admin/logout", csrf: "wrong").status, 403)
        let scrape = PrometheusScrape(try app.client.get("/metrics").text)
        XCTAssertEqual(scrape.problems, [])
        for (series, n) in [(#"{method="GET",route="/admin",status="303"}"#, 1.0), (#"{method="GET",route="/admin",status="200"}"#, 1),
                            (#"{method="GET",route="/admin/login",status="200"}"#, 1), (#"{method="POST",route="/admin/login",status="303"}"#, 1),
                            (#"{method="POST",route="/admin/logout",status="403"}"#, 1)] {
            XCTAssertEqual(scrape["pinglass_http_requests_total" + series], n, series)
        }
    }

    func testLockoutPerAccountAndPerAddressCountedInPostgres() throws {
        var b = browser("10.0.0.8")
        for _ in 0..<AdminSessions.maxFailuresPerAccount {
            XCTAssertEqual(try b.login("ops", "wrong password!!").status, 401)
        }
        let locked = try b.login("ops", Self.password)
        XCTAssertEqual(locked.status, 429, "the right password too, once locked")
        XCTAssertEqual(locked.header("retry-after"), String(AdminSessions.lockoutWindowSeconds))
        var elsewhere = browser("10.0.0.9")
        XCTAssertEqual(try elsewhere.login("ops", Self.password).status, 429, "the account is locked from every address")
        XCTAssertEqual(try elsewhere.login("watcher", Self.password).status, 303, "other accounts are not")
        clock.advance(Double(AdminSessions.lockoutWindowSeconds + 1))
        XCTAssertEqual(try b.login("ops", Self.password).status, 303, "the window passed")
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM admin_login_failures WHERE login = 'ops'")[0].requiredInt("n"), 0,
                       "a login forgets its account's failures")

        // Per address: failures on any names (unknown ones included) lock the address.
        try c.execute("""
            INSERT INTO admin_login_failures (login, address, at)
            SELECT 'guess' || i, '10.0.0.66', to_timestamp($1::float8) FROM generate_series(1, $2) AS i
            """, [clock.now, AdminSessions.maxFailuresPerAddress - 1])
        var attacker = browser("10.0.0.66")
        XCTAssertEqual(try attacker.login("nobody-here", "whatever password").status, 401)
        XCTAssertEqual(try attacker.login("watcher", Self.password).status, 429, "the address is locked")
        var neighbour = browser("10.0.0.67")
        XCTAssertEqual(try neighbour.login("watcher", Self.password).status, 303)
    }

    func testSessionsEndWhenIdleAndAtTheirAbsoluteExpiry() throws {
        var b = browser()
        XCTAssertEqual(try b.login("ops", Self.password).status, 303)
        clock.advance(Double(AdminSessions.idleSeconds - 60))
        XCTAssertEqual(try b.get("/admin").status, 200)
        clock.advance(Double(AdminSessions.idleSeconds - 60))
        XCTAssertEqual(try b.get("/admin/audit").status, 200, "each request moves the idle end on")
        clock.advance(Double(AdminSessions.idleSeconds + 1))
        XCTAssertEqual(try b.get("/admin").status, 303, "idle too long")

        var busy = browser()
        XCTAssertEqual(try busy.login("ops", Self.password).status, 303)
        let start = clock.now
        while clock.now + Double(AdminSessions.idleSeconds / 2) < start + Double(AdminSessions.absoluteSeconds) {
            clock.advance(Double(AdminSessions.idleSeconds / 2))
            XCTAssertEqual(try busy.get("/admin").status, 200, "at \(clock.now - start) s")
        }
        clock.advance(Double(AdminSessions.idleSeconds / 2))
        XCTAssertGreaterThanOrEqual(clock.now - start, Double(AdminSessions.absoluteSeconds))
        XCTAssertEqual(try busy.get("/admin").status, 303, "past the absolute expiry however busy")
    }

    func testLogoutEverywhereEndsEverySessionOfTheAccountAndTheAuditPageShowsItNewestFirst() throws {
        var one = browser("10.0.0.1"), two = browser("10.0.0.2"), viewer = browser("10.0.0.3")
        XCTAssertEqual(try one.login("ops", Self.password).status, 303)
        XCTAssertEqual(try two.login("ops", Self.password).status, 303)
        XCTAssertEqual(try viewer.login("watcher", Self.password).status, 303)
        XCTAssertEqual(try two.post("/admin/logout-everywhere").status, 303)
        XCTAssertEqual(try one.get("/admin").status, 303)
        XCTAssertEqual(try two.get("/admin").status, 303)
        let page = try viewer.get("/admin/audit")
        XCTAssertEqual(page.status, 200, "other accounts keep theirs")
        let everywhere = try XCTUnwrap(page.text.range(of: "admin.logout-everywhere")).lowerBound
        let firstLogin = try XCTUnwrap(page.text.range(of: "admin.login")).lowerBound
        let create = try XCTUnwrap(page.text.range(of: "admin.create-user")).lowerBound
        XCTAssertTrue(everywhere < firstLogin && firstLogin < create, "newest first")
        XCTAssertTrue(page.text.contains("10.0.0.2") && page.text.contains("test-req"), page.text)
        let row = try c.query("SELECT actor, target, address, request_id, details->>'sessionsEnded' AS n FROM admin_audit WHERE action = 'admin.logout-everywhere'")
        XCTAssertEqual(row.map { "\($0.requiredString("actor")) \($0.requiredString("target")) \($0.requiredString("address")) \($0.requiredString("request_id")) \($0.requiredString("n"))" },
                       ["ops ops 10.0.0.2 test-req 2"])
    }
}

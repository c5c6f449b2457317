import HTTPCore
import LibCrypto
import PinGlass
import Platform

/// The operator's pages (docs/admin.md): login and logout, the dashboard, the audit trail.
/// Everything but the login form and the style sheet sits behind `AdminGuard`
/// (`RouteTable`), which has found the session before a handler here runs.
enum AdminRoutes {
    static let loginCookie = "pinglass_login_csrf"

    // MARK: login

    /// The form, with a fresh CSRF token in a hidden field and in a cookie (the POST must
    /// bring both, equal). A live session goes straight to the dashboard.
    static func loginForm(_ ctx: Context) throws -> Response {
        if let token = ctx.cookie(AdminGuard.sessionCookie), try AdminSessions.find(try ctx.db(), token: token, now: ctx.now) != nil {
            return AdminPages.redirect("/admin")
        }
        return form(ctx, status: 200, error: nil, username: "")
    }

    static func form(_ ctx: Context, status: Int, error: String?, username: String, headers: [(String, String)] = []) -> Response {
        let csrf = Crypto.base64URL(Crypto.randomBytes(24))
        var values: [String: Any] = ["csrf": csrf, "username": username]
        if let error { values["error"] = error }
        var response = AdminPages.page(ctx, title: "Log in", template: "login", values, status: status)
        response.headers.append("Set-Cookie", AdminPages.cookie(loginCookie, csrf, path: "/admin/login", maxAge: 3600))
        for (name, value) in headers { response.headers.append(name, value) }
        return response
    }

    static func login(_ ctx: Context) throws -> Response {
        let form = ctx.form
        let username = String((form["username"] ?? "").prefix(64))
        let sent = form["csrf"] ?? "", expected = ctx.cookie(loginCookie) ?? ""
        guard !expected.isEmpty, Crypto.constantTimeEqual(Array(sent.utf8), Array(expected.utf8)) else {
            return self.form(ctx, status: 403, error: "The form expired. Please log in again.", username: username)
        }
        let result = try AdminSessions.login(try ctx.db(), login: username, password: form["password"] ?? "",
                                             address: ctx.request.remoteAddress, userAgent: ctx.request.header("user-agent"),
                                             now: ctx.now, requestID: ctx.requestID)
        switch result {
        case .success(let token, _, let login):
            ctx.log.info("admin logged in", metadata: ["admin": "\(login)"])
            return AdminPages.redirect("/admin", cookies: [
                AdminPages.cookie(AdminGuard.sessionCookie, token, path: "/admin", maxAge: AdminSessions.absoluteSeconds),
                AdminPages.cookie(loginCookie, "", path: "/admin/login", maxAge: 0),
            ])
        case .invalid:
            ctx.log.warning("admin login failed", metadata: ["login": "\(username)"])
            return self.form(ctx, status: 401, error: "Wrong name or password.", username: username)
        case .locked:
            ctx.log.warning("admin login locked out", metadata: ["login": "\(username)"])
            let minutes = AdminSessions.lockoutWindowSeconds / 60
            return self.form(ctx, status: 429, error: "Too many failed logins. Try again in \(minutes) minutes, or ask an admin.",
                             username: username, headers: [("Retry-After", String(AdminSessions.lockoutWindowSeconds))])
        }
    }

    // MARK: logout (any role)

    static func logout(_ ctx: Context) throws -> Response {
        guard let session = ctx.admin, let token = ctx.adminToken else { return AdminPages.redirect("/admin/login") }
        try AdminSessions.logout(try ctx.db(), token: token, session: session, address: ctx.request.remoteAddress, requestID: ctx.requestID)
        return AdminPages.redirect("/admin/login", cookies: [AdminPages.cookie(AdminGuard.sessionCookie, "", path: "/admin", maxAge: 0)])
    }

    static func logoutEverywhere(_ ctx: Context) throws -> Response {
        guard let session = ctx.admin else { return AdminPages.redirect("/admin/login") }
        try AdminAccounts.logoutEverywhere(try ctx.db(), login: session.login, actor: session.login,
                                           address: ctx.request.remoteAddress, requestID: ctx.requestID)
        return AdminPages.redirect("/admin/login", cookies: [AdminPages.cookie(AdminGuard.sessionCookie, "", path: "/admin", maxAge: 0)])
    }

    // MARK: pages

    static func dashboard(_ ctx: Context) throws -> Response {
        let d = try AdminDashboard.read(try ctx.db(), now: ctx.now)
        let values: [String: Any] = [
            "money": d.money.map { ["name": $0.name, "paid": AdminPages.roubles($0.paidKopecks), "payments": $0.payments,
                                    "refunded": AdminPages.roubles($0.refundedKopecks)] as [String: Any] },
            "jobs": d.jobs.map { ["status": $0.status, "count": $0.count] as [String: Any] },
            "queues": d.queues.map { ["queue": $0.queue, "state": $0.state, "count": $0.count] as [String: Any] },
            "asOf": System.utc(ctx.now, .iso8601),
        ]
        return AdminPages.page(ctx, title: "Dashboard", template: "dashboard", values)
    }

    static let auditLimit = 200

    static func audit(_ ctx: Context) throws -> Response {
        let entries = try AdminAudit.recent(try ctx.db(), limit: auditLimit).map { e -> [String: Any] in
            ["at": e.at, "actor": e.actor, "action": e.action, "target": e.target ?? "", "before": e.before ?? "–",
             "after": e.after ?? "–", "details": e.details == "{}" ? "" : e.details, "address": e.address ?? "",
             "requestID": e.requestID ?? ""]
        }
        return AdminPages.page(ctx, title: "Audit log", template: "audit", ["entries": entries, "limit": auditLimit])
    }
}

import HTTPCore
import LibCrypto
import PinGlass
import Platform
import WebURL

/// The admin pages' middleware (docs/admin.md#sessions): every route of an admin group gets
/// it by construction (`RouteTable`). It finds the session the cookie names (none: a redirect
/// to `/admin/login`), and on every request that is not a GET or HEAD checks the CSRF token
/// (form field `csrf` or header `X-CSRF-Token`, the session's own, compared in constant time)
/// and the role: only an admin acts, unless the group is one every role may use (logging
/// out). Refusals are 403 pages. Every answer is marked not to be cached or framed.
struct AdminGuard: Middleware {
    /// Who may send the group's state-changing requests.
    enum Writers { case admins, anyRole }
    let writers: Writers

    static let sessionCookie = "pinglass_admin"

    func handle(_ ctx: Context, next: Router.Handler) throws -> Response {
        var response = try guarded(ctx, next: next)
        AdminPages.secure(&response)
        return response
    }

    func guarded(_ ctx: Context, next: Router.Handler) throws -> Response {
        guard let token = ctx.cookie(Self.sessionCookie),
              let session = try AdminSessions.find(try ctx.db(), token: token, now: ctx.now) else {
            return AdminPages.redirect("/admin/login")
        }
        ctx.admin = session
        ctx.adminToken = token
        if ctx.request.method != "GET" && ctx.request.method != "HEAD" {
            let sent = ctx.form["csrf"] ?? ctx.request.header("x-csrf-token") ?? ""
            guard Crypto.constantTimeEqual(Array(sent.utf8), Array(session.csrfToken.utf8)) else {
                ctx.log.warning("admin request refused: CSRF token missing or wrong", metadata: ["admin": "\(session.login)"])
                return AdminPages.refusal(ctx, status: 403, "This form has expired or did not come from these pages. Reload the page and try again.")
            }
            if writers == .admins && session.role != .admin {
                return AdminPages.refusal(ctx, status: 403, "Your account can view these pages but not change anything.")
            }
        }
        return try next(ctx)
    }
}

extension Context {
    /// A cookie the request carries (the first of that name).
    func cookie(_ name: String) -> String? {
        for header in request.headerValues("cookie") {
            for pair in header.split(separator: ";") {
                let kv = pair.split(separator: "=", maxSplits: 1)
                if kv.count == 2, String(kv[0]).trimmingSpaces() == name { return String(kv[1]).trimmingSpaces() }
            }
        }
        return nil
    }

    /// The body as an HTML form (`application/x-www-form-urlencoded`); the first value of a
    /// name wins; empty for any other body.
    var form: [String: String] {
        guard let ct = request.header("content-type")?.lowercased(), ct.hasPrefix("application/x-www-form-urlencoded"),
              request.body.count <= 64 * 1024 else { return [:] }
        var out: [String: String] = [:]
        for pair in String(decoding: request.body, as: UTF8.self).split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let k = percentDecode(String(kv[0])) else { continue }
            if out[k] == nil { out[k] = kv.count > 1 ? percentDecode(String(kv[1])) ?? "" : "" }
        }
        return out
    }
}

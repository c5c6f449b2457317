import HTTPCore
import Mustache
import PinGlass

/// The admin pages' HTML: swift-mustache templates (`AdminTemplates`) rendered into one
/// layout, the answers' security headers, cookies and redirects, and money in roubles.
enum AdminPages {
    static let library: MustacheLibrary = {
        var library = MustacheLibrary()
        for (name, text) in AdminTemplates.all {
            do { try library.register(text, named: name) } catch { preconditionFailure("admin template \(name): \(error)") }
        }
        return library
    }()

    /// `template` rendered with `values` inside the layout (the signed-in operator's menu
    /// when there is a session).
    static func page(_ ctx: Context, title: String, template: String, _ values: [String: Any], status: Int = 200) -> Response {
        let body = library.render(values, withTemplate: template) ?? ""
        var layout: [String: Any] = ["title": title, "body": body]
        if let admin = ctx.admin {
            layout["admin"] = ["login": admin.login, "role": admin.role.rawValue, "csrf": admin.csrfToken]
        }
        let html = library.render(layout, withTemplate: "layout") ?? ""
        var response = Response(status: status, contentType: "text/html; charset=utf-8", body: html)
        secure(&response)
        return response
    }

    static func refusal(_ ctx: Context, status: Int, _ message: String) -> Response {
        page(ctx, title: status == 403 ? "Not allowed" : "Refused", template: "message", ["message": message], status: status)
    }

    static func redirect(_ location: String, cookies: [String] = []) -> Response {
        var response = Response(status: 303, headers: [("Location", location)])
        for c in cookies { response.headers.append("Set-Cookie", c) }
        secure(&response)
        return response
    }

    /// Not cached, never framed, only this origin's styles and forms.
    static func secure(_ response: inout Response) {
        for (name, value) in [("Cache-Control", "no-store"), ("X-Frame-Options", "DENY"), ("X-Content-Type-Options", "nosniff"),
                              ("Referrer-Policy", "same-origin"),
                              ("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")]
        where response.header(name) == nil {
            response.headers.append(name, value)
        }
    }

    /// A cookie for the admin pages: `HttpOnly; Secure; SameSite=Strict`, always.
    static func cookie(_ name: String, _ value: String, path: String, maxAge: Int? = nil) -> String {
        "\(name)=\(value); Path=\(path); HttpOnly; Secure; SameSite=Strict" + (maxAge.map { "; Max-Age=\($0)" } ?? "")
    }

    /// `499 ₽`, `1234,50 ₽`.
    static func roubles(_ kopecks: Int) -> String {
        let sign = kopecks < 0 ? "-" : "", k = abs(kopecks)
        let whole = k / 100, cents = k % 100
        return cents == 0 ? "\(sign)\(whole) ₽" : "\(sign)\(whole),\(cents < 10 ? "0" : "")\(cents) ₽"
    }

    static func css(_ ctx: Context) throws -> Response {
        var response = Response(status: 200, headers: [("Content-Type", "text/css; charset=utf-8"), ("Cache-Control", "max-age=3600")],
                                body: Array(AdminTemplates.css.utf8))
        secure(&response)
        return response
    }
}

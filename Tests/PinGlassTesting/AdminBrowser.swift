import HTTPCore
import PinGlass
import WebURL

/// A browser's part in front of the admin pages, in process: it keeps the cookies the pages
/// set, reads the hidden CSRF field out of a page and sends forms, from one address.
///
/// ```swift
/// var browser = AdminBrowser(client: app.client.from("10.0.0.7"))
/// let res = try browser.login("ops", "correct horse battery")   // 303 to /admin
/// ```
public struct AdminBrowser {
    public var client: TestClient
    public var cookies: [String: String] = [:]
    /// The CSRF token of the last page that had one.
    public var csrf: String?

    public init(client: TestClient) { self.client = client }

    var cookieHeader: [(String, String)] {
        cookies.isEmpty ? [] : [("Cookie", cookies.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "; "))]
    }

    mutating func keep(_ res: TestClient.Response) {
        for c in res.headerValues("set-cookie") {
            let first = c.split(separator: ";")[0].split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard first.count == 2 else { continue }
            if c.contains("Max-Age=0") { cookies[String(first[0])] = nil } else { cookies[String(first[0])] = String(first[1]) }
        }
        if let token = Self.hiddenCSRF(res.text) { csrf = token }
    }

    /// The value of the first `<input type="hidden" name="csrf" value="…">`.
    public static func hiddenCSRF(_ html: String) -> String? {
        guard let r = html.range(of: #"name="csrf" value=""#) else { return nil }
        return String(html[r.upperBound...].prefix { $0 != "\"" })
    }

    public mutating func get(_ path: String) throws -> TestClient.Response {
        let res = try client.execute("GET", path, headers: cookieHeader)
        keep(res)
        return res
    }

    /// A form POST; `csrf` is sent as the form field unless given (nil: none at all).
    public mutating func post(_ path: String, _ fields: [(String, String)] = [], csrf: String?? = .none) throws -> TestClient.Response {
        let token: String? = csrf ?? self.csrf
        let all = fields + (token.map { [("csrf", $0)] } ?? [])
        let body = all.map { "\(percentEncode($0.0))=\(percentEncode($0.1))" }.joined(separator: "&")
        let res = try client.execute("POST", path, headers: cookieHeader + [("Content-Type", "application/x-www-form-urlencoded")],
                                     body: Array(body.utf8))
        keep(res)
        return res
    }

    /// The login form, then the login; on success the page it redirects to is loaded as a
    /// browser would (its CSRF token is the session's). Returns the login's own answer.
    public mutating func login(_ username: String, _ password: String) throws -> TestClient.Response {
        _ = try get("/admin/login")
        let res = try post("/admin/login", [("username", username), ("password", password)])
        if res.status == 303, let location = res.header("location") { _ = try get(location) }
        return res
    }
}

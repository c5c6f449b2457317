import XCTest
import Foundation
import PinGlassTesting

/// The Mini App's files through real nginx (docs/webapp.md#serving): `/` is index.html with the
/// CSP and nosniff, a module goes out as its gzip copy with an ETag and revalidates to 304,
/// unknown paths are nginx's 404, and the API paths still reach the app.
final class WebAppServingTests: DatabaseTestCase {
    var stack: Stack?
    override func tearDown() {
        stack?.stop()
        super.tearDown()
    }

    struct Answer {
        let status: Int
        let headers: [String: String]
        let body: String
        func header(_ name: String) -> String { headers[name.lowercased()] ?? "" }
    }

    /// curl, keeping the last response's headers (lower-cased names) and body.
    static func fetch(_ url: String, headers: [String] = [], insecure: Bool = false) throws -> Answer {
        let dir = try TestEnvironment.makeTempDir("webapp-fetch")
        var args = ["-s", "-D", dir + "/headers", "-o", dir + "/body", "-w", "%{http_code}"]
        if insecure { args.append("-k") }
        for h in headers { args += ["-H", h] }
        let (_, code, _) = try Subprocess.capture("/usr/bin/curl", args + [url])
        let raw = try String(contentsOfFile: dir + "/headers", encoding: .utf8)
        var fields: [String: String] = [:]
        for line in raw.split(whereSeparator: \.isNewline) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let body = (try? Data(contentsOf: URL(fileURLWithPath: dir + "/body"))).map { String(decoding: $0, as: UTF8.self) } ?? ""
        return Answer(status: Int(code) ?? 0, headers: fields, body: body)
    }

    /// Runs `body` with two hidden files in this checkout's webapp/ (the folder both blocks
    /// serve), one at its top and one in js/, given their URL paths; removes them after.
    static func withHiddenFiles(_ body: ([String]) throws -> Void) throws {
        let root = try TestEnvironment.root() + "/webapp"
        let names = [".hidden-\(getpid())-\(UInt32.random(in: 0...UInt32.max))", "js/.hidden-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).js"]
        defer { for n in names { try? FileManager.default.removeItem(atPath: root + "/" + n) } }
        for n in names { try Data("SECRET=1\n".utf8).write(to: URL(fileURLWithPath: root + "/" + n)) }
        try body(names.map { "/" + $0 })
    }

    /// What every file of the page carries, whatever location served it.
    static func assertPageHeaders(_ a: Answer, file: StaticString = #filePath, line: UInt = #line) {
        let csp = a.header("Content-Security-Policy")
        for part in ["default-src 'none'", "script-src 'self' https://telegram.org;", "style-src 'self';", "connect-src 'self'",
                     "frame-ancestors 'self' https://web.telegram.org"] {
            XCTAssertTrue(csp.contains(part), "CSP lacks \(part): \(csp)", file: file, line: line)
        }
        XCTAssertFalse(csp.contains("unsafe-inline"), csp, file: file, line: line)
        XCTAssertEqual(a.header("X-Content-Type-Options"), "nosniff", file: file, line: line)
        XCTAssertEqual(a.header("Cache-Control"), "no-cache", file: file, line: line)
        XCTAssertFalse(a.header("Referrer-Policy").isEmpty, file: file, line: line)
    }

    func testTheLocalNginxServesTheMiniAppBesideTheAPI() throws {
        let stack = try Stack(database: db, workers: 1)
        self.stack = stack
        let base = stack.baseURL

        for path in ["/", "/?job=12"] {
            let page = try Self.fetch(base + path)
            XCTAssertEqual(page.status, 200, path)
            XCTAssertTrue(page.header("Content-Type").hasPrefix("text/html"), page.header("Content-Type"))
            XCTAssertTrue(page.body.contains(#"<script type="module" src="js/main.js"></script>"#), page.body)
            Self.assertPageHeaders(page)
        }
        let index = try Self.fetch(base + "/")
        XCTAssertFalse(index.body.contains("style=\""), "no inline style attribute")
        XCTAssertTrue(index.header("Content-Security-Policy").contains("img-src 'self' blob: data: http://127.0.0.1:\(stack.port)"),
                      "the media origin is in img-src")

        // A module: its gzip copy (make webapp) with an ETag, then 304 for that ETag.
        let source = try String(contentsOfFile: TestEnvironment.root() + "/webapp/js/main.js", encoding: .utf8)
        let plain = try Self.fetch(base + "/js/main.js")
        XCTAssertEqual(plain.status, 200)
        XCTAssertEqual(plain.body, source)
        XCTAssertTrue(plain.header("Content-Type").hasPrefix("text/javascript"), plain.header("Content-Type"))
        XCTAssertEqual(plain.header("Content-Encoding"), "")
        let gz = try Self.fetch(base + "/js/main.js", headers: ["Accept-Encoding: gzip"])
        XCTAssertEqual(gz.status, 200)
        XCTAssertEqual(gz.header("Content-Encoding"), "gzip", "no webapp/js/main.js.gz? `make webapp` makes it")
        XCTAssertEqual(gz.header("Vary"), "Accept-Encoding")
        Self.assertPageHeaders(gz)
        let etag = gz.header("ETag")
        XCTAssertTrue(etag.hasPrefix("\""), "a strong ETag: \(etag)")
        let again = try Self.fetch(base + "/js/main.js", headers: ["Accept-Encoding: gzip", "If-None-Match: \(etag)"])
        XCTAssertEqual(again.status, 304)
        XCTAssertEqual(again.body, "")
        let changed = try Self.fetch(base + "/js/main.js", headers: ["Accept-Encoding: gzip", "If-None-Match: \"other\""])
        XCTAssertEqual(changed.status, 200)

        let css = try Self.fetch(base + "/app.css")
        XCTAssertEqual(css.status, 200)
        XCTAssertTrue(css.header("Content-Type").hasPrefix("text/css"))

        XCTAssertEqual(try Self.fetch(base + "/favicon.ico").status, 204, "the return pages' favicon request: no error")
        // Unknown files, folders and the compressed copies themselves: nginx's 404.
        for path in ["/nope.js", "/js/", "/js", "/js/main.js.gz", "/index.htm", "/.git/config"] {
            XCTAssertEqual(try Self.fetch(base + path).status, 404, path)
        }
        // Hidden files that do sit in the served folder (a deploy's .env, an editor's leftovers): 404 too.
        try Self.withHiddenFiles { paths in
            for path in paths { XCTAssertEqual(try Self.fetch(base + path).status, 404, path) }
        }
        // The API, the bank's return pages and the reserved admin paths still reach the app.
        let health = try Self.fetch(base + "/api/health")
        XCTAssertEqual(health.status, 200)
        XCTAssertTrue(health.body.contains("\"status\""), health.body)
        XCTAssertTrue(health.header("Content-Security-Policy").isEmpty, "the API's answers are not the page's")
        let unknown = try Self.fetch(base + "/api/no-such-thing/")
        XCTAssertEqual(unknown.status, 404)
        XCTAssertTrue(unknown.body.contains("NOT_FOUND"), unknown.body)
        XCTAssertEqual(try Self.fetch(base + "/api/avatars").status, 401)
        XCTAssertEqual(try Self.fetch(base + "/payment/success").status, 200)
        XCTAssertTrue(try Self.fetch(base + "/admin/anything").body.contains("NOT_FOUND"))
    }

    /// The production block serves the installed copy the same way (TLS, no backend here).
    func testTheProductionBlockServesTheMiniApp() throws {
        let site = try String(contentsOfFile: TestEnvironment.root() + "/nginx/pinglass.conf", encoding: .utf8)
        let (dir, port) = try NginxConfigTests.startProductionBlock(site)
        defer { _ = try? Subprocess.run("/usr/sbin/nginx", ["-p", dir, "-c", dir + "/nginx.conf", "-s", "stop"]) }
        let base = "https://127.0.0.1:\(port)"
        let page = try Self.fetch(base + "/", insecure: true)
        XCTAssertEqual(page.status, 200)
        XCTAssertTrue(page.body.contains("js/main.js"))
        Self.assertPageHeaders(page)
        XCTAssertFalse(page.header("Strict-Transport-Security").isEmpty)
        let gz = try Self.fetch(base + "/js/telegram.js", headers: ["Accept-Encoding: gzip"], insecure: true)
        XCTAssertEqual(gz.header("Content-Encoding"), "gzip")
        let again = try Self.fetch(base + "/js/telegram.js", headers: ["Accept-Encoding: gzip", "If-None-Match: \(gz.header("ETag"))"], insecure: true)
        XCTAssertEqual(again.status, 304)
        XCTAssertEqual(try Self.fetch(base + "/nope", insecure: true).status, 404)
        try Self.withHiddenFiles { paths in
            for path in paths { XCTAssertEqual(try Self.fetch(base + path, insecure: true).status, 404, path) }
        }
        XCTAssertEqual(try Self.fetch(base + "/api/health", insecure: true).status, 502, "the API goes to the (absent) pool")
        XCTAssertEqual(try Self.fetch(base + "/payment/success", insecure: true).status, 502)
    }
}

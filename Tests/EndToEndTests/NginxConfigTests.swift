import XCTest
import Foundation
import PinGlass
import PinGlassTesting
import PinGlassConfig
import Platform
import Providers

/// The production server block (nginx/pinglass.conf) is valid nginx as shipped: checked with
/// `nginx -t` against a certificate made on the spot.
final class NginxConfigTests: XCTestCase {
    /// The production block (TLS on a loopback port, no backend): the webhook answers 403
    /// to an address outside the bank's sender networks before any worker is asked, and
    /// reaches the backend (502 here) once the list allows everyone.
    func testWebhookIsRestrictedToTheBanksSenderNetworks() throws {
        let site = try String(contentsOfFile: TestEnvironment.root() + "/nginx/pinglass.conf", encoding: .utf8)
        for net in ["91.194.226.0/23", "91.218.132.0/24", "212.49.24.0/24", "212.233.83.0/24"] {
            XCTAssertTrue(site.contains(net), net)
        }
        func status(_ conf: String) throws -> String {
            let (dir, port) = try Self.startProductionBlock(conf)
            defer { _ = try? Subprocess.run("/usr/sbin/nginx", ["-p", dir, "-c", dir + "/nginx.conf", "-s", "stop"]) }
            let (_, out, _) = try Subprocess.capture("/usr/bin/curl", [
                "-sk", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-d", "{}", "https://127.0.0.1:\(port)/api/payment/webhook"])
            return out
        }
        XCTAssertEqual(try status(site), "403")
        XCTAssertEqual(try status(site.replacingOccurrences(of: "default           0;", with: "default           1;")), "502")
    }

    /// The file's header tells an operator how to get the first certificate the way README's
    /// install steps do: with certbot's own server while nginx is stopped (the HTTPS block
    /// cannot start without the certificate, so a webroot nginx serves cannot answer yet).
    func testTheHeaderGetsTheFirstCertificateAsTheReadmeDoes() throws {
        let root = try TestEnvironment.root()
        let header = try String(contentsOfFile: root + "/nginx/pinglass.conf", encoding: .utf8)
            .split(separator: "\n").prefix { $0.hasPrefix("#") }.map { $0.dropFirst(2) }.joined(separator: " ")
        let readme = try String(contentsOfFile: root + "/README.md", encoding: .utf8)
        XCTAssertTrue(readme.contains("certbot certonly --standalone -d your.host"), "README's step")
        XCTAssertTrue(header.contains("certbot certonly --standalone -d pinglass.example.com"), header)
        XCTAssertTrue(header.contains("nginx stopped"), header)
        XCTAssertFalse(header.contains("certonly --webroot"), "a first certificate cannot come through nginx: \(header)")
    }

    /// Runs the production server block on a free loopback port with a fresh certificate and
    /// no backend; returns its prefix folder and port.
    static func startProductionBlock(_ site: String) throws -> (String, Int) {
        let port = Subprocess.freePort()
        let dir = try writeProductionBlock(site.replacingOccurrences(of: "listen 443 ssl http2;", with: "listen 127.0.0.1:\(port) ssl;")
            .replacingOccurrences(of: "listen [::]:443 ssl http2;", with: "")
            .replacingOccurrences(of: "listen 80;", with: "listen 127.0.0.1:\(Subprocess.freePort());")
            .replacingOccurrences(of: "listen [::]:80;", with: ""))
        let (status, out, err) = try Subprocess.capture("/usr/sbin/nginx", ["-p", dir, "-c", dir + "/nginx.conf"])
        XCTAssertEqual(status, 0, out + err)
        try Subprocess.waitUntil("nginx on \(port)") {
            (try? Subprocess.capture("/usr/bin/curl", ["-sk", "-o", "/dev/null", "https://127.0.0.1:\(port)/"]).0) == 0
        }
        return (dir, port)
    }

    /// The MEDIA_KEY_SECRET of the production block under test.
    static let mediaSecret = "0123456789abcdef0123456789abcdef"

    /// Writes the server block into a fresh nginx prefix (certificate made on the spot, no
    /// backend, media under `<folder>/media`, the Mini App from this checkout's webapp/); returns
    /// the folder holding nginx.conf.
    static func writeProductionBlock(_ site: String) throws -> String {
        let dir = try TestEnvironment.makeTempDir("nginx-prod")
        let (s1, _, e1) = try Subprocess.capture("/usr/bin/openssl", [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-keyout", dir + "/key.pem", "-out", dir + "/cert.pem"])
        XCTAssertEqual(s1, 0, e1)
        let webapp = try TestEnvironment.root() + "/webapp"
        let conf = site.replacingOccurrences(of: "/etc/letsencrypt/live/pinglass.example.com/fullchain.pem", with: dir + "/cert.pem")
            .replacingOccurrences(of: "/etc/letsencrypt/live/pinglass.example.com/privkey.pem", with: dir + "/key.pem")
            .replacingOccurrences(of: "unix:/run/pinglass/fcgi.sock", with: "unix:\(dir)/no-backend.sock")
            .replacingOccurrences(of: "/etc/nginx/pinglass-media.conf", with: dir + "/pinglass-media.conf")
            .replacingOccurrences(of: "alias /var/lib/pinglass/media/;", with: "alias \(dir)/media/;")
            .replacingOccurrences(of: "root /usr/local/share/pinglass/webapp;", with: "root \(webapp);")
        try conf.write(toFile: dir + "/site.conf", atomically: true, encoding: .utf8)
        // The secret include the README tells operators to write (same value as MEDIA_KEY_SECRET).
        try "set $pinglass_media_secret \"\(mediaSecret)\";\n".write(toFile: dir + "/pinglass-media.conf", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: dir + "/media", withIntermediateDirectories: true)
        let main = """
            pid \(dir)/nginx.pid;
            error_log \(dir)/error.log;
            events {}
            http {
                client_body_temp_path \(dir)/b; fastcgi_temp_path \(dir)/f; proxy_temp_path \(dir)/p;
                uwsgi_temp_path \(dir)/u; scgi_temp_path \(dir)/s; access_log off;
                include \(dir)/site.conf;
            }
            """
        try main.write(toFile: dir + "/nginx.conf", atomically: true, encoding: .utf8)
        return dir
    }

    /// Kie's callback has its own location, rate-limited like the bank's webhook, with a
    /// small body limit, and open to any sender (Kie publishes no networks): 502 here.
    func testKieCallbackIsRateLimitedButNotRestrictedBySender() throws {
        let site = try String(contentsOfFile: TestEnvironment.root() + "/nginx/pinglass.conf", encoding: .utf8)
        let start = try XCTUnwrap(site.range(of: "location = /api/kie/callback {"))
        let block = site[start.upperBound...].prefix { $0 != "}" }
        XCTAssertTrue(block.contains("limit_req zone=pinglass_webhook"), String(block))
        XCTAssertTrue(block.contains("client_max_body_size 64k"), String(block))
        let (dir, port) = try Self.startProductionBlock(site)
        defer { _ = try? Subprocess.run("/usr/sbin/nginx", ["-p", dir, "-c", dir + "/nginx.conf", "-s", "stop"]) }
        let (_, out, _) = try Subprocess.capture("/usr/bin/curl", [
            "-sk", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-d", "{}", "https://127.0.0.1:\(port)/api/kie/callback"])
        XCTAssertEqual(out, "502")
    }

    /// Telegram's webhook has its own exact location in both configurations, rate-limited
    /// like the other callbacks, with a 64 KB body limit: a small update reaches the backend
    /// (502 here), a large one is refused by nginx itself (413), and a variant path
    /// (`/api/telegram/webhook/`) goes to `location /`, where the router's exact match makes
    /// it a 404.
    func testTelegramWebhookHasItsOwnSmallRateLimitedLocation() throws {
        for file in ["/nginx/pinglass.conf", "/nginx/local.conf.in"] {
            let conf = try String(contentsOfFile: TestEnvironment.root() + file, encoding: .utf8)
            let start = try XCTUnwrap(conf.range(of: "location = /api/telegram/webhook {"), file)
            let block = conf[start.upperBound...].prefix { $0 != "}" }
            XCTAssertTrue(block.contains("limit_req zone=pinglass_webhook"), "\(file): \(block)")
            XCTAssertTrue(block.contains("client_max_body_size 64k"), "\(file): \(block)")
        }
        let site = try String(contentsOfFile: TestEnvironment.root() + "/nginx/pinglass.conf", encoding: .utf8)
        let (dir, port) = try Self.startProductionBlock(site)
        defer { _ = try? Subprocess.run("/usr/sbin/nginx", ["-p", dir, "-c", dir + "/nginx.conf", "-s", "stop"]) }
        func status(_ body: String) throws -> String {
            try Subprocess.capture("/usr/bin/curl", ["-sk", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "--data-binary", body,
                                                     "https://127.0.0.1:\(port)/api/telegram/webhook"]).1
        }
        XCTAssertEqual(try status("{}"), "502")
        XCTAssertEqual(try status(String(repeating: "x", count: 100_000)), "413")
    }

    /// The operator's pages (docs/admin.md): `/admin` itself and every path under it reach
    /// the pool (502 here, there is none) in the production block, and the login has its own
    /// location with the strict login rate limit in both configurations.
    func testAdminPathsReachThePoolAndTheLoginHasItsOwnRateLimit() throws {
        for file in ["/nginx/pinglass.conf", "/nginx/local.conf.in"] {
            let conf = try String(contentsOfFile: TestEnvironment.root() + file, encoding: .utf8)
            let start = try XCTUnwrap(conf.range(of: "location = /admin/login {"), file)
            let block = conf[start.upperBound...].prefix { $0 != "}" }
            XCTAssertTrue(block.contains("limit_req zone=pinglass_login"), "\(file): \(block)")
            XCTAssertTrue(block.contains("fastcgi_pass pinglass_fcgi"), "\(file): \(block)")
            XCTAssertTrue(conf.contains("location = /admin {"), file)
        }
        let site = try String(contentsOfFile: TestEnvironment.root() + "/nginx/pinglass.conf", encoding: .utf8)
        let (dir, port) = try Self.startProductionBlock(site)
        defer { _ = try? Subprocess.run("/usr/sbin/nginx", ["-p", dir, "-c", dir + "/nginx.conf", "-s", "stop"]) }
        for path in ["/admin", "/admin/audit", "/admin/login", "/admin/admin.css"] {
            let (_, out, _) = try Subprocess.capture("/usr/bin/curl", ["-sk", "-o", "/dev/null", "-w", "%{http_code}", "https://127.0.0.1:\(port)\(path)"])
            XCTAssertEqual(out, "502", path)
        }
    }

    /// `/metrics` in the production block: loopback reaches the backend (502 here, there is
    /// none), any other address gets nginx's 403 before a worker is asked.
    func testProductionMetricsAreRestrictedToTheAllowList() throws {
        let site = try String(contentsOfFile: TestEnvironment.root() + "/nginx/pinglass.conf", encoding: .utf8)
        let start = try XCTUnwrap(site.range(of: "location = /metrics {"))
        let block = site[start.upperBound...].prefix { $0 != "}" }
        XCTAssertTrue(block.contains("deny all;"), String(block))
        let (dir, port) = try Self.startProductionBlock(site)
        defer { _ = try? Subprocess.run("/usr/sbin/nginx", ["-p", dir, "-c", dir + "/nginx.conf", "-s", "stop"]) }
        func status(_ path: String, from source: String) throws -> String {
            try Subprocess.capture("/usr/bin/curl", ["-sk", "-o", "/dev/null", "-w", "%{http_code}", "--interface", source,
                                                     "https://127.0.0.1:\(port)" + path]).1
        }
        XCTAssertEqual(try status("/metrics", from: "127.0.0.1"), "502")
        XCTAssertEqual(try status("/metrics", from: "127.0.0.2"), "403")
        XCTAssertEqual(try status("/%6Detrics?x", from: "127.0.0.2"), "403")
    }

    /// The production `/media/` block checks the link's signature with the secret from the
    /// include file: a link made by FileMediaStore opens, an unsigned or forged one gets 403.
    func testProductionMediaNeedsASignedLink() throws {
        let site = try String(contentsOfFile: TestEnvironment.root() + "/nginx/pinglass.conf", encoding: .utf8)
        XCTAssertTrue(site.contains("include /etc/nginx/pinglass-media.conf;"))
        let (dir, port) = try Self.startProductionBlock(site)
        defer { _ = try? Subprocess.run("/usr/sbin/nginx", ["-p", dir, "-c", dir + "/nginx.conf", "-s", "stop"]) }
        let store = FileMediaStore(directory: dir + "/media", publicURL: "https://127.0.0.1:\(port)/media", secret: Self.mediaSecret)
        let key = MediaKeys.reference(contentType: "image/png")
        try store.put(key: key, bytes: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 1, 2, 3], contentType: "image/png")
        func fetch(_ url: String) throws -> String {
            try Subprocess.capture("/usr/bin/curl", ["-sk", "-o", "/dev/null", "-w", "%{http_code} %{content_type}", url]).1
        }
        let link = store.signedURL(key: key, expiresIn: 600, now: System.now())
        XCTAssertEqual(try fetch(link), "200 image/png")
        let headers = try Subprocess.capture("/usr/bin/curl", ["-sk", "-D", "-", "-o", "/dev/null", link]).1.lowercased()
        XCTAssertTrue(headers.contains("cache-control: private"), headers)
        XCTAssertEqual(try fetch("https://127.0.0.1:\(port)/media/\(key)"), "403 text/html")
        let forged = FileMediaStore(directory: dir + "/media", publicURL: "https://127.0.0.1:\(port)/media", secret: "another-secret-another")
        XCTAssertEqual(try fetch(forged.signedURL(key: key, expiresIn: 600, now: System.now())), "403 text/html")
        XCTAssertEqual(try fetch(store.signedURL(key: key, expiresIn: 60, now: System.now() - 3600)), "403 text/html")
    }

    /// `make run` (scripts/run.sh): MEDIA_KEY_SECRET from the environment, else the env file,
    /// else generated once and kept; the rendered local nginx.conf carries that same value.
    func testLocalRunUsesOneMediaSecretForPoolAndNginx() throws {
        let dir = try TestEnvironment.makeTempDir("run-secret")
        let lib = try TestEnvironment.root() + "/scripts/lib.sh"
        func secret(_ env: [String: String] = [:], envFile: String = "") throws -> String {
            let (status, out, err) = try Subprocess.capture("/bin/bash", ["-c", "source \(lib) && media_key_secret \(dir) \(envFile)"],
                                                            environment: ["PATH": "/usr/bin:/bin"].merging(env) { $1 })
            XCTAssertEqual(status, 0, err)
            return out
        }
        let generated = try secret()
        XCTAssertEqual(generated.count, 64)
        XCTAssertNoThrow(try Config(variables: ["DATABASE_URL": "x", "MEDIA_KEY_SECRET": generated]))
        XCTAssertEqual(try secret(), generated, "kept for the next run")
        try "DATABASE_URL=x\r\nexport MEDIA_KEY_SECRET=\"from-the-env-file-0123\"\r\n".write(toFile: dir + "/pinglass.env", atomically: true, encoding: .utf8)
        XCTAssertEqual(try secret(envFile: dir + "/pinglass.env"), "from-the-env-file-0123")
        XCTAssertEqual(try secret(["MEDIA_KEY_SECRET": "from-the-environment-0"], envFile: dir + "/pinglass.env"), "from-the-environment-0")
        let (status, _, err) = try Subprocess.capture("/bin/bash", ["-c", """
            source \(lib) && render_nginx \(try TestEnvironment.root())/nginx/local.conf.in \(dir)/nginx.conf \
                MEDIA_KEY_SECRET=\(generated) STORAGE_DIR=\(dir)/media
            """], environment: ["PATH": "/usr/bin:/bin"])
        XCTAssertEqual(status, 0, err)
        let rendered = try String(contentsOfFile: dir + "/nginx.conf", encoding: .utf8)
        XCTAssertTrue(rendered.contains("set $pinglass_media_secret \"\(generated)\";"))
        XCTAssertFalse(rendered.contains("@MEDIA_KEY_SECRET@"))
        let mode = try FileManager.default.attributesOfItem(atPath: dir + "/nginx.conf")[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o600, "the rendered config holds the secret")
    }

    func testProductionServerBlockPassesNginxCheck() throws {
        let site = try String(contentsOfFile: TestEnvironment.root() + "/nginx/pinglass.conf", encoding: .utf8)
        XCTAssertTrue(site.contains("listen 443 ssl http2"))
        XCTAssertTrue(site.contains("limit_req zone=pinglass_webhook"))
        XCTAssertTrue(site.contains("limit_req zone=pinglass_login"))
        XCTAssertFalse(site.contains("fastcgi_keep_conn on"))
        let dir = try Self.writeProductionBlock(site)
        let (status, out, err) = try Subprocess.capture("/usr/sbin/nginx", ["-t", "-p", dir, "-c", dir + "/nginx.conf"])
        XCTAssertEqual(status, 0, out + err)
        XCTAssertTrue(err.contains("test is successful"), err)
    }
}

extension NginxConfigTests {
    /// A JSON body of `megabytes` MB (one inline reference photo as the original client sends
    /// it) in a file, for curl's `--data-binary @file`.
    static func inlineReferenceBody(megabytes: Int) throws -> String {
        let path = try TestEnvironment.makeTempDir("generate-body") + "/body.json"
        let pad = String(repeating: "A", count: megabytes << 20)
        try (#"{"avatarId":1,"referenceImages":["data:image/jpeg;base64,"# + pad + #""]}"#)
            .write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The original client sends its reference photos inline with POST /api/generate: a 10 MB
    /// photo is ~14 MB as base64, over the server's 12 MB. The production block passes such a
    /// body on (502 here: no backend) and still refuses one over 30 MB itself (413).
    func testProductionGenerateTakesAnInlineReferencePhoto() throws {
        let site = try String(contentsOfFile: TestEnvironment.root() + "/nginx/pinglass.conf", encoding: .utf8)
        let start = try XCTUnwrap(site.range(of: "location = /api/generate {"))
        let block = site[start.upperBound...].prefix { $0 != "}" }
        XCTAssertTrue(block.contains("limit_req zone=pinglass_api burst=40 nodelay;"), String(block))
        let (dir, port) = try Self.startProductionBlock(site)
        defer { _ = try? Subprocess.run("/usr/sbin/nginx", ["-p", dir, "-c", dir + "/nginx.conf", "-s", "stop"]) }
        func status(_ body: String, _ path: String = "/api/generate") throws -> String {
            try Subprocess.capture("/usr/bin/curl", ["-sk", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
                                                     "-H", "Content-Type: application/json", "--data-binary", "@" + body,
                                                     "https://127.0.0.1:\(port)" + path]).1
        }
        let fourteen = try Self.inlineReferenceBody(megabytes: 14)
        XCTAssertEqual(try status(fourteen), "502")
        XCTAssertEqual(try status(fourteen, "/api/payment/create"), "413", "other paths keep the 12 MB limit")
        XCTAssertEqual(try status(try Self.inlineReferenceBody(megabytes: 31)), "413")
    }
}

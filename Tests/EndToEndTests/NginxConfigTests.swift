import XCTest
import Foundation
import PinGlassTestSupport

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

    /// Writes the server block into a fresh nginx prefix (certificate made on the spot, no
    /// backend); returns the folder holding nginx.conf.
    static func writeProductionBlock(_ site: String) throws -> String {
        let dir = try TestEnvironment.makeTempDir("nginx-prod")
        let (s1, _, e1) = try Subprocess.capture("/usr/bin/openssl", [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-keyout", dir + "/key.pem", "-out", dir + "/cert.pem"])
        XCTAssertEqual(s1, 0, e1)
        let conf = site.replacingOccurrences(of: "/etc/letsencrypt/live/pinglass.example.com/fullchain.pem", with: dir + "/cert.pem")
            .replacingOccurrences(of: "/etc/letsencrypt/live/pinglass.example.com/privkey.pem", with: dir + "/key.pem")
            .replacingOccurrences(of: "unix:/run/pinglass/fcgi.sock", with: "unix:\(dir)/no-backend.sock")
        try conf.write(toFile: dir + "/site.conf", atomically: true, encoding: .utf8)
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

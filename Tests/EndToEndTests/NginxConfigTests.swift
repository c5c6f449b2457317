import XCTest
import Foundation
import PinGlassTestSupport

/// The production server block (nginx/pinglass.conf) is valid nginx as shipped: checked with
/// `nginx -t` against a certificate made on the spot.
final class NginxConfigTests: XCTestCase {
    func testProductionServerBlockPassesNginxCheck() throws {
        let dir = try TestEnvironment.makeTempDir("nginx-prod")
        let (s1, _, e1) = try Subprocess.capture("/usr/bin/openssl", [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-keyout", dir + "/key.pem", "-out", dir + "/cert.pem"])
        XCTAssertEqual(s1, 0, e1)
        var site = try String(contentsOfFile: TestEnvironment.root() + "/nginx/pinglass.conf", encoding: .utf8)
        XCTAssertTrue(site.contains("listen 443 ssl http2"))
        XCTAssertTrue(site.contains("limit_req zone=pinglass_webhook"))
        XCTAssertTrue(site.contains("limit_req zone=pinglass_login"))
        XCTAssertFalse(site.contains("fastcgi_keep_conn on"))
        site = site.replacingOccurrences(of: "/etc/letsencrypt/live/pinglass.example.com/fullchain.pem", with: dir + "/cert.pem")
            .replacingOccurrences(of: "/etc/letsencrypt/live/pinglass.example.com/privkey.pem", with: dir + "/key.pem")
        try site.write(toFile: dir + "/site.conf", atomically: true, encoding: .utf8)
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
        let (status, out, err) = try Subprocess.capture("/usr/sbin/nginx", ["-t", "-p", dir, "-c", dir + "/nginx.conf"])
        XCTAssertEqual(status, 0, out + err)
        XCTAssertTrue(err.contains("test is successful"), err)
    }
}

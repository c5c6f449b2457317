import Foundation
import JSON
import PinGlassTesting
import XCTest

/// The operator's pages in chromium on a phone, through nginx (docs/admin.md): an account
/// made with the CLI logs in, sees the dashboard and logs out (Tests/Browser/admin.py);
/// screenshots in `browser/admin/`.
final class AdminStoryTests: BrowserTestCase {
    func testAnAdminMadeWithTheCLILogsInSeesTheDashboardAndLogsOut() throws {
        let password = "a long browser passphrase"
        var env = stack.environment
        env["BIN"] = try TestEnvironment.binDir() + "/pinglass"
        env["PW"] = password
        env["SUDO_USER"] = "browser-test"
        let (status, out, err) = try Subprocess.capture("/bin/sh", ["-c", #"printf '%s\n' "$PW" | "$BIN" admin create-user ops --role admin"#],
                                                        environment: env)
        XCTAssertEqual(status, 0, out + err)
        _ = try Fixtures.pendingPayment(c, telegramID: 73_001, amount: 49_900, status: "succeeded")
        try c.execute("UPDATE payments SET paid_at = now() - interval '1 minute'")

        let result = try story("admin", user: 0, env: ["PINGLASS_ADMIN_NAME": "ops", "PINGLASS_ADMIN_PASSWORD": password], timeout: 120)
        XCTAssertEqual(result["loggedOut"]?.boolValue, true)

        let audit = try c.query("SELECT actor, action, address, request_id FROM admin_audit ORDER BY id")
        XCTAssertEqual(audit.map { "\($0.requiredString("actor")) \($0.requiredString("action"))" },
                       ["cli:browser-test admin.create-user", "ops admin.login", "ops admin.logout"])
        for row in audit.dropFirst() {
            XCTAssertEqual(row.string("address"), "127.0.0.1")
            XCTAssertFalse((row.string("request_id") ?? "").isEmpty, "nginx's request id")
        }
        XCTAssertEqual(try number("SELECT count(*)::int AS n FROM admin_sessions"), 0)
        let shots = try FileManager.default.contentsOfDirectory(atPath: TestEnvironment.tmp() + "/browser/admin")
        XCTAssertEqual(shots.filter { $0.hasSuffix(".png") }.sorted(), ["01-login.png", "02-dashboard.png", "03-dashboard-dark.png", "04-audit.png", "05-logged-out.png"])
    }
}

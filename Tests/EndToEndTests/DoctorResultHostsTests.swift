import XCTest
import PinGlassTesting

/// `pinglass doctor` on `KIE_RESULT_HOSTS`: an entry without `*.` that is not a host Kie
/// serves results from once matched its subdomains too and now matches only itself, so it is
/// named in a warning (not a failure); a malformed entry is a configuration error.
final class DoctorResultHostsTests: XCTestCase {
    func doctor(_ hosts: String, kieURL: String = "https://api.kie.ai", extra: [String: String] = [:]) throws -> (Int32, String) {
        var env = ["PATH": "/usr/bin:/bin", "PINGLASS_ENV_FILE": "/dev/null", "DATABASE_URL": "host=/nonexistent dbname=x connect_timeout=1",
                   "STORAGE_DIR": try TestEnvironment.makeTempDir("doctor-hosts"), "KIE_RESULT_HOSTS": hosts, "KIE_API_URL": kieURL]
        env.merge(extra) { $1 }
        let (status, out, err) = try Subprocess.capture(TestEnvironment.binDir() + "/pinglass", ["doctor"], environment: env)
        return (status, out + err)
    }

    func testEntriesThatReliedOnTheSubdomainMatchAreWarnedAbout() throws {
        let (_, out) = try doctor("cdn.example, tempfile.aiquickdraw.com, *.cdn.example, 127.0.0.1")
        let warnings = out.split(separator: "\n").filter { $0.hasPrefix("warn") && $0.contains("KIE_RESULT_HOSTS entry") }
        XCTAssertEqual(warnings.count, 1, out)
        XCTAssertTrue(warnings.first?.contains("entry cdn.example matches that exact host only") == true, out)
        XCTAssertTrue(warnings.first?.contains("write *.cdn.example") == true, out)
        XCTAssertFalse(out.contains("result downloads may connect to loopback"), out)

        // The parent domain of Kie's own result host matches none of Kie's results: a failure.
        let (parentStatus, parent) = try doctor("aiquickdraw.com")
        XCTAssertEqual(parentStatus, 1, parent)
        XCTAssertTrue(parent.contains("FAIL  KIE_RESULT_HOSTS entry aiquickdraw.com matches that exact host only, not Kie's "
                                      + "tempfile.aiquickdraw.com: poll-kie refuses to start"), parent)

        let (_, local) = try doctor("127.0.0.1", kieURL: "http://127.0.0.1:8081/kie")
        XCTAssertTrue(local.contains("warn  KIE_API_URL is loopback (a local simulator): result downloads may connect to loopback"), local)
        let (_, proxied) = try doctor("127.0.0.1", kieURL: "http://127.0.0.1:8081/kie", extra: ["PUBLIC_BASE_URL": "https://pinglass.example"])
        XCTAssertFalse(proxied.contains("result downloads may connect to loopback"), proxied)
        XCTAssertTrue(proxied.contains("ok    KIE_API_URL is loopback on a public install (a local proxy): result downloads still refuse"),
                      proxied)

        let (status, bad) = try doctor(".aiquickdraw.com")
        XCTAssertEqual(status, 1)
        XCTAssertTrue(bad.hasPrefix("FAIL") && bad.contains("KIE_RESULT_HOSTS is invalid: each entry is an exact host name"), bad)
    }

    /// poll-kie refuses to start (EX_CONFIG, one line naming KIE_RESULT_HOSTS and the fix)
    /// when an entry is the parent domain of Kie's result host, the form that once matched
    /// its subdomains: every photo would otherwise be refused and refunded.
    func testPollKieRefusesAParentDomainEntry() throws {
        let env = ["PATH": "/usr/bin:/bin", "PINGLASS_ENV_FILE": "/dev/null", "DATABASE_URL": "host=/nonexistent dbname=x connect_timeout=1",
                   "STORAGE_DIR": try TestEnvironment.makeTempDir("poll-hosts"), "KIE_API_KEY": "kie-key",
                   "MEDIA_KEY_SECRET": "media-secret-0123456789", "KIE_RESULT_HOSTS": "aiquickdraw.com"]
        let (status, out, err) = try Subprocess.capture(TestEnvironment.binDir() + "/pinglass", ["poll-kie"], environment: env)
        XCTAssertEqual(status, 78, out + err)
        let lines = (out + err).split(separator: "\n")
        XCTAssertEqual(lines.count, 1, out + err)
        XCTAssertTrue(lines.first?.contains("KIE_RESULT_HOSTS is invalid: entry aiquickdraw.com matches that exact host only") == true,
                      out + err)
        XCTAssertTrue(lines.first?.contains("write *.aiquickdraw.com (any subdomain) or tempfile.aiquickdraw.com") == true, out + err)

        var fixed = env
        fixed["KIE_RESULT_HOSTS"] = "*.aiquickdraw.com"
        let (okStatus, okOut, okErr) = try Subprocess.capture(TestEnvironment.binDir() + "/pinglass", ["poll-kie"], environment: fixed)
        XCTAssertNotEqual(okStatus, 78, "the wildcard form starts (and then finds no database)")
        XCTAssertFalse((okOut + okErr).contains("KIE_RESULT_HOSTS"), okOut + okErr)
    }
}

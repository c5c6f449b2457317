import XCTest
import PinGlassTestSupport

/// `pinglass doctor` on `KIE_RESULT_HOSTS`: an entry without `*.` that is not a host Kie
/// serves results from once matched its subdomains too and now matches only itself, so it is
/// named in a warning (not a failure); a malformed entry is a configuration error.
final class DoctorResultHostsTests: XCTestCase {
    func doctor(_ hosts: String, kieURL: String = "https://api.kie.ai") throws -> (Int32, String) {
        let env = ["PATH": "/usr/bin:/bin", "PINGLASS_ENV_FILE": "/dev/null", "DATABASE_URL": "host=/nonexistent dbname=x connect_timeout=1",
                   "STORAGE_DIR": try TestEnvironment.makeTempDir("doctor-hosts"), "KIE_RESULT_HOSTS": hosts, "KIE_API_URL": kieURL]
        let (status, out, err) = try Subprocess.capture(TestEnvironment.binDir() + "/pinglass", ["doctor"], environment: env)
        return (status, out + err)
    }

    func testEntriesThatReliedOnTheSubdomainMatchAreWarnedAbout() throws {
        let (_, out) = try doctor("aiquickdraw.com, tempfile.aiquickdraw.com, *.cdn.example, 127.0.0.1")
        let warnings = out.split(separator: "\n").filter { $0.hasPrefix("warn") && $0.contains("KIE_RESULT_HOSTS entry") }
        XCTAssertEqual(warnings.count, 1, out)
        XCTAssertTrue(warnings.first?.contains("entry aiquickdraw.com matches that exact host only") == true, out)
        XCTAssertTrue(warnings.first?.contains("write *.aiquickdraw.com") == true, out)
        XCTAssertFalse(out.contains("result downloads may connect to loopback"), out)

        let (_, local) = try doctor("127.0.0.1", kieURL: "http://127.0.0.1:8081/kie")
        XCTAssertTrue(local.contains("warn  KIE_API_URL is loopback (a local simulator): result downloads may connect to loopback"), local)

        let (status, bad) = try doctor(".aiquickdraw.com")
        XCTAssertEqual(status, 1)
        XCTAssertTrue(bad.hasPrefix("FAIL") && bad.contains("KIE_RESULT_HOSTS is invalid: each entry is an exact host name"), bad)
    }
}

import XCTest
import Foundation
import PinGlassTesting
@testable import PinGlass

/// Every time an operator passes on a command line is a duration (`90s`, `15m`, `1h`), read
/// and shown the same way everywhere; plain seconds, the older form, still work.
extension CLITests {
    /// Each duty's time options: `<duration>` in the help with the default as written, a
    /// duration accepted (the command goes on to read its configuration, which is missing
    /// here: exit 78), plain seconds accepted, and a duration out of range refused by name,
    /// in seconds (exit 64).
    func testEveryDutyTimeIsADuration() throws {
        let times: [(command: String, option: String, shown: String, accepted: String, refused: String, message: String)] = [
            ("poll-kie", "--task-deadline", "(default: 20m)", "15m", "2d", "--task-deadline must be between 60s and 86400s (got 172800)"),
            ("poll-kie", "--poll-interval", "(default: 10s)", "30s", "1h", "--poll-interval must be between 1s and 600s (got 3600)"),
            ("poll-kie", "--download-timeout", "(default: 30s)", "1m", "10m", "--download-timeout must be between 1s and 300s (got 600)"),
            ("sweep", "--task-deadline", "(default: 20m)", "90s", "30s", "--task-deadline must be between 60s and 86400s (got 30)"),
            ("dispatch", "--task-deadline", "(default: 20m)", "45m", "2d", "--task-deadline must be between 60s and 86400s (got 172800)"),
            ("deliver", "--lease", "(default: 2m)", "90s", "1m", "--lease must be between 70s and 3600s (got 60)"),
            ("deliver", "--media-link-ttl", "--media-link-ttl <duration>", "1h", "1m", "--media-link-ttl must be between 600s and 604800s (got 60)"),
            ("refund", "--lease", "(default: 2m)", "5m", "2h", "--lease must be between"),
            ("dispatch", "--reference-link-ttl", "--reference-link-ttl <duration>", "2h", "30m",
             "--reference-link-ttl must be between 3600s and 604800s (got 1800)"),
            ("reconcile", "--pending-after", "(default: 2m)", "5m", "2d", "--pending-after must be between 0s and 86400s (got 172800)"),
        ]
        for t in times {
            let name = "\(t.command) \(t.option)"
            let (s0, help, _) = try cli([t.command, "--help"])
            XCTAssertEqual(s0, 0, name)
            let line = help.split(separator: "\n").first { $0.contains(t.option + " <") }.map(String.init) ?? ""
            XCTAssertTrue(line.contains("\(t.option) <duration>"), "\(name): \(line)")
            XCTAssertTrue(help.contains(t.shown), "\(name): \(help)")

            let (s1, _, e1) = try cli([t.command, t.option, t.accepted])
            XCTAssertEqual(s1, 78, "\(name) \(t.accepted): \(e1)")
            XCTAssertTrue(e1.contains("configuration:"), "\(name) \(t.accepted): \(e1)")
            let plain = String(Int(try XCTUnwrap(Self.seconds(t.accepted))))
            XCTAssertEqual(try cli([t.command, t.option, plain]).0, 78, "\(name) \(plain) (plain seconds)")

            let (s2, _, e2) = try cli([t.command, t.option, t.refused])
            XCTAssertEqual(s2, 64, "\(name) \(t.refused): \(e2)")
            XCTAssertTrue(e2.contains(t.message), "\(name) \(t.refused): \(e2)")
        }
        let (s3, _, e3) = try cli(["poll-kie", "--task-deadline", "soon"])
        XCTAssertEqual(s3, 64)
        XCTAssertTrue(e3.contains("--task-deadline <duration>"), e3)
    }

    /// `pinglass settings` reads its configuration from `--env-file`, like every other command
    /// and like its subcommand.
    func testSettingsTakesTheEnvFile() throws {
        let db = try makeDatabase()
        let envFile = try TestEnvironment.makeTempDir("settings") + "/pinglass.env"
        try "DATABASE_URL=\"\(db.url)\"\n".write(toFile: envFile, atomically: true, encoding: .utf8)
        let (s1, o1, e1) = try cli(["settings", "--env-file", envFile])
        XCTAssertEqual(s1, 0, e1)
        XCTAssertEqual(o1, "tbank-mode: test\n")
        let (s2, o2, e2) = try cli(["settings", "tbank-mode", "--env-file", envFile])
        XCTAssertEqual(s2, 0, e2)
        XCTAssertEqual(o2, "test\n")
        let (s5, o5, e5) = try cli(["settings", "--env-file", envFile, "tbank-mode"])
        XCTAssertEqual(s5, 0, e5)
        XCTAssertEqual(o5, "test\n", "the parent's --env-file reaches the subcommand")
        let (s3, _, e3) = try cli(["settings"])
        XCTAssertEqual(s3, 78, "without the env file there is no DATABASE_URL")
        XCTAssertTrue(e3.contains("DATABASE_URL"), e3)
        let (s4, help, _) = try cli(["settings", "--help"])
        XCTAssertEqual(s4, 0)
        XCTAssertTrue(help.contains("--env-file"), help)
        XCTAssertTrue(help.contains("tbank-mode"), help)
    }

    /// The pool's times too: `--request-timeout`, `--read-timeout` and `--stop-timeout` are
    /// durations in whole seconds (a running pool with `--read-timeout 1s` is in
    /// PoolReadTimeoutTests); anything else is one line and exit 2.
    func testPoolTimesAreDurations() throws {
        let pool = try TestEnvironment.binDir() + "/pinglass-fcgi"
        let (s0, help, _) = try Subprocess.capture(pool, ["--help"])
        XCTAssertEqual(s0, 0)
        for text in ["--request-timeout DURATION", "--read-timeout DURATION", "--stop-timeout DURATION", "(default 60s"] {
            XCTAssertTrue(help.contains(text), "\(text): \(help)")
        }
        for (option, value) in [("--request-timeout", "2h"), ("--read-timeout", "0s"), ("--stop-timeout", "1.5s"), ("--read-timeout", "soon")] {
            let (s, _, err) = try Subprocess.capture(pool, ["--socket", "/nonexistent/s.sock", option, value], environment: ["PATH": "/usr/bin:/bin"])
            XCTAssertEqual(s, 2, "\(option) \(value)")
            XCTAssertTrue(err.contains("\(option) must be a duration in whole seconds"), "\(option) \(value): \(err)")
        }
    }

    static func seconds(_ text: String) -> Double? {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
        guard let unit = text.last.flatMap({ units[$0] }), let n = Double(text.dropLast()) else { return Double(text) }
        return n * unit
    }
}

import XCTest
import Foundation
import LibCrypto
import PinGlassTesting
@testable import PinGlass

/// `pinglass admin …` as an operator runs it: passwords on standard input only, PBKDF2
/// hashes, every change in the audit trail as `cli:<user>` (docs/admin.md#accounts).
final class AdminCLITests: XCTestCase {
    /// Runs `pinglass admin <args>` with `stdin` piped in through the shell.
    func admin(_ args: [String], stdin: String?, env: [String: String]) throws -> (Int32, String, String) {
        var e = ["PATH": "/usr/bin:/bin", "PINGLASS_ENV_FILE": "/dev/null", "BIN": try TestEnvironment.binDir() + "/pinglass",
                 "SUDO_USER": "alice"]
        e.merge(env) { $1 }
        let quoted = args.map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        e["STDIN_TEXT"] = stdin ?? ""
        let feed = stdin == nil ? "< /dev/null" : ""
        let script = stdin == nil ? "\"$BIN\" admin \(quoted) \(feed)" : "printf '%s\\n' \"$STDIN_TEXT\" | \"$BIN\" admin \(quoted)"
        return try Subprocess.capture("/bin/sh", ["-c", script], environment: e)
    }

    func testAccountsAreMadeChangedAndListedWithPasswordsFromStandardInputOnly() throws {
        let db = try makeDatabase()
        let env = ["DATABASE_URL": db.url]
        let c = try db.connect()

        // In argv: refused before anything is read or written.
        let (s0, o0, e0) = try admin(["create-user", "ops", "--role", "admin", "--password", "secret-in-argv-123"], stdin: nil, env: env)
        XCTAssertEqual(s0, 1, o0 + e0)
        XCTAssertTrue(e0.contains("never taken from the command line"), e0)
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM admin_users")[0].requiredInt("n"), 0)

        // Too short, bad role, bad name, no password: refused, nothing written.
        for (args, stdin, says) in [(["create-user", "ops", "--role", "admin"], "short", "at least 12"),
                                    (["create-user", "ops", "--role", "root"], "long enough password", "admin or viewer"),
                                    (["create-user", "o p", "--role", "admin"], "long enough password", "not a valid account name"),
                                    (["create-user", "ops", "--role", "admin"], nil, "no password on standard input")] as [([String], String?, String)] {
            let (s, o, e) = try admin(args, stdin: stdin, env: env)
            XCTAssertEqual(s, 1, "\(args): \(o + e)")
            XCTAssertTrue(e.contains(says), "\(args): \(e)")
        }
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM admin_users")[0].requiredInt("n"), 0)

        let (s1, o1, e1) = try admin(["create-user", "ops", "--role", "admin"], stdin: "correct horse battery", env: env)
        XCTAssertEqual(s1, 0, o1 + e1)
        let (s2, o2, e2) = try admin(["create-user", "watcher", "--role", "viewer"], stdin: "another long password", env: env)
        XCTAssertEqual(s2, 0, o2 + e2)
        let (s3, _, e3) = try admin(["create-user", "ops", "--role", "viewer"], stdin: "correct horse battery", env: env)
        XCTAssertEqual(s3, 1)
        XCTAssertTrue(e3.contains("already exists"), e3)

        let hash = try c.query("SELECT password_hash FROM admin_users WHERE login = 'ops'")[0].requiredString("password_hash")
        XCTAssertTrue(hash.hasPrefix("pbkdf2-sha256$600000$"), hash)
        XCTAssertFalse(hash.contains("correct horse"))
        XCTAssertTrue(PasswordHash.verify("correct horse battery", against: hash))

        let (s4, list, e4) = try admin(["list"], stdin: nil, env: env)
        XCTAssertEqual(s4, 0, e4)
        let lines = list.split(separator: "\n").map { $0.split(separator: "\t").prefix(3).joined(separator: " ") }
        XCTAssertEqual(lines, ["ops admin active", "watcher viewer active"])

        // A session, then set-password ends it and the new password is the one that works.
        guard case .success = try AdminSessions.login(c, login: "ops", password: "correct horse battery", address: "10.0.0.1",
                                                      userAgent: nil, now: Date().timeIntervalSince1970) else { return XCTFail("login") }
        let (s5, o5, e5) = try admin(["set-password", "ops"], stdin: "a brand new passphrase", env: env)
        XCTAssertEqual(s5, 0, o5 + e5)
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM admin_sessions")[0].requiredInt("n"), 0)
        let newHash = try c.query("SELECT password_hash FROM admin_users WHERE login = 'ops'")[0].requiredString("password_hash")
        XCTAssertTrue(PasswordHash.verify("a brand new passphrase", against: newHash))
        XCTAssertFalse(PasswordHash.verify("correct horse battery", against: newHash))
        let (s6, _, e6) = try admin(["set-password", "ops", "--password", "x"], stdin: nil, env: env)
        XCTAssertEqual(s6, 1)
        XCTAssertTrue(e6.contains("never taken from the command line"), e6)

        let (s7, o7, _) = try admin(["logout-everywhere", "ops"], stdin: nil, env: env)
        XCTAssertEqual(s7, 0)
        XCTAssertTrue(o7.contains("ended 0 session(s) of ops"), o7)
        let (s8, o8, e8) = try admin(["disable", "watcher"], stdin: nil, env: env)
        XCTAssertEqual(s8, 0, o8 + e8)
        let (s9, o9, _) = try admin(["disable", "watcher"], stdin: nil, env: env)
        XCTAssertEqual(s9, 0)
        XCTAssertTrue(o9.contains("already disabled"), o9)
        let (s10, _, e10) = try admin(["disable", "nobody"], stdin: nil, env: env)
        XCTAssertEqual(s10, 1)
        XCTAssertTrue(e10.contains("no account named 'nobody'"), e10)
        XCTAssertEqual(try AdminSessions.login(c, login: "watcher", password: "another long password", address: "10.0.0.1",
                                               userAgent: nil, now: Date().timeIntervalSince1970), .invalid, "disabled")

        let audit = try c.query("SELECT actor, action, target, after::text AS after FROM admin_audit WHERE actor LIKE 'cli:%' ORDER BY id")
        XCTAssertEqual(audit.map { "\($0.requiredString("actor")) \($0.requiredString("action")) \($0.requiredString("target"))" },
                       ["cli:alice admin.create-user ops", "cli:alice admin.create-user watcher", "cli:alice admin.set-password ops",
                        "cli:alice admin.logout-everywhere ops", "cli:alice admin.disable watcher"])
        XCTAssertEqual(audit[0].string("after"), #"{"role": "admin", "disabled": false}"#)
        let texts = try c.query("SELECT details::text || coalesce(before::text, '') || coalesce(after::text, '') AS t FROM admin_audit")
        for t in texts { XCTAssertFalse(t.requiredString("t").contains("pbkdf2") || t.requiredString("t").contains("passphrase")) }
    }
}

import Foundation
import HTTPClient
import JSON
import PinGlassTesting
import Postgres
import XCTest

/// A suite whose tests drive a real browser: each test gets a `Stack` (nginx, a pool, the
/// simulator as T-Bank, Kie and Telegram) on its own database, the cron duties its story
/// needs running in the background (`duties`), and runs one Playwright story
/// (`Tests/Browser/<story>.py`, Debian's chromium headless) against it with `story`. The
/// story's exit status is the browser's verdict; the test then checks the database, so it
/// cannot pass on a broken backend. Screenshots and the story's log stay under the run's
/// folder, `browser/<story>/` (`.run/test/browser/…` after `make test-browser`).
class BrowserTestCase: DatabaseTestCase {
    var stack: Stack!
    var c: Connection!
    var kie: KieSimulator!
    var bank: BankSimulator!
    private var background: [(String, ChildProcess)] = []

    override func setUpWithError() throws {
        try super.setUpWithError()
        try TestEnvironment.requireTier(["browser"], for: "a browser story", belongs: "BrowserTests")
        let simPort = Subprocess.freePort()
        let simURL = "http://127.0.0.1:\(simPort)"
        var env = Fixtures.env(simURL: simURL).merging(Fixtures.kieEnv(simURL: simURL)) { $1 }
        env["MEDIA_KEY_SECRET"] = GenerationFixtures.mediaSecret
        env["LOG_FORMAT"] = "text"
        stack = try Stack(database: db, workers: 2, env: env, withSimulator: true, simPort: simPort)
        c = try db.connect()
        kie = KieSimulator(simURL: simURL)
        bank = BankSimulator(simURL: simURL)
        // Kie quick enough for a story a person would sit through in seconds.
        try kie.set(["waitingSeconds": .double(0.1), "queuingSeconds": .double(0.1), "generatingSeconds": .double(0.3)])
    }

    override func tearDown() {
        stopDuties()
        stack?.stop()
        super.tearDown()
    }

    /// Starts the cron duties as cron runs them (cron.d/pinglass): each its own looping
    /// process, woken by NOTIFY, for the rest of the test (stopped in tearDown).
    func duties(_ names: [String], for seconds: Int = 240) throws {
        for duty in names {
            let p = try Subprocess.start(TestEnvironment.binDir() + "/pinglass", [duty, "--for", "\(seconds)s", "--every", "1s"],
                                         environment: stack.environment, logPath: stack.dir + "/\(duty).log")
            background.append((duty, p))
        }
    }

    /// Stops the duties; each must still have been running (one that died early fails the test).
    func stopDuties() {
        for (duty, p) in background {
            XCTAssertTrue(p.isRunning, "\(duty) ended early: see \(stack.dir)/\(duty).log")
            p.terminate()
            p.wait()
        }
        background = []
    }

    /// The folder a story writes its screenshots and log to (emptied first).
    func outputFolder(_ story: String) throws -> String {
        let dir = try TestEnvironment.tmp() + "/browser/" + story
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Runs `Tests/Browser/<story>.py` against this stack as Telegram user `user`, with
    /// `env` added, its screenshots in `browser/<output ?? story>/`; fails the test unless it
    /// exits 0 within `timeout`. Returns what it printed
    /// (its `RESULT {json}` line parsed, when there is one).
    @discardableResult
    func story(_ story: String, user: Int64, env extra: [String: String] = [:], output: String? = nil, timeout: Double = 240) throws -> JSON {
        let out = try outputFolder(output ?? story)
        let log = out + "/story.log"
        var env = ProcessInfo.processInfo.environment
        env["PINGLASS_APP_URL"] = stack.baseURL
        env["PINGLASS_SIM_URL"] = stack.simURL
        env["PINGLASS_USER"] = String(user)
        env["PINGLASS_OUT"] = out
        env["PINGLASS_STORY_SECONDS"] = String(Int(timeout) - 30)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["PYTHONUNBUFFERED"] = "1"
        env.merge(extra) { $1 }
        let script = try TestEnvironment.root() + "/Tests/Browser/\(story).py"
        let python = try Self.python()
        let p = try Subprocess.start(python, [script], environment: env, logPath: log)
        do {
            try Subprocess.waitUntil(timeout: timeout, interval: 0.1, "story \(story) (log: \(log))") { !p.isRunning }
        } catch {
            p.signal(SIGKILL)
            p.wait()
            throw error
        }
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        XCTAssertEqual(p.wait(), 0, "story \(story) failed (screenshots and log in \(out)):\n\(text.suffix(4000))")
        guard let line = text.split(separator: "\n").last(where: { $0.hasPrefix("RESULT ") }) else { return .null }
        return try JSON.parse(Array(line.dropFirst("RESULT ".count).utf8))
    }

    /// The python3 that has Playwright (scripts/lib.sh install_browser sets it).
    static func python() throws -> String {
        if let p = ProcessInfo.processInfo.environment["PINGLASS_TEST_PYTHON"], !p.isEmpty { return p }
        throw NoPython()
    }

    struct NoPython: Error, CustomStringConvertible {
        var description: String {
            "PINGLASS_TEST_PYTHON is not set: run the browser tests with `make test-browser` (scripts/test.sh installs chromium and Playwright)"
        }
    }

    // MARK: the database after the story

    /// The first row of a query, or nil.
    func row(_ sql: String, _ params: [PostgresEncodable?] = []) throws -> Row? { try c.query(sql, params).first }

    /// The column `n` of the first row.
    func number(_ sql: String, _ params: [PostgresEncodable?] = []) throws -> Int? { try row(sql, params)?.int("n") }
}

import XCTest
import Foundation
import PinGlassTesting
import JSON
@testable import PinGlass

/// The pool's signals, reloads, fork failures and request reading, watched from the outside:
/// worker pids over time (`PoolWatcher`), FastCGI spoken straight to the socket
/// (`FastCGIConnection`), never a fixed sleep.
extension PoolTests {
    /// SIGHUP replaces the workers one at a time. One worker is kept busy (its request waits on
    /// a table lock) so that the replacement in progress lasts long enough to be seen in the
    /// samples: at no time fewer than N-1 serving, never two leaving at once, and the request
    /// in hand and the load around it all succeed.
    func testSighupReplacesEveryWorkerOneAtATime() throws {
        let workers = 3
        let stack = try Stack(database: db, workers: workers)
        self.stack = stack
        XCTAssertEqual(try stack.client.get("/api/health").status, 200)
        let before = Set(stack.workerPIDs())
        let watcher = PoolWatcher(master: stack.masterPID)
        let load = Load(stack: stack, path: "/api/pricing", concurrency: 2)
        let locker = try db.connect()
        try locker.execute("BEGIN")
        try locker.execute("LOCK TABLE worker_runs IN ACCESS EXCLUSIVE MODE")
        let slow = InFlight { try stack.client.get("/api/health") }
        let observer = try db.connect()
        try Subprocess.waitUntil("health request waiting on the lock") {
            try observer.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()")[0].int("n") == 1
        }
        kill(stack.masterPID, SIGHUP)
        try Subprocess.waitUntil("the busy old worker asked to stop in its turn") {
            !(watcher.latest?.pids(.stopping).isDisjoint(with: before) ?? true)
        }
        let seen = watcher.sampleCount
        try Subprocess.waitUntil("ten more samples while it finishes its request") { watcher.sampleCount >= seen + 10 }
        try locker.execute("COMMIT")
        XCTAssertEqual(try slow.wait().status, 200, "the request in hand when the reload came is answered")
        try Subprocess.waitUntil("every worker replaced") {
            let now = Set(stack.workerPIDs())
            return now.count == workers && now.isDisjoint(with: before)
        }
        let counts = load.stop()
        let report = watcher.stop()
        XCTAssertNil(report.violation(workers: workers), "fewer than N-1 serving, or two leaving at once")
        XCTAssertEqual(report.mostLeaving, 1)
        XCTAssertGreaterThan(counts.total, 0)
        XCTAssertEqual(counts.failed, 0, "no request lost during the reload")
    }

    /// Twenty SIGHUPs to an idle pool, each sent the moment the previous reload's last worker
    /// appears (the master is still busy with that fork): each replaces every worker within 2 s.
    func testEverySighupToAnIdlePoolReplacesEveryWorker() throws {
        let workers = 2
        let stack = try Stack(database: db, workers: workers)
        self.stack = stack
        for round in 1...20 {
            try reload(stack, workers: workers, within: 2, "round \(round)")
        }
        XCTAssertEqual(try stack.client.get("/api/pricing").status, 200)
    }

    /// Fifty reloads under a steady load: no request fails and the pool never has fewer than
    /// N-1 workers serving.
    func testFiftyReloadsUnderLoadLoseNoRequest() throws {
        let workers = 3
        let stack = try Stack(database: db, workers: workers)
        self.stack = stack
        let watcher = PoolWatcher(master: stack.masterPID)
        let load = Load(stack: stack, path: "/api/pricing", concurrency: 2)
        for round in 1...50 {
            try reload(stack, workers: workers, within: 5, "round \(round)")
        }
        let counts = load.stop()
        let report = watcher.stop()
        XCTAssertGreaterThan(counts.total, 50)
        XCTAssertEqual(counts.failed, 0, "requests lost during \(50) reloads")
        XCTAssertNil(report.violation(workers: workers), "fewer than N-1 serving, or two leaving at once")
    }

    /// A worker that has accepted a connection but not yet read all of the request's records
    /// when it is asked to stop (reload or pool stop) still answers that request. Before, the
    /// stop signal interrupted libfcgi's wait for the records and it closed the connection
    /// (nginx then answers 502). The connection sends its first record at once (one that sends
    /// nothing at all is closed after a quarter of a second; see PoolReadTimeoutTests).
    func testStopSignalAfterAcceptDoesNotDropTheRequest() throws {
        for (name, signal) in [("SIGHUP", SIGHUP), ("SIGTERM", SIGTERM)] {
            let stack = try Stack(database: db, workers: 1)
            defer { stack.stop() }
            let worker = try XCTUnwrap(stack.workerPIDs().first)
            let sockets = PoolWatcher.openSockets(worker)
            let connection = try FastCGIConnection(socketPath: stack.socket)
            try connection.sendBegin()
            try Subprocess.waitUntil("\(name): the worker accepted the connection") { PoolWatcher.openSockets(worker) > sockets }
            kill(stack.masterPID, signal)
            try Subprocess.waitUntil("\(name): the stop reached the worker") {
                PoolWatcher.state(of: worker) != .serving || connection.isClosedByPeer()
            }
            try connection.sendParams(FastCGIConnection.params("GET", "/api/pricing"))
            try connection.sendStdin([])
            let answer = try connection.readAnswer()
            XCTAssertEqual(answer.status, 200, name)
            try Subprocess.waitUntil("\(name): then the worker leaves") { !Subprocess.isAlive(worker) }
        }
    }

    /// A body shorter than its CONTENT_LENGTH (stdin ended early, or the connection half-closed)
    /// is answered 400 by the worker; the handler never sees a truncated body.
    func testBodyShorterThanContentLengthIs400() throws {
        let stack = try Stack(database: db, workers: 1)
        self.stack = stack
        let json = "application/json"
        func post(declared: Int) -> [(String, String)] {
            FastCGIConnection.params("POST", "/api/pricing", contentLength: declared, contentType: json)
        }
        let get = try FastCGIConnection(socketPath: stack.socket).request(params: FastCGIConnection.params("GET", "/api/pricing"))
        XCTAssertEqual(get.status, 200)
        let whole = try FastCGIConnection(socketPath: stack.socket).request(params: post(declared: 2), body: Array("{}".utf8))
        XCTAssertEqual(whole.status, 405, "a whole body reaches the handler")

        let short = try FastCGIConnection(socketPath: stack.socket).request(params: post(declared: 100), body: Array("{}".utf8))
        XCTAssertEqual(short.status, 400)
        XCTAssertEqual(try JSON.parse(short.bodyText)["error"]?["code"]?.stringValue, "VALIDATION_ERROR")

        let cut = try FastCGIConnection(socketPath: stack.socket)
        try cut.sendBegin()
        try cut.sendParams(post(declared: 100))
        try cut.sendStdinRecord(Array("{}".utf8))
        cut.closeSending()
        XCTAssertEqual(try cut.readAnswer().status, 400, "connection half-closed mid-body")
        XCTAssertEqual(try stack.client.get("/api/pricing").status, 200, "the worker goes on serving")
    }

    /// A SIGHUP whose env file does not validate keeps the running workers and says so at
    /// error level, naming the variable and never its value; once the file is fixed, the next
    /// SIGHUP reloads.
    func testReloadWithABrokenEnvFileKeepsTheWorkers() throws {
        let workers = 2
        let stack = try Stack(database: db, workers: workers)
        self.stack = stack
        let envFile = try XCTUnwrap(stack.environment["PINGLASS_ENV_FILE"])
        let before = Set(stack.workerPIDs())
        try "INIT_DATA_MAX_AGE=forty-two-secret-value\n".write(toFile: envFile, atomically: true, encoding: .utf8)
        kill(stack.masterPID, SIGHUP)
        try Subprocess.waitUntil("the refusal in the log") { stack.log().contains("reload refused") }
        let line = try XCTUnwrap(stack.log().split(separator: "\n").first { $0.contains("reload refused") })
        XCTAssertTrue(line.contains(#""level":"error""#), String(line))
        XCTAssertTrue(line.contains("INIT_DATA_MAX_AGE"), String(line))
        XCTAssertFalse(stack.log().contains("forty-two"), "values are never logged")
        XCTAssertEqual(Set(stack.workerPIDs()), before, "the old workers keep serving")
        XCTAssertEqual(try stack.client.get("/api/pricing").status, 200)

        try "INIT_DATA_MAX_AGE=3600\n".write(toFile: envFile, atomically: true, encoding: .utf8)
        try reload(stack, workers: workers, within: 5, "after the fix")
        XCTAssertEqual(try stack.client.get("/api/pricing").status, 200)
    }

    /// Forks that fail (injected with PINGLASS_TEST_FORK_FAIL) are retried with back-off until
    /// the pool is full; meanwhile the master, with no child at all, waits instead of spinning.
    func testFailedForksAreRetriedUntilThePoolIsFull() throws {
        let workers = 2
        let stack = try Stack(database: db, workers: workers, env: ["PINGLASS_TEST_FORK_FAIL": "4"])
        self.stack = stack
        XCTAssertEqual(stack.log().components(separatedBy: "fork failed").count - 1, 4, stack.log())
        XCTAssertTrue(stack.log().contains("retry in 0.8s"), stack.log())
        XCTAssertLessThan(PoolWatcher.cpuSeconds(stack.masterPID), 0.5,
                          "the master used its CPU for 1.5 s of back-off with no child: it spun")
        XCTAssertEqual(try stack.client.get("/api/pricing").status, 200)
        // The injection is spent: a killed worker is replaced at once.
        let victim = stack.workerPIDs()[0]
        kill(victim, SIGKILL)
        try Subprocess.waitUntil(timeout: 2, "replacement") {
            let now = stack.workerPIDs()
            return now.count == workers && !now.contains(victim)
        }
    }

    /// A signal that arrives while the master is busy with another event is not lost. Twenty
    /// times: a worker leaves (SIGQUIT, exit 0, so no back-off), and the moment its replacement
    /// appears, while the master is still finishing that fork, a SIGHUP follows; each time every
    /// worker is replaced within 2 s. Then a SIGTERM right after a SIGHUP stops the pool.
    func testSignalRightAfterAnotherEventIsNotLost() throws {
        let workers = 2
        let stack = try Stack(database: db, workers: workers)
        self.stack = stack
        for round in 1...20 {
            let leaving = try XCTUnwrap(stack.workerPIDs().min())
            kill(leaving, SIGQUIT)
            try Subprocess.waitUntil(timeout: 2, interval: 0, "round \(round): the leaving worker replaced") {
                let now = stack.workerPIDs()
                return now.count == workers && !now.contains(leaving)
            }
            try reload(stack, workers: workers, within: 2, "round \(round)")
        }
        let last = stack.workerPIDs()
        kill(stack.masterPID, SIGHUP)
        kill(stack.masterPID, SIGTERM)
        try Subprocess.waitUntil(timeout: 5, "the pool stopped") { !stack.pool!.isRunning }
        XCTAssertEqual(stack.pool!.terminationStatus, 0)
        XCTAssertFalse(last.contains(where: Subprocess.isAlive), "no worker outlives the master")
    }

    /// A master killed outright (no chance to stop its workers) takes them with it: each gets
    /// SIGTERM from the kernel and leaves, after the request in hand if it has one.
    func testWorkersDieWithTheMaster() throws {
        let stack = try Stack(database: db, workers: 2)
        self.stack = stack
        let workers = stack.workerPIDs()
        XCTAssertEqual(try stack.client.get("/api/pricing").status, 200)
        kill(stack.masterPID, SIGKILL)
        try Subprocess.waitUntil(timeout: 5, "the workers gone") { !workers.contains(where: Subprocess.isAlive) }
    }

    /// Sends SIGHUP and waits (polling every millisecond, so the next signal can follow at once)
    /// until every worker is a new one.
    private func reload(_ stack: Stack, workers: Int, within seconds: Double, _ what: String) throws {
        let before = Set(stack.workerPIDs())
        kill(stack.masterPID, SIGHUP)
        try Subprocess.waitUntil(timeout: seconds, interval: 0.001, "\(what): every worker replaced") {
            let now = Set(stack.workerPIDs())
            return now.count == workers && now.isDisjoint(with: before)
        }
    }
}

import Foundation

/// What `make test` (scripts/test.sh) provides: a private PostgreSQL cluster, the built
/// executables, the repository root. A test run without it fails with this explanation.
public enum TestEnvironment {
    public struct Missing: Error, CustomStringConvertible {
        public let name: String
        public var description: String { "\(name) is not set: run the tests with `make test` (scripts/test.sh sets up PostgreSQL, moto and the binaries)" }
    }

    static func value(_ name: String) throws -> String {
        guard let v = ProcessInfo.processInfo.environment[name], !v.isEmpty else { throw Missing(name: name) }
        return v
    }

    /// Directory of the private cluster's unix socket.
    public static func pgSocket() throws -> String { try value("PINGLASS_TEST_PG_SOCKET") }
    public static func pgData() throws -> String { try value("PINGLASS_TEST_PGDATA") }
    public static func pgBin() throws -> String { try value("PINGLASS_TEST_PGBIN") }
    public static func binDir() throws -> String { try value("PINGLASS_BIN_DIR") }
    public static func root() throws -> String { try value("PINGLASS_ROOT") }
    public static func tmp() throws -> String { try value("PINGLASS_TEST_TMP") }
    /// A python3 with PyYAML (moto's), to read YAML files back.
    public static func yamlPython() throws -> String { try value("PINGLASS_TEST_YAML_PYTHON") }
    /// Prometheus's promtool (scripts/lib.sh `install_promtool`).
    public static func promtool() throws -> String { try value("PINGLASS_TEST_PROMTOOL") }

    /// The tier scripts/test.sh runs (`unit`, `e2e`, `disruptive`), or nil when a run names
    /// its own `--filter` (every fixture is then allowed).
    public static var tier: String? { ProcessInfo.processInfo.environment["PINGLASS_TEST_TIER"].flatMap { $0.isEmpty ? nil : $0 } }

    public struct WrongTier: Error, CustomStringConvertible {
        public let what: String
        public let tier: String
        public let belongs: String
        public var description: String { "\(what) is not allowed in the \(tier) tier: move the suite to \(belongs)" }
    }

    /// Refuses `what` when the running tier is not one of `allowed` (a unit suite starting
    /// nginx, an end-to-end suite stopping the shared PostgreSQL): the tier a suite sits in is
    /// checked by what it does, not only by its folder.
    public static func requireTier(_ allowed: Set<String>, for what: String, belongs: String) throws {
        if let tier, !allowed.contains(tier) { throw WrongTier(what: what, tier: tier, belongs: belongs) }
    }

    /// Runs `body` holding an exclusive lock shared by every test process of the run (a file
    /// under the run's folder): for the few steps processes running side by side must not
    /// interleave (creating the template database, handing out ports, moto's settings).
    public static func withRunLock<T>(_ name: String, _ body: () throws -> T) throws -> T {
        let fd = open(try tmp() + "/\(name).lock", O_CREAT | O_RDWR, 0o644)
        guard fd >= 0 else { throw Subprocess.Failed(command: "open \(name).lock", status: errno) }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 && errno == EINTR {}
        return try body()
    }

    public static func adminURL(database: String = "postgres") throws -> String {
        "host=\(try pgSocket()) port=55432 user=pinglass dbname=\(database)"
    }

    /// A fresh directory for one test's files.
    public static func makeTempDir(_ label: String) throws -> String {
        let dir = try tmp() + "/\(label)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o755])
        return dir
    }

    /// Every test process holds a shared lock on the cluster from its first database on; a
    /// test that stops the cluster needs it exclusively. So tests that stop or restart the
    /// shared PostgreSQL (PostgresRestartTests, PoolOutageTests, PaymentOutageTests) refuse at once, with a message, when
    /// another test process runs beside them (`swift test --parallel`), instead of pulling
    /// the server from under it.
    nonisolated(unsafe) private static var clusterLockFD: Int32 = -1

    public static func holdClusterShared() throws {
        if clusterLockFD < 0 {
            clusterLockFD = open(try tmp() + "/cluster.lock", O_CREAT | O_RDWR, 0o644)
        }
        _ = flock(clusterLockFD, LOCK_SH)
    }

    struct ClusterInUse: Error, CustomStringConvertible {
        var description: String {
            "another test process uses the shared PostgreSQL: tests that stop it must run alone (not with --parallel)"
        }
    }

    /// Runs the cluster's pg_ctl (as the postgres user when we are root): "stop", "start", "restart".
    /// Stop and restart take the cluster exclusively (see `holdClusterShared`); start gives it back.
    public static func pgControl(_ action: String) throws {
        try requireTier(["disruptive"], for: "pg_ctl \(action) of the shared PostgreSQL", belongs: "DisruptiveTests")
        try holdClusterShared()
        if action != "start" {
            guard flock(clusterLockFD, LOCK_EX | LOCK_NB) == 0 else { throw ClusterInUse() }
        }
        defer { if action != "stop" { _ = flock(clusterLockFD, LOCK_SH) } }
        var args = ["-D", try pgData(), "-w", "-t", "30"]
        if action != "start" { args += ["-m", "fast"] }
        args.append(action)
        if action != "stop" { args += ["-l", try pgSocket() + "/postgres.log"] }
        let pgctl = try pgBin() + "/pg_ctl"
        let status: Int32
        if getuid() == 0 {
            status = try Subprocess.run("/usr/sbin/runuser", ["-u", "postgres", "--", pgctl] + args)
        } else {
            status = try Subprocess.run(pgctl, args)
        }
        guard status == 0 else { throw Subprocess.Failed(command: "pg_ctl \(action)", status: status) }
    }
}

/// Starting and stopping child processes for the tests (posix_spawn + waitpid: exact,
/// and unaffected by daemons that keep inherited descriptors open).
public enum Subprocess {
    public struct Failed: Error, CustomStringConvertible {
        public let command: String
        public let status: Int32
        public var description: String { "\(command) exited with \(status)" }
    }

    /// Runs to completion; returns the exit status. Output goes to the test log.
    @discardableResult
    public static func run(_ path: String, _ args: [String], environment: [String: String]? = nil) throws -> Int32 {
        try ChildProcess(path, args, environment: environment ?? ProcessInfo.processInfo.environment, outputPath: nil).wait()
    }

    /// Runs to completion and returns (status, stdout, stderr).
    public static func capture(_ path: String, _ args: [String], environment: [String: String]? = nil) throws -> (Int32, String, String) {
        let base = NSTemporaryDirectory() + "pinglass-capture-\(UUID().uuidString)"
        defer { unlink(base + ".out"); unlink(base + ".err") }
        let p = try ChildProcess(path, args, environment: environment ?? ProcessInfo.processInfo.environment,
                                 outputPath: base + ".out", errorPath: base + ".err")
        let status = p.wait()
        let out = (try? String(contentsOfFile: base + ".out", encoding: .utf8)) ?? ""
        let err = (try? String(contentsOfFile: base + ".err", encoding: .utf8)) ?? ""
        return (status, out, err)
    }

    /// Starts in the background with output appended to `logPath`.
    public static func start(_ path: String, _ args: [String], environment: [String: String], logPath: String) throws -> ChildProcess {
        try ChildProcess(path, args, environment: environment, outputPath: logPath)
    }

    /// Polls `condition` every `interval` until it holds or `timeout` passes (readiness, not
    /// a fixed sleep). A short interval lets a test act the moment a state is reached.
    public static func waitUntil(timeout: Double = 10, interval: Double = 0.02, _ what: String,
                                 _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if (try? condition()) == true { return }
            usleep(UInt32(interval * 1e6))
        }
        throw WaitTimeout(what: what)
    }

    public struct WaitTimeout: Error, CustomStringConvertible {
        public let what: String
        public var description: String { "timed out waiting for \(what)" }
    }

    /// PIDs of the direct children of `pid` (a pool's workers).
    public static func children(of pid: Int32) -> [Int32] {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8) else { return [] }
        return text.split(separator: " ").compactMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    public static func isAlive(_ pid: Int32) -> Bool {
        kill(pid, 0) == 0 && !((try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8))?.contains(") Z ") ?? true)
    }

    /// A free TCP port on loopback, never handed out before in this run: test processes
    /// running side by side (`--parallel`) each bind what they got a moment later, so the
    /// ports given out are recorded under a run-wide lock.
    public static func freePort() -> Int {
        guard let used = try? TestEnvironment.tmp() + "/ports.used" else { return anyFreePort() }
        return (try? TestEnvironment.withRunLock("ports") {
            let taken = Set(((try? String(contentsOfFile: used, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { Int($0) })
            var port = anyFreePort()
            while taken.contains(port) { port = anyFreePort() }
            if let handle = FileHandle(forWritingAtPath: used) ?? {
                _ = FileManager.default.createFile(atPath: used, contents: nil)   // a race with another test: the open below decides
                return FileHandle(forWritingAtPath: used)
            }() {
                handle.seekToEndOfFile()
                handle.write(Data("\(port)\n".utf8))
                handle.closeFile()
            }
            return port
        }) ?? anyFreePort()
    }

    static func anyFreePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}

/// A child process started with posix_spawn.
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    private var status: Int32?

    public init(_ path: String, _ args: [String], environment: [String: String], outputPath: String?, errorPath: String? = nil) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        Self.closeOnExec()
        if let outputPath {
            posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            if let errorPath {
                posix_spawn_file_actions_addopen(&actions, 2, errorPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            } else {
                posix_spawn_file_actions_adddup2(&actions, 1, 2)
            }
        }
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + args).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { argv.forEach { free($0) }; envp.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, nil, argv, envp)
        guard rc == 0 else { throw Subprocess.Failed(command: "spawn \(path): \(String(cString: strerror(rc)))", status: rc) }
        self.pid = pid
    }

    /// Marks every descriptor above stderr close-on-exec, so a child inherits none. Under
    /// `swift test --parallel` a test process holds the pipes of other tests' processes; a
    /// daemon (nginx) or a long duty keeping one open would hold back the report of a test
    /// that finished long before (its runner waits for the pipe to close).
    static func closeOnExec() {
        guard let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return }
        for fd in fds.compactMap({ Int32($0) }) where fd > 2 {
            let flags = fcntl(fd, F_GETFD)
            if flags >= 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
        }
    }

    public var processIdentifier: Int32 { pid }

    /// Waits for the exit; the exit code, or 128 + signal number.
    @discardableResult
    public func wait() -> Int32 {
        if let status { return status }
        var st: Int32 = 0
        while waitpid(pid, &st, 0) < 0 && errno == EINTR {}
        let code = (st & 0x7f) == 0 ? (st >> 8) & 0xff : 128 + (st & 0x7f)
        status = code
        return code
    }

    public var isRunning: Bool {
        if status != nil { return false }
        var st: Int32 = 0
        let r = waitpid(pid, &st, WNOHANG)
        if r == pid {
            status = (st & 0x7f) == 0 ? (st >> 8) & 0xff : 128 + (st & 0x7f)
            return false
        }
        return r == 0
    }

    public func signal(_ sig: Int32) { if isRunning { kill(pid, sig) } }
    public func terminate() { signal(SIGTERM) }
    public func waitUntilExit() { wait() }
    public var terminationStatus: Int32 { wait() }
}

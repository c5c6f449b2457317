import CFastCGI
import HTTPCore
#if canImport(Glibc)
import Glibc
#endif

/// How the pre-fork pool runs. Every field has a safe default.
public struct PoolConfiguration: Sendable {
    /// Unix socket nginx connects to (`fastcgi_pass unix:…`).
    public var socketPath: String
    /// Fixed number of worker processes (php-fpm's `pm = static`).
    public var workers: Int = 4
    /// A worker exits after this many requests and is replaced (0 = never), like `pm.max_requests`.
    public var maxRequests: Int = 0
    /// A request still running after this many seconds ends its worker (SIGALRM); 0 = no limit.
    /// Counted from the moment the request has been read.
    public var requestTimeoutSeconds: Int = 60
    /// A connection that has not delivered its whole request (params, body and the record
    /// that ends the body) this many seconds after it was accepted is cut, and its worker
    /// serves the next one. An unfinished request never reaches the handler.
    public var readTimeoutSeconds: Int = 10
    /// A connection that has sent nothing this long after it was accepted is closed (nginx
    /// writes the request as soon as it connects; only an idle client waits).
    public var firstRecordTimeout: Double = 0.25
    /// Graceful stop waits this long for busy workers before SIGKILL.
    public var stopTimeoutSeconds: Int = 30
    /// `listen()` backlog of the socket.
    public var backlog: Int32 = 1024
    /// Permission bits of the socket file (nginx's user must be able to connect).
    public var socketMode: mode_t = 0o666
    /// Largest request body a worker reads (nginx enforces the public limits).
    /// Above nginx's largest `client_max_body_size` (30 MB: reference photos as base64 JSON).
    public var maxBodyBytes: Int = 32 << 20

    public init(socketPath: String) { self.socketPath = socketPath }
}

/// How much a master's log line matters; the executable maps it onto its logger.
public enum PoolLogLevel: String, Sendable {
    case info, warning, error
}

/// The pre-fork master: opens the socket, forks the workers, respawns the ones that die
/// (with back-off when they die young or when fork fails), recycles them, and stops or
/// reloads on signals:
///
/// - `SIGQUIT`/`SIGTERM`: graceful stop: workers finish the request in hand, then exit;
/// - `SIGINT`: immediate stop;
/// - `SIGHUP`: rolling reload: `beforeReload` runs first (it re-reads the configuration; if it
///   throws, the reload is refused and the running workers stay), then the workers are
///   replaced one at a time, each after its current request, so the pool never has fewer
///   than N-1 workers accepting (the new ones run the handler factory again).
///
/// No signal is lost: the master keeps its signals blocked and receives them only while it
/// waits (see `Signals.wait`). The master itself never touches Dispatch, Swift concurrency or
/// a database: it forks.
///
/// Test hook: `PINGLASS_TEST_FORK_FAIL=N` in the master's environment makes its next N forks
/// fail with EAGAIN (as at the process limit), to prove that they are retried with back-off.
/// Inert unless set.
///
/// ```swift
/// var config = PoolConfiguration(socketPath: "/run/pinglass/fcgi.sock")
/// config.workers = 4
/// Pool(configuration: config) { { request in Response(status: 200, contentType: "text/plain", body: "hi") } }.run()
/// ```
public struct Pool {
    public let configuration: PoolConfiguration
    /// Called in each worker right after fork; returns that worker's request handler.
    public let makeHandler: () -> (Request) -> Response
    /// Runs in the master on SIGHUP before any worker is replaced: re-read whatever the new
    /// workers will use. Throwing refuses the reload (logged at error level with the error's
    /// description, so it must name the problem and never print a secret value).
    public var beforeReload: () throws -> Void = {}
    public var log: (PoolLogLevel, String) -> Void = { level, message in
        writeStderr("pinglass-fcgi master[\(getpid())]: " + (level == .info ? "" : "\(level.rawValue): ") + message)
    }

    public init(configuration: PoolConfiguration, makeHandler: @escaping () -> (Request) -> Response) {
        self.configuration = configuration
        self.makeHandler = makeHandler
    }

    /// Runs until stopped; returns the process exit status.
    public func run() -> Int32 {
        FCGX_Init()
        guard let listenFD = openSocket() else { return 1 }
        installSignalHandlers()
        var master = Master(pool: self, listenFD: listenFD, forkFailures: ForkFailureInjection())
        master.run()
        unlink(configuration.socketPath)
        log(.info, "stopped")
        return 0
    }

    /// The listening socket, non-blocking: a worker that loses the race to accept a
    /// connection (epoll's EPOLLEXCLUSIVE wakes one idle worker, the ppoll fallback wakes
    /// every one) gets EAGAIN instead of blocking in accept(), where a stop signal could not
    /// reach it.
    private func openSocket() -> Int32? {
        unlink(configuration.socketPath)
        let fd = FCGX_OpenSocket(configuration.socketPath, configuration.backlog)
        guard fd >= 0 else {
            log(.error, "cannot listen on \(configuration.socketPath): \(String(cString: strerror(errno)))")
            return nil
        }
        chmod(configuration.socketPath, configuration.socketMode)
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        return fd
    }

    /// Blocked first, then handled: from here on they arrive only inside `Signals.wait`.
    private func installSignalHandlers() {
        Signals.block([SIGQUIT, SIGTERM, SIGINT, SIGHUP, SIGCHLD])
        Signals.ignore(SIGPIPE)
        Signals.install(SIGQUIT) { _ in Signals.stop = 1 }
        Signals.install(SIGTERM) { _ in Signals.stop = 1 }
        Signals.install(SIGINT) { _ in Signals.immediate = 1 }
        Signals.install(SIGHUP) { _ in Signals.reload = 1 }
        Signals.install(SIGCHLD) { _ in Signals.childExited = 1 }
    }
}

/// A delay that doubles from 0.1 s up to 5 s while failures repeat.
struct Backoff {
    private(set) var seconds = 0.0
    mutating func grow() -> Double {
        seconds = min(max(seconds * 2, 0.1), 5)
        return seconds
    }
    mutating func reset() { seconds = 0 }
}

/// `PINGLASS_TEST_FORK_FAIL=N`: the next N forks fail with EAGAIN. Read once, at start.
struct ForkFailureInjection {
    private(set) var remaining: Int

    init() {
        remaining = getenv("PINGLASS_TEST_FORK_FAIL").flatMap { Int(String(cString: $0)) } ?? 0
    }

    mutating func fork() -> pid_t {
        guard remaining > 0 else { return Glibc.fork() }
        remaining -= 1
        errno = EAGAIN
        return -1
    }
}

func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

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
    public var requestTimeoutSeconds: Int = 60
    /// Graceful stop waits this long for busy workers before SIGKILL.
    public var stopTimeoutSeconds: Int = 30
    /// `listen()` backlog of the socket.
    public var backlog: Int32 = 1024
    /// Permission bits of the socket file (nginx's user must be able to connect).
    public var socketMode: mode_t = 0o666
    /// Largest request body a worker reads (nginx enforces the public limits).
    public var maxBodyBytes: Int = 16 << 20

    public init(socketPath: String) { self.socketPath = socketPath }
}

/// The pre-fork master: opens the socket, forks the workers, respawns the ones that die
/// (with back-off when they die young), recycles them, and stops or reloads on signals:
///
/// - `SIGQUIT`/`SIGTERM`: graceful stop: workers finish the request in hand, then exit;
/// - `SIGINT`: immediate stop;
/// - `SIGHUP`: rolling reload: workers are replaced one at a time, each after its current
///   request, so the pool never has fewer than N-1 workers accepting (the new ones run the
///   handler factory again, so they read the configuration anew).
///
/// The master itself never touches Dispatch, Swift concurrency or a database: it forks.
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
    public var log: (String) -> Void = { writeStderr("pinglass-fcgi master[\(getpid())]: " + $0) }

    public init(configuration: PoolConfiguration, makeHandler: @escaping () -> (Request) -> Response) {
        self.configuration = configuration
        self.makeHandler = makeHandler
    }

    private struct Child { var startedAt: Double }

    /// Runs until stopped; returns the process exit status.
    public func run() -> Int32 {
        FCGX_Init()
        unlink(configuration.socketPath)
        let fd = FCGX_OpenSocket(configuration.socketPath, configuration.backlog)
        guard fd >= 0 else {
            log("cannot listen on \(configuration.socketPath): \(String(cString: strerror(errno)))")
            return 1
        }
        chmod(configuration.socketPath, configuration.socketMode)
        Signals.ignore(SIGPIPE)
        Signals.install(SIGQUIT) { _ in Signals.stop = 1 }
        Signals.install(SIGTERM) { _ in Signals.stop = 1 }
        Signals.install(SIGINT) { _ in Signals.immediate = 1 }
        Signals.install(SIGHUP) { _ in Signals.reload = 1 }
        Signals.install(SIGCHLD) { _ in Signals.wake = 1 }
        Signals.install(SIGALRM) { _ in Signals.wake = 1 }   // a tick while a reload is under way

        var children: [pid_t: Child] = [:]
        var backoff = 0.0                      // seconds before the next respawn after early deaths
        var toRetire: [pid_t] = []             // rolling reload: workers still to replace, in order
        var retiring: pid_t?                   // the old worker asked to finish, until it exits

        /// Asks the next old worker to finish; repeated each tick until it has gone (it may have
        /// checked its flag just before blocking in accept).
        func retireNext() {
            if let pid = retiring {
                if children[pid] != nil { kill(pid, SIGQUIT); return }
                retiring = nil
            }
            while let pid = toRetire.first {
                toRetire.removeFirst()
                guard children[pid] != nil else { continue }
                retiring = pid
                kill(pid, SIGQUIT)
                return
            }
            alarm(0)
        }

        func spawn() {
            let pid = fork()
            if pid == 0 {
                Worker(listenFD: fd, configuration: configuration, handler: makeHandler()).run()
            }
            if pid < 0 { log("fork failed: \(String(cString: strerror(errno)))"); return }
            children[pid] = Child(startedAt: monotonicSeconds())
        }

        for _ in 0..<configuration.workers { spawn() }
        log("\(configuration.workers) workers on \(configuration.socketPath) (max_requests=\(configuration.maxRequests), request timeout \(configuration.requestTimeoutSeconds)s)")

        while true {
            if Signals.immediate != 0 {
                for pid in children.keys { kill(pid, SIGKILL) }
                reapAll(&children, deadline: monotonicSeconds() + 5)
                break
            }
            if Signals.stop != 0 {
                log("graceful stop: waiting for \(children.count) workers")
                stopGracefully(&children)
                break
            }
            if Signals.reload != 0 {
                Signals.reload = 0
                log("reload: replacing \(children.count) workers one at a time")
                toRetire = Array(children.keys).sorted()
                retiring = nil
            }
            if retiring != nil || !toRetire.isEmpty {
                retireNext()
                if retiring != nil { alarm(1) }
            }
            var status: Int32 = 0
            let pid = waitpid(-1, &status, 0)
            if pid <= 0 { continue }            // EINTR: a signal arrived; loop reads the flags
            guard let child = children.removeValue(forKey: pid) else { continue }
            let lived = monotonicSeconds() - child.startedAt
            let signaled = (status & 0x7f) != 0
            let code = (status >> 8) & 0xff
            if signaled {
                let sig = status & 0x7f
                let why = sig == SIGALRM ? " (request time limit)" : ""
                log("worker \(pid) killed by signal \(sig)\(why) after \(Int(lived))s; respawning")
            } else if code != 0 {
                log("worker \(pid) exited with code \(code); respawning")
            }
            if Signals.stop != 0 || Signals.immediate != 0 { continue }
            let died = signaled || code != 0
            if died && lived < 1 {
                backoff = min(max(backoff * 2, 0.1), 5)
                log("worker died within 1s of start; respawn in \(backoff)s")
                sleepSeconds(backoff)
            } else if lived > 5 {
                backoff = 0
            }
            spawn()
        }
        unlink(configuration.socketPath)
        log("stopped")
        return 0
    }

    /// SIGQUIT to every worker, repeated (a worker may have just checked its flag before
    /// blocking in accept), SIGKILL after the stop timeout.
    private func stopGracefully(_ children: inout [pid_t: Child]) {
        let deadline = monotonicSeconds() + Double(configuration.stopTimeoutSeconds)
        var lastSignal = 0.0
        while !children.isEmpty {
            let now = monotonicSeconds()
            if now >= deadline {
                log("stop timeout: killing \(children.count) workers")
                for pid in children.keys { kill(pid, SIGKILL) }
                reapAll(&children, deadline: now + 5)
                return
            }
            if now - lastSignal >= 0.5 {
                for pid in children.keys { kill(pid, SIGQUIT) }
                lastSignal = now
            }
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid > 0 { children.removeValue(forKey: pid); continue }
            if pid < 0 && errno == ECHILD { children.removeAll(); return }
            sleepSeconds(0.02)
        }
    }

    private func reapAll(_ children: inout [pid_t: Child], deadline: Double) {
        while !children.isEmpty && monotonicSeconds() < deadline {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, 0)
            if pid > 0 { children.removeValue(forKey: pid) } else if errno == ECHILD { return }
        }
    }
}

func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Sleeps the whole time even when SIGCHLD arrives meanwhile (a back-off must hold while
/// other workers die), but returns early on a stop signal.
func sleepSeconds(_ s: Double) {
    var request = timespec(tv_sec: Int(s), tv_nsec: Int((s - Double(Int(s))) * 1e9))
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR && Signals.stop == 0 && Signals.immediate == 0 {
        request = remaining
    }
}

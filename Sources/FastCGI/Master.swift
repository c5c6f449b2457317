#if canImport(Glibc)
import Glibc
#endif

/// The master's state and loop. Each turn: reap the children that exited, act on the
/// signal flags, fork the missing workers (unless backing off), ask the next old worker to
/// leave if a reload is under way, then wait for a signal or the next deadline.
struct Master {
    private struct Child { var startedAt: Double }

    let pool: Pool
    let listenFD: Int32
    var forkFailures: ForkFailureInjection
    /// Taken before any fork: a worker compares it with its parent to learn that the master
    /// died before the worker could ask to be told.
    private let pid = getpid()

    private var children: [pid_t: Child] = [:]
    /// Rolling reload: old workers still to replace, in order, and the one leaving now.
    private var toRetire: [pid_t] = []
    private var retiring: pid_t?
    private var reloading = false
    /// Workers that die young, and forks that fail, delay the next fork until `nextForkAt`.
    private var deathBackoff = Backoff()
    private var forkBackoff = Backoff()
    private var nextForkAt = 0.0

    init(pool: Pool, listenFD: Int32, forkFailures: ForkFailureInjection) {
        self.pool = pool
        self.listenFD = listenFD
        self.forkFailures = forkFailures
    }

    private var size: Int { pool.configuration.workers }
    private func log(_ level: PoolLogLevel, _ message: String) { pool.log(level, message) }

    mutating func run() {
        let c = pool.configuration
        log(.info, "\(c.workers) workers on \(c.socketPath) (max_requests=\(c.maxRequests), read timeout \(c.readTimeoutSeconds)s, request timeout \(c.requestTimeoutSeconds)s)")
        if forkFailures.remaining > 0 {
            log(.warning, "test hook PINGLASS_TEST_FORK_FAIL: the next \(forkFailures.remaining) forks will fail")
        }
        while true {
            reap()
            if Signals.immediate != 0 { return killAll() }
            if Signals.stop != 0 { return stopGracefully() }
            if Signals.reload != 0 {
                Signals.reload = 0
                startReload()
            }
            forkMissing()
            retireNext()
            Signals.wait(timeout: children.count < size ? nextForkAt - monotonicSeconds() : nil)
        }
    }

    // MARK: children

    /// Collects every exited child without blocking (with none left at all, waitpid says
    /// ECHILD and the loop simply waits: no spinning).
    private mutating func reap() {
        Signals.childExited = 0
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid <= 0 { return }
            guard let child = children.removeValue(forKey: pid) else { continue }
            if pid == retiring { retiring = nil }
            noteExit(pid, status: status, lived: monotonicSeconds() - child.startedAt)
        }
    }

    /// Logs an abnormal exit and delays the respawn of workers that die young.
    private mutating func noteExit(_ pid: pid_t, status: Int32, lived: Double) {
        let signal = status & 0x7f
        let code = (status >> 8) & 0xff
        if signal != 0 {
            let why = signal == SIGALRM ? " (request time limit)" : ""
            log(.warning, "worker \(pid) killed by signal \(signal)\(why) after \(Int(lived))s; respawning")
        } else if code != 0 {
            log(.warning, "worker \(pid) exited with code \(code); respawning")
        }
        if Signals.stop != 0 || Signals.immediate != 0 { return }
        if (signal != 0 || code != 0) && lived < 1 {
            let delay = deathBackoff.grow()
            nextForkAt = max(nextForkAt, monotonicSeconds() + delay)
            log(.warning, "worker died within 1s of start; respawn in \(delay)s")
        } else if lived > 5 {
            deathBackoff.reset()
        }
    }

    /// Forks until the pool is full, unless a back-off is running. A failed fork is retried
    /// after a growing delay, however many children are left (even none).
    private mutating func forkMissing() {
        while children.count < size && monotonicSeconds() >= nextForkAt {
            let pid = forkFailures.fork()
            if pid == 0 { Worker.start(listenFD: listenFD, masterPID: self.pid, configuration: pool.configuration, makeHandler: pool.makeHandler) }
            if pid < 0 {
                let why = String(cString: strerror(errno))
                let delay = forkBackoff.grow()
                nextForkAt = monotonicSeconds() + delay
                log(.error, "fork failed: \(why); retry in \(delay)s (\(children.count) of \(size) workers running)")
                return
            }
            forkBackoff.reset()
            children[pid] = Child(startedAt: monotonicSeconds())
        }
    }

    // MARK: reload

    /// Re-reads the configuration through `beforeReload`; only if that succeeds is every
    /// current worker queued for replacement (a reload during a reload starts over, with the
    /// worker already leaving left to finish).
    private mutating func startReload() {
        do {
            try pool.beforeReload()
        } catch {
            log(.error, "reload refused, keeping the \(children.count) running workers: \(error)")
            return
        }
        toRetire = children.keys.sorted().filter { $0 != retiring }
        reloading = true
        log(.info, "reload: replacing \(toRetire.count) workers one at a time")
    }

    /// Asks the next old worker to finish its request and exit, once the previous one has
    /// gone and its replacement is running (so at least N-1 workers always accept). One
    /// SIGQUIT is enough: a busy worker holds it until its request is done.
    private mutating func retireNext() {
        guard retiring == nil, children.count >= size else { return }
        while let pid = toRetire.first {
            toRetire.removeFirst()
            guard children[pid] != nil else { continue }
            retiring = pid
            kill(pid, SIGQUIT)
            return
        }
        if reloading {
            reloading = false
            log(.info, "reload: done")
        }
    }

    // MARK: stop

    /// SIGQUIT to every worker (each finishes the request in hand), SIGKILL to those still
    /// there after the stop timeout or on SIGINT.
    private mutating func stopGracefully() {
        log(.info, "graceful stop: waiting for \(children.count) workers")
        for pid in children.keys { kill(pid, SIGQUIT) }
        let deadline = monotonicSeconds() + Double(pool.configuration.stopTimeoutSeconds)
        while true {
            reap()
            if children.isEmpty { return }
            if Signals.immediate != 0 { return killAll() }
            let left = deadline - monotonicSeconds()
            if left <= 0 {
                log(.warning, "stop timeout: killing \(children.count) workers")
                return killAll()
            }
            Signals.wait(timeout: left)
        }
    }

    private mutating func killAll() {
        for pid in children.keys { kill(pid, SIGKILL) }
        let deadline = monotonicSeconds() + 5
        while !children.isEmpty && monotonicSeconds() < deadline {
            reap()
            if !children.isEmpty { Signals.wait(timeout: 0.05) }
        }
    }
}

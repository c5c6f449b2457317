import CFastCGI
#if canImport(Glibc)
import Glibc
#endif

/// Signal flags shared by the master and its workers, and the one way both wait for them.
///
/// Handlers only set a flag (async-signal-safe); the one exception is a worker's own timer,
/// SIGALRM, which never comes from outside (see `Worker`). The signals a process reacts to stay
/// *blocked* while it runs; they are delivered only inside `wait`, which unblocks them
/// atomically for the duration of the wait (`ppoll`). So a signal that arrives while the
/// process is busy stays pending and ends the next wait at once: none is lost between reading
/// the flags and going to sleep, and none interrupts work in progress.
enum Signals {
    nonisolated(unsafe) static var stop: sig_atomic_t = 0        // graceful stop (QUIT/TERM)
    nonisolated(unsafe) static var immediate: sig_atomic_t = 0   // INT: stop without waiting
    nonisolated(unsafe) static var reload: sig_atomic_t = 0      // HUP: rolling reload
    /// Set by SIGCHLD: its only job is to end the master's wait so it reaps the child.
    nonisolated(unsafe) static var childExited: sig_atomic_t = 0
    /// A worker's connection whose request it is reading (-1: none), for its SIGALRM handler,
    /// which cuts that connection when the read time is up and then sets `readTimedOut`.
    nonisolated(unsafe) static var readingFD: sig_atomic_t = -1
    nonisolated(unsafe) static var readTimedOut: sig_atomic_t = 0

    /// Installs `handler` with `sigaction` and no `SA_RESTART`, so the wait returns EINTR.
    static func install(_ sig: Int32, _ handler: @escaping @convention(c) (Int32) -> Void) {
        var sa = sigaction()
        sa.__sigaction_handler.sa_handler = handler
        sigemptyset(&sa.sa_mask)
        sa.sa_flags = 0
        sigaction(sig, &sa, nil)
    }

    static func reset(_ sig: Int32) {
        var sa = sigaction()
        sa.__sigaction_handler.sa_handler = SIG_DFL
        sigemptyset(&sa.sa_mask)
        sigaction(sig, &sa, nil)
    }

    static func ignore(_ sig: Int32) {
        var sa = sigaction()
        sa.__sigaction_handler.sa_handler = SIG_IGN
        sigemptyset(&sa.sa_mask)
        sigaction(sig, &sa, nil)
    }

    /// Blocks `signals` in addition to those already blocked.
    static func block(_ signals: [Int32]) {
        var set = makeSet(signals)
        sigprocmask(SIG_BLOCK, &set, nil)
    }

    /// Blocks exactly `signals` and unblocks every other one (a forked worker starts with its
    /// master's mask and must not keep it).
    static func blockOnly(_ signals: [Int32]) {
        var set = makeSet(signals)
        sigprocmask(SIG_SETMASK, &set, nil)
    }

    /// Sleeps until `fd` (if any) is readable, a signal handler has run, or `timeout` seconds
    /// (if any) have passed. Every signal is deliverable during the wait and only then.
    /// Returns true when `fd` is readable.
    @discardableResult
    static func wait(readable fd: Int32? = nil, timeout: Double? = nil) -> Bool {
        var unblocked = sigset_t()
        sigemptyset(&unblocked)
        var pfd = pollfd(fd: fd ?? -1, events: Int16(POLLIN), revents: 0)   // poll skips fd -1
        let ready: Int32
        if let timeout {
            let t = max(0, timeout)
            var ts = timespec(tv_sec: Int(t), tv_nsec: Int((t - Double(Int(t))) * 1e9))
            ready = ppoll(&pfd, 1, &ts, &unblocked)
        } else {
            ready = ppoll(&pfd, 1, nil, &unblocked)
        }
        return ready > 0 && pfd.revents & Int16(POLLIN) != 0
    }

    private static func makeSet(_ signals: [Int32]) -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        for s in signals { sigaddset(&set, s) }
        return set
    }
}

/// Writes straight to fd 2 (usable in the master before any logging is set up).
func writeStderr(_ s: String) {
    var line = s
    if !line.hasSuffix("\n") { line += "\n" }
    line.withUTF8 { buf in _ = write(2, buf.baseAddress, buf.count) }
}

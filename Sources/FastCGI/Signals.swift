#if canImport(Glibc)
import Glibc
#endif

/// Signal flags shared by the master and its workers. Handlers only set a flag
/// (async-signal-safe); the loops read them.
enum Signals {
    nonisolated(unsafe) static var stop: sig_atomic_t = 0        // graceful stop (QUIT/TERM)
    nonisolated(unsafe) static var immediate: sig_atomic_t = 0   // INT: stop without waiting
    nonisolated(unsafe) static var reload: sig_atomic_t = 0      // HUP: rolling reload
    /// Set by SIGCHLD and the reload tick (SIGALRM): their only job is to interrupt waitpid().
    nonisolated(unsafe) static var wake: sig_atomic_t = 0

    /// Installs `handler` with `sigaction` and no `SA_RESTART`, so a blocking accept()
    /// or waitpid() returns EINTR and the loop notices the flag.
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

    /// Blocks (or unblocks) the stop signals, so a request in progress is never cut short.
    static func setStopSignalsBlocked(_ blocked: Bool) {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGQUIT)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGHUP)
        sigprocmask(blocked ? SIG_BLOCK : SIG_UNBLOCK, &set, nil)
    }
}

/// Writes straight to fd 2 (usable in the master before any logging is set up).
func writeStderr(_ s: String) {
    var line = s
    if !line.hasSuffix("\n") { line += "\n" }
    line.withUTF8 { buf in _ = write(2, buf.baseAddress, buf.count) }
}

#if canImport(Glibc)
import Glibc
#endif

/// Named crash points for the crash-point test matrix: `CRASHPOINT=name` makes the process
/// `_exit(137)` when it reaches that point. Compiled in always, inert unless set.
///
/// ```swift
/// Crashpoint.hit("webhook.after-log")
/// ```
public enum Crashpoint {
    nonisolated(unsafe) static var armed: String? = {
        guard let p = getenv("CRASHPOINT") else { return nil }
        let s = String(cString: p)
        return s.isEmpty ? nil : s
    }()

    public static func hit(_ name: String) {
        if let armed, armed == name { _exit(137) }
    }
}

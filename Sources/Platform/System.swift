#if canImport(Glibc)
import Glibc
#endif

/// Small wrappers over libc for files, time and the environment (the domain library does
/// without Foundation: faster start, no threads before fork).
public enum System {
    /// Seconds since the Unix epoch (wall clock).
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    public static func monotonic() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    public static func sleep(seconds: Double) {
        guard seconds > 0 else { return }
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }

    /// `mkdir -p`: creates the folder and its parents (mode 0755); existing ones are fine.
    public static func makeDirectories(_ path: String) throws {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw SystemError("cannot create \(current): errno \(errno)")
            }
        }
    }

    public static func readFile(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; return nil }
            if n == 0 { return out }
            out.append(contentsOf: buf[0..<n])
        }
    }

    public static func fileExists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// Names in a directory (without `.` and `..`), sorted.
    public static func listDirectory(_ path: String) -> [String]? {
        guard let dir = opendir(path) else { return nil }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    public static func environment() -> [String: String] {
        var env: [String: String] = [:]
        var p = environ
        while let kv = p.pointee {
            let s = String(cString: kv)
            if let eq = s.firstIndex(of: "=") { env[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
            p += 1
        }
        return env
    }

    public static func hostname() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        gethostname(&buf, 255)
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The directory of the running executable (to find files installed beside it).
    public static func executableDirectory() -> String? {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, 4095)
        guard n > 0 else { return nil }
        let path = String(decoding: buf.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard let slash = path.lastIndex(of: "/") else { return nil }
        return String(path[..<slash])
    }

    /// The forms of a UTC time stamp the code writes, shown for 2026-11-29 10:00:00.123 UTC.
    public enum UTCFormat: Sendable {
        /// `2026-11-29T10:00:00.123Z`: ISO 8601 with milliseconds (logs, alert details).
        case iso8601
        /// `2026-11-29T10:00:00+00:00`: ISO 8601 to the second with an offset (T-Bank's
        /// `RedirectDueDate`).
        case iso8601Offset
        /// `20261129T100000Z`: ISO 8601 basic (SigV4's `X-Amz-Date`).
        case basic
        /// `20261129`: the day, basic (SigV4's credential scope).
        case basicDay
    }

    /// A Unix time as UTC text: the one place a time is broken into calendar fields
    /// (`gmtime_r`). Fractions of a second are cut, not rounded (`.9999` is `.999`).
    public static func utc(_ t: Double, _ format: UTCFormat) -> String {
        var secs = time_t(t.rounded(.down))
        var tm = tm()
        gmtime_r(&secs, &tm)
        func pad(_ v: Int32, _ w: Int = 2) -> String { let s = String(v); return String(repeating: "0", count: max(0, w - s.count)) + s }
        let (year, month, day) = (pad(tm.tm_year + 1900, 4), pad(tm.tm_mon + 1), pad(tm.tm_mday))
        let (hour, minute, second) = (pad(tm.tm_hour), pad(tm.tm_min), pad(tm.tm_sec))
        switch format {
        case .iso8601:
            let ms = Int32((t - Double(secs)) * 1000)
            return "\(year)-\(month)-\(day)T\(hour):\(minute):\(second).\(pad(ms, 3))Z"
        case .iso8601Offset: return "\(year)-\(month)-\(day)T\(hour):\(minute):\(second)+00:00"
        case .basic: return "\(year)\(month)\(day)T\(hour)\(minute)\(second)Z"
        case .basicDay: return "\(year)\(month)\(day)"
        }
    }

    /// ISO 8601 UTC with milliseconds: `2026-11-29T10:00:00.123Z` (`utc(t, .iso8601)`).
    public static func iso8601(_ t: Double) -> String { utc(t, .iso8601) }

    /// Seconds since the epoch of an ISO 8601 UTC time as S3 writes it
    /// (`2026-11-29T10:00:00.123Z`, fraction optional); nil for anything else.
    public static func parseISO8601(_ text: String) -> Double? {
        let u = Array(text.utf8)
        guard u.count >= 20, u.last == UInt8(ascii: "Z"), u[4] == UInt8(ascii: "-"), u[7] == UInt8(ascii: "-"),
              u[10] == UInt8(ascii: "T"), u[13] == UInt8(ascii: ":"), u[16] == UInt8(ascii: ":") else { return nil }
        func number(_ r: Range<Int>) -> Int32? {
            r.allSatisfy({ (48...57).contains(u[$0]) }) ? Int32(String(decoding: u[r], as: UTF8.self)) : nil
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
              let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19) else { return nil }
        var fraction = 0.0
        if u.count > 20 {
            guard u[19] == UInt8(ascii: "."), u.count > 21, let f = number(20..<(u.count - 1)) else { return nil }
            fraction = Double(f) / pow10(u.count - 21)
        } else if u[19] != UInt8(ascii: "Z") {
            return nil
        }
        var t = tm()
        t.tm_year = year - 1900; t.tm_mon = month - 1; t.tm_mday = day
        t.tm_hour = hour; t.tm_min = minute; t.tm_sec = second
        return Double(timegm(&t)) + fraction
    }

    private static func pow10(_ n: Int) -> Double { (0..<n).reduce(1.0) { r, _ in r * 10 } }
}

/// A failed system call, with what was attempted.
public struct SystemError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

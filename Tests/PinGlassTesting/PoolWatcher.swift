import Foundation

/// Watches a pool from the outside: every `interval` it records the master's children and,
/// for each, whether it is serving, has a stop signal waiting (it finishes its request and
/// then exits) or has exited and awaits reaping. Rolling-reload properties are then checked
/// on the pids over time, not on what the master says in its log.
///
/// ```swift
/// let watcher = PoolWatcher(master: stack.masterPID)
/// kill(stack.masterPID, SIGHUP)
/// …
/// let report = watcher.stop()
/// XCTAssertGreaterThanOrEqual(report.fewestServing, workers - 1)
/// ```
public final class PoolWatcher: @unchecked Sendable {
    public enum State: Equatable, Sendable {
        case serving
        /// SIGQUIT or SIGTERM is pending: the worker was asked to stop and is busy finishing.
        case stopping
        /// A zombie: it has exited and the master has not reaped it yet.
        case exited
    }

    public struct Sample: Sendable {
        public let time: Double
        public let workers: [Int32: State]
        public func pids(_ state: State) -> Set<Int32> { Set(workers.filter { $0.value == state }.keys) }
    }

    /// What the samples show.
    public struct Report: Sendable {
        public let samples: [Sample]
        /// The least number of serving workers seen at any time.
        public var fewestServing: Int { samples.map { $0.pids(.serving).count }.min() ?? 0 }
        /// The most workers seen stopping or exited at the same time (1 = one at a time).
        public var mostLeaving: Int { samples.map { $0.workers.count - $0.pids(.serving).count }.max() ?? 0 }
        /// The most children the master had at once.
        public var mostWorkers: Int { samples.map { $0.workers.count }.max() ?? 0 }
        /// The first sample that breaks "at least `workers - 1` serving, at most one leaving,
        /// never more than `workers`", for the failure message.
        public func violation(workers: Int) -> String? {
            for s in samples {
                let serving = s.pids(.serving).count
                if serving < workers - 1 || s.workers.count - serving > 1 || s.workers.count > workers {
                    return "at t=\(String(format: "%.3f", s.time - samples[0].time))s: \(s.workers.sorted { $0.key < $1.key })"
                }
            }
            return nil
        }
    }

    private let lock = NSLock()
    private var samples: [Sample] = []
    private var running = true
    private let done = DispatchSemaphore(value: 0)

    public init(master: Int32, interval: Double = 0.02) {
        Thread.detachNewThread { [self] in
            while lock.withLock({ running }) {
                let sample = Self.sample(master)
                lock.withLock { samples.append(sample) }
                usleep(UInt32(interval * 1e6))
            }
            done.signal()
        }
    }

    public var sampleCount: Int { lock.withLock { samples.count } }
    public var latest: Sample? { lock.withLock { samples.last } }

    public func stop() -> Report {
        lock.withLock { running = false }
        done.wait()
        return Report(samples: lock.withLock { samples })
    }

    /// One consistent sample: the children are listed again after their states are read, and
    /// the sample is taken again if the list changed meanwhile (a worker reaped, another forked),
    /// so that states from two different moments are never mixed.
    static func sample(_ master: Int32) -> Sample {
        var pids = Subprocess.children(of: master)
        while true {
            var workers: [Int32: State] = [:]
            for pid in pids { workers[pid] = state(of: pid) }
            let again = Subprocess.children(of: master)
            if again == pids { return Sample(time: Date().timeIntervalSince1970, workers: workers) }
            pids = again
        }
    }

    /// Read from /proc: a zombie has exited; a pending SIGQUIT/SIGTERM means "stopping".
    /// A process gone between listing and reading counts as exited.
    public static func state(of pid: Int32) -> State {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return .exited }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        if fields.first == "Z" || fields.first == "X" { return .exited }
        let stopSignals: UInt64 = 1 << (UInt64(SIGQUIT) - 1) | 1 << (UInt64(SIGTERM) - 1)
        return pendingSignals(pid) & stopSignals != 0 ? .stopping : .serving
    }

    /// The process's pending signals (per-thread and process-wide), as a bit mask.
    public static func pendingSignals(_ pid: Int32) -> UInt64 {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        var mask: UInt64 = 0
        for line in status.split(separator: "\n") where line.hasPrefix("SigPnd:") || line.hasPrefix("ShdPnd:") {
            mask |= UInt64(line.split(separator: "\t").last ?? "", radix: 16) ?? 0
        }
        return mask
    }

    /// How many sockets a process has open (a worker's count grows by one when it accepts).
    public static func openSockets(_ pid: Int32) -> Int {
        let dir = "/proc/\(pid)/fd"
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return fds.filter { (try? FileManager.default.destinationOfSymbolicLink(atPath: dir + "/" + $0))?.hasPrefix("socket:") == true }.count
    }

    /// CPU time a process has used (user + system), in seconds.
    public static func cpuSeconds(_ pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the command: state is field 0, utime field 11, stime field 12.
        guard fields.count > 12, let u = Double(fields[11]), let s = Double(fields[12]) else { return 0 }
        return (u + s) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}

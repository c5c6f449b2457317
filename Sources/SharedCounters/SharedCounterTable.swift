import CSharedCounters
#if canImport(Glibc)
import Glibc
#endif

/// A fixed table of 64-bit counters in memory shared with every process forked after it was
/// made (an anonymous `MAP_SHARED` mapping): a pre-fork master makes it before it forks, so
/// all its workers add into the same numbers and any of them reads the totals. Adds and
/// reads are atomic. The table lives as long as the process that made it (a worker that dies
/// and is respawned finds the counts intact) and starts at zero in a new one.
///
/// ```swift
/// let table = try SharedCounterTable(count: 64)   // in the master, before fork
/// table.add(3)                                    // in any worker
/// let n = table[3]                                // the same number in every worker
/// ```
public final class SharedCounterTable: @unchecked Sendable {
    public let count: Int
    private let base: UnsafeMutablePointer<UInt64>

    /// The mapping could not be made (`errno` text).
    public struct MappingFailed: Error, CustomStringConvertible {
        public let reason: String
        public var description: String { "cannot map shared counters: \(reason)" }
    }

    public init(count: Int) throws {
        precondition(count > 0, "a counter table needs at least one slot")
        guard let p = shared_counters_create(count) else {
            throw MappingFailed(reason: String(cString: strerror(errno)))
        }
        self.count = count
        self.base = p
    }

    /// Unmaps this process's view only; other processes keep theirs.
    deinit { munmap(base, count * MemoryLayout<UInt64>.stride) }

    /// Adds `n` to slot `index` (atomic; relaxed ordering, as a counter needs no more).
    public func add(_ index: Int, _ n: UInt64 = 1) {
        precondition(index >= 0 && index < count, "counter slot \(index) outside 0..<\(count)")
        shared_counters_add(base, index, n)
    }

    public subscript(index: Int) -> UInt64 {
        precondition(index >= 0 && index < count, "counter slot \(index) outside 0..<\(count)")
        return shared_counters_load(base, index)
    }
}

/// The statements a session has prepared, by SQL text: parsed and planned once per session
/// instead of once per call. Bookkeeping only; `Connection` talks to the server.
///
/// - Names come from a counter that only grows, so a name is never given twice in a
///   session, whatever was dropped before.
/// - At `limit` entries the least recently used one makes room: a worker that runs many
///   one-off texts keeps its hot statements prepared instead of freezing the first `limit`.
/// - What is dropped (plan invalidated, room made) is queued for `DEALLOCATE`, which the
///   connection sends when no transaction is open (inside one a failing DEALLOCATE would
///   abort the caller's transaction).
///
/// ```swift
/// var cache = PreparedStatements(limit: 2)
/// let name = cache.name(for: "SELECT 1") ?? cache.add("SELECT 1")   // "pg_s1"
/// ```
struct PreparedStatements {
    var limit: Int
    private var entries: [String: (name: String, lastUse: UInt64)] = [:]
    private var counter: UInt64 = 0
    private var clock: UInt64 = 0
    /// Server statements no longer in the map, to be deallocated when the session is idle.
    private(set) var toDeallocate: [String] = []

    init(limit: Int) { self.limit = limit }

    /// The prepared statement for `sql`, if any (and marks it used).
    mutating func name(for sql: String) -> String? {
        guard let e = entries[sql] else { return nil }
        clock += 1
        entries[sql] = (e.name, clock)
        return e.name
    }

    /// A fresh name for a statement about to be prepared (never handed out before).
    mutating func nextName() -> String {
        counter += 1
        return "pg_s\(counter)"
    }

    /// Records a statement the server prepared, making room first when full.
    mutating func add(_ sql: String, name: String) {
        while entries.count >= max(limit, 1), let oldest = entries.min(by: { $0.value.lastUse < $1.value.lastUse }) {
            forget(oldest.key, deallocate: true)
        }
        clock += 1
        entries[sql] = (name, clock)
    }

    /// Drops `sql`; `deallocate: false` when the server no longer has it (26000).
    mutating func forget(_ sql: String, deallocate: Bool) {
        guard let e = entries.removeValue(forKey: sql) else { return }
        if deallocate { toDeallocate.append(e.name) }
    }

    /// The queued names, emptying the queue.
    mutating func takeDeallocations() -> [String] {
        defer { toDeallocate.removeAll() }
        return toDeallocate
    }

    /// A new session has nothing prepared (the counter keeps going all the same).
    mutating func sessionReset() {
        entries.removeAll()
        toDeallocate.removeAll()
    }

    var count: Int { entries.count }
}

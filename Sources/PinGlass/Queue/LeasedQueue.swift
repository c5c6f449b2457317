import Postgres

/// A table used as a queue whose rows a worker holds under a lease: the one description of
/// the lease's life cycle that the submit (dispatch), delivery and refund queues share
/// (docs/reliability.md#R5).
///
/// The life cycle, each step one guarded statement whose row count decides:
/// 1. **claim**: the queue's own statement (its ordering and filters, `FOR UPDATE SKIP
///    LOCKED`) sets the held state and `grant`: a fresh `lease_token`, `lease_until` from
///    PostgreSQL's `now()` (the one clock every worker on every machine shares:
///    docs/reliability.md#R14);
/// 2. **renew** right before each outside call (`renew`): false when the row is no longer
///    ours, and nothing may be sent for it from here;
/// 3. **record under the lease** (`write`): the outcome written only while the row is still
///    in the held state with our token; a lost lease is a known outcome (`.lost`), never an
///    error and never an overwrite of what the new holder did (docs/reliability.md#R3);
/// 4. **give back** (`write` with `release`): back to the queue, the lease cleared;
/// 5. **rescue** (`rescueSQL`, run by `LeaseRescuer`): a row whose lease ran out is handed
///    back by a statement that repeats the leased state and `lease_until < now()` both in
///    its `SKIP LOCKED` pick and in its outer `WHERE`, so a row that reached another state
///    meanwhile is never touched (docs/reliability.md#R6).
///
/// ```swift
/// let queue = LeasedQueue.deliveries
/// guard try queue.renew(db, id: row.id, lease: row.lease, seconds: 120) else { return }
/// let outcome = try queue.write(tx, id: row.id, lease: row.lease,
///                               set: "state = 'sent', sent_at = now()", releasing: true)
/// if outcome == .lost { report.leaseLost += 1 }
/// ```
struct LeasedQueue: Sendable, Equatable {
    /// The table (`id bigint`, `state text`, `lease_token uuid`, `lease_until timestamptz`).
    let table: String
    /// The state a held row is in: the claim sets it, every write under the lease repeats it.
    let heldState: String
    /// The states in which a row whose lease ran out is handed back by the rescuer.
    let leasedStates: [String]

    /// Generation tasks being submitted to Kie (`pinglass dispatch`).
    static let taskSubmits = LeasedQueue(table: "generation_tasks", heldState: "submitting", leasedStates: ["submitting"])
    /// Telegram deliveries being sent (`pinglass deliver`).
    static let deliveries = LeasedQueue(table: "telegram_deliveries", heldState: "sending", leasedStates: ["sending"])
    /// Refunds being asked of the bank (`pinglass refund`); a `pending` row may hold a
    /// lease too (claimed, nothing sent yet), so the rescuer takes both back.
    static let refunds = LeasedQueue(table: "refunds", heldState: "requested", leasedStates: ["pending", "requested"])

    /// How a write under the lease ended.
    enum Outcome: Equatable, Sendable {
        /// The row was still ours: the write is in.
        case recorded
        /// The lease was taken back (rescued, claimed by another worker, ended): nothing written.
        case lost
    }

    // MARK: SQL fragments, for the statements each queue writes itself

    /// `SET` part of a claim: a fresh token and a lease of `seconds` (a parameter such as `$2`).
    static func grant(seconds: String) -> String {
        "lease_token = gen_random_uuid(), lease_until = now() + make_interval(secs => \(seconds))"
    }

    /// `SET` part that ends the lease (a give back, an end, or a rescue).
    static let release = "lease_token = NULL, lease_until = NULL"

    /// A row no one holds: never leased, or its lease ran out.
    static let free = "(lease_until IS NULL OR lease_until < now())"

    /// True while someone holds the row (its lease has not run out), false otherwise.
    static func isHeld(_ alias: String? = nil) -> String { "coalesce(\(prefix(alias))lease_until > now(), false)" }

    /// The token in a claim's `RETURNING` list, as the column `lease`.
    static func token(_ alias: String? = nil) -> String { "\(prefix(alias))lease_token::text AS lease" }

    /// The guard of every write under the lease: this row, still in the held state, still
    /// with our token. `id` and `token` are SQL expressions (parameters by default).
    func held(_ alias: String? = nil, id: String = "$1", token: String = "$2::uuid") -> String {
        let a = Self.prefix(alias)
        return "\(a)id = \(id) AND \(a)state = '\(heldState)' AND \(a)lease_token = \(token)"
    }

    /// A row in one of the leased states whose lease ran out.
    func expired(_ alias: String? = nil) -> String {
        precondition(!leasedStates.isEmpty, "\(table): a leased queue names at least one leased state")
        let a = Self.prefix(alias)
        let states = leasedStates.count == 1 ? "\(a)state = '\(leasedStates[0])'"
            : "\(a)state IN (\(leasedStates.map { "'\($0)'" }.joined(separator: ", ")))"
        return "\(states) AND \(a)lease_until < now()"
    }

    /// The renewal statement (`$1` id, `$2` token, `$3` seconds), for a caller that renews
    /// more than the row in the same statement (a `WITH renewed AS (…)`).
    func renewSQL(returning: String? = nil) -> String {
        """
        UPDATE \(table) SET lease_until = now() + make_interval(secs => $3)
        WHERE \(held())\(returning.map { "\nRETURNING " + $0 } ?? "")
        """
    }

    /// The rescue of rows whose lease ran out (`$1`… as the caller numbers them): picked
    /// `FOR UPDATE SKIP LOCKED` oldest lease first, at most `limit` (a parameter), and the
    /// outer `WHERE` repeats the pick's guard. `set` runs besides `release`; `filter`
    /// narrows the pick (for example on attempts).
    func rescueSQL(alias a: String, set: String, filter: String? = nil, limit: String, returning: String? = nil) -> String {
        """
        UPDATE \(table) \(a) SET \(set.isEmpty ? "" : set + ", ")\(Self.release)
        WHERE \(a).id IN (SELECT id FROM \(table)
                       WHERE \(expired())\(filter.map { " AND " + $0 } ?? "")
                       ORDER BY lease_until LIMIT \(limit) FOR UPDATE SKIP LOCKED)
          AND \(expired(a))\(returning.map { "\nRETURNING " + $0 } ?? "")
        """
    }

    // MARK: Statements

    /// Extends a held row's lease right before an outside call: false when the row is no
    /// longer ours (its lease ran out and it was rescued or claimed again).
    func renew(_ db: some Queryable, id: Int, lease: String, seconds: Int, retry: Retry = .never) throws -> Bool {
        try db.execute(renewSQL(), [id, lease, seconds], retry: retry) == 1
    }

    /// Writes `set` on a held row, guarded by `held` (`$1` id, `$2` token; the caller's
    /// parameters follow as `$3`…); `releasing` ends the lease in the same statement.
    /// The row count decides: `.lost` when the row was no longer ours.
    @discardableResult
    func write(_ db: some Queryable, id: Int, lease: String, set: String, _ params: [PostgresEncodable?] = [],
                      releasing: Bool, retry: Retry = .never) throws -> Outcome {
        try db.execute("""
            UPDATE \(table) SET \(set)\(releasing ? ", " + Self.release : "")
            WHERE \(held())
            """, [id, lease] + params, retry: retry) == 1 ? .recorded : .lost
    }

    static func prefix(_ alias: String?) -> String { alias.map { $0 + "." } ?? "" }
}

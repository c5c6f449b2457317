import Foundation
import PinGlass
import Postgres

/// The cron duties run as cron runs them (the real `pinglass` binary, one pass each, in
/// pipeline order: reconcile, dispatch, poll-kie, deliver, refund, sweep), pass after pass
/// until the work they share is done, or until one of them is killed at a crash point.
///
/// "Done" is read from the database (`OpenWork`): no job unfinished, no task queued,
/// submitting or running, no delivery pending or sending, no refund pending or requested.
/// Every run must exit 0 (137 only for the run armed with `CRASHPOINT`); anything else
/// throws with the run's output, so a duty that fails while "recovering" fails the test.
///
/// ```swift
/// let duties = Quiesce(environment: stack.environment)
/// let crash = try duties.runUntilCrash(duty: "deliver", at: "deliver.after-send")
/// try Quiesce.leasesRunOut(c)          // the dead process's leases end (see there)
/// let report = try duties.run()        // passes until no work is open
/// ```
public struct Quiesce {
    /// The duties of one pass, in the order the work flows through them.
    public static let duties = ["reconcile", "dispatch", "poll-kie", "deliver", "refund", "sweep"]

    /// Flags that keep a test's passes short without changing what the duties decide:
    /// reconcile asks about a pending payment at once (a webhook that never arrived), a
    /// polled task that is not finished is due again after 1 s (the poll-kie claim moves
    /// `run_at` by this much, so a poller killed mid-poll leaves its tasks due 1 s later),
    /// one chat gets a message every 100 ms, and refunds wait at most 2 s for the bank
    /// (with the shortest lease that allows). The leases of dispatch (no flag, at least
    /// 60 s) and deliver (at least 30 s) stay as they are.
    public static let testFlags: [String: [String]] = [
        "reconcile": ["--pending-after", "0"],
        "poll-kie": ["--poll-interval", "1"],
        "deliver": ["--chat-interval", "100ms"],
        "refund": ["--timeout", "2s", "--lease", "16s"],
    ]

    /// The variables every run gets (`CRASHPOINT` removed; the armed run adds it back).
    public let environment: [String: String]
    public var flags: [String: [String]]
    /// Seconds `run` and `runUntilCrash` keep going before they give up.
    public var timeout: Double
    /// Receives every run's output (stdout and stderr: its log lines), with the duty's name.
    public var output: ((String, String) -> Void)?

    public init(environment: [String: String], flags: [String: [String]] = Quiesce.testFlags, timeout: Double = 60) {
        var env = environment
        env["CRASHPOINT"] = nil
        self.environment = env
        self.flags = flags
        self.timeout = timeout
    }

    /// What is left to do, by queue.
    public struct OpenWork: Equatable, Sendable, CustomStringConvertible {
        public var jobs = 0
        public var tasks = 0
        public var deliveries = 0
        public var refunds = 0
        public var isEmpty: Bool { jobs + tasks + deliveries + refunds == 0 }
        public var description: String {
            "\(jobs) unfinished jobs, \(tasks) open tasks, \(deliveries) open deliveries, \(refunds) open refunds"
        }
    }

    public static func openWork(_ c: Connection) throws -> OpenWork {
        let r = try c.query("""
            SELECT (SELECT count(*) FROM generation_jobs WHERE status IN ('queued', 'processing'))::int AS jobs,
                   (SELECT count(*) FROM generation_tasks WHERE state IN ('queued', 'submitting', 'running'))::int AS tasks,
                   (SELECT count(*) FROM telegram_deliveries WHERE state IN ('pending', 'sending'))::int AS deliveries,
                   (SELECT count(*) FROM refunds WHERE state IN ('pending', 'requested'))::int AS refunds
            """, retry: .idempotent)[0]
        return OpenWork(jobs: r.requiredInt("jobs"), tasks: r.requiredInt("tasks"), deliveries: r.requiredInt("deliveries"),
                        refunds: r.requiredInt("refunds"))
    }

    /// What `run` did.
    public struct Report {
        public var passes = 0
        public var seconds = 0.0
    }

    /// Passes (at least one) until no work is open.
    @discardableResult
    public func run() throws -> Report {
        let c = try connect()
        defer { c.close() }
        let start = Date()
        var report = Report()
        while true {
            report.passes += 1
            _ = try pass(armed: nil)
            let open = try Self.openWork(c)
            report.seconds = Date().timeIntervalSince(start)
            if open.isEmpty { return report }
            if report.seconds > timeout { throw NotQuiet(open: open, passes: report.passes) }
        }
    }

    /// The run of a duty killed at its crash point.
    public struct Crash {
        public let duty: String
        public let point: String
        /// The pass (1-based) in which it died.
        public let pass: Int
        /// What it wrote before it died.
        public let output: String
    }

    /// Passes with `CRASHPOINT=point` set for `duty`'s runs only, until one of them is killed
    /// there (exit 137): the pass stops at that moment, so the test sees the state the
    /// crash left. Throws when the work is done, or `timeout` passes, without the crash.
    public func runUntilCrash(duty: String, at point: String) throws -> Crash {
        precondition(Self.duties.contains(duty), "\(duty) is not one of \(Self.duties)")
        let c = try connect()
        defer { c.close() }
        let start = Date()
        var passes = 0
        while true {
            passes += 1
            if let output = try pass(armed: (duty, point)) {
                return Crash(duty: duty, point: point, pass: passes, output: output)
            }
            let open = try Self.openWork(c)
            if open.isEmpty || Date().timeIntervalSince(start) > timeout {
                throw NotReached(duty: duty, point: point, passes: passes, open: open)
            }
        }
    }

    /// One pass; the armed duty's output when it was killed at its point (the pass ends there).
    func pass(armed: (duty: String, point: String)?) throws -> String? {
        for duty in Self.duties {
            var env = environment
            if let armed, armed.duty == duty { env["CRASHPOINT"] = armed.point }
            let (status, out, err) = try Subprocess.capture(try TestEnvironment.binDir() + "/pinglass", [duty] + (flags[duty] ?? []),
                                                          environment: env)
            output?(duty, out + err)
            if status == 137, let armed, armed.duty == duty { return out + err }
            guard status == 0 else { throw DutyFailed(duty: duty, status: status, output: out + err) }
        }
        return nil
    }

    /// Ends every lease and every chat hold a killed process left behind, as the passing
    /// of their time would: tasks `submitting`, running tasks held while their results
    /// download (poll-kie holds them for the download timeout and a margin), deliveries
    /// `sending` (and the hold on their chat, taken for as long as the lease), refunds with
    /// a lease. Only for a test that
    /// knows no live process holds any (the one holding them was killed). The duties refuse
    /// leases shorter than their calls can take (dispatch has no flag and at least 60 s;
    /// deliver at least 30 s; refund three times its timeout plus 10 s), so waiting them out would
    /// take minutes per crash; what happens once they ran out is the duties' and the
    /// sweeper's own code. Returns how many rows it moved.
    @discardableResult
    public static func leasesRunOut(_ c: Connection) throws -> Int {
        try c.execute("""
            UPDATE generation_tasks SET lease_until = now() - interval '1 second' WHERE state = 'submitting' AND lease_until >= now()
            """)
        + c.execute("""
            UPDATE generation_tasks SET lease_until = now() - interval '1 second', run_at = least(run_at, now())
            WHERE state = 'running' AND lease_until >= now()
            """)
        + c.execute("""
            UPDATE telegram_deliveries SET lease_until = now() - interval '1 second' WHERE state = 'sending' AND lease_until >= now()
            """)
        + c.execute("UPDATE telegram_chat_pacing SET next_send_at = now() WHERE next_send_at > now()")
        + c.execute("""
            UPDATE refunds SET lease_until = now() - interval '1 second'
            WHERE state IN ('pending', 'requested') AND lease_until >= now()
            """)
    }

    func connect() throws -> Connection {
        guard let url = environment["DATABASE_URL"] else { throw DutyFailed(duty: "-", status: 0, output: "DATABASE_URL is not set") }
        return try Connection(url)
    }

    public struct DutyFailed: Error, CustomStringConvertible {
        public let duty: String
        public let status: Int32
        public let output: String
        public var description: String { "pinglass \(duty) exited with \(status): \(output.suffix(2000))" }
    }

    public struct NotQuiet: Error, CustomStringConvertible {
        public let open: OpenWork
        public let passes: Int
        public var description: String { "still open after \(passes) passes: \(open)" }
    }

    public struct NotReached: Error, CustomStringConvertible {
        public let duty: String
        public let point: String
        public let passes: Int
        public let open: OpenWork
        public var description: String {
            "pinglass \(duty) never reached \(point) in \(passes) passes (\(open.isEmpty ? "the work is done" : "still open: \(open)"))"
        }
    }
}

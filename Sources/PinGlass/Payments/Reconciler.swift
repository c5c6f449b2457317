import Logging
import Postgres
import JSON
import PinGlassConfig
import ProviderWire

/// The cron duty behind `pinglass reconcile`. Missed webhooks are normal, so each pass:
///
/// 1. asks `GetState` about payments still waiting for the bank (`new`, `pending`,
///    `authorized`) a while after creation, and applies the answer with the webhook's
///    guarded transition;
/// 2. expires payments past their RedirectDueDate, but only after a last `GetState` says
///    the payer never paid (`expireDuePayments`, Reconciler+Expiry.swift);
/// 3. asks again, rarely and for a few days, about `expired`, `rejected` and `canceled`
///    payments, so a CONFIRMED the webhook lost still revives an expired payment
///    (`recheckSettledPayments`).
///
/// Every payment is claimed alone (`FOR UPDATE SKIP LOCKED`, stamping `last_checked_at`
/// and committing) before the bank is called outside any transaction, so reconcilers on
/// several hosts never ask about the same payment at once, and a pass stops claiming at
/// its deadline.
///
/// ```swift
/// let reconciler = try Reconciler(deps: deps, config: Reconciler.Config())
/// let report = try reconciler.runOnce(now: deps.clock(), deadline: deps.clock() + 55)
/// ```
public struct Reconciler: Duty {
    public static let name = DutyName.reconcile

    public struct Config: DutyConfig, Equatable {
        /// A waiting payment is asked about once it is this old (seconds): the webhook
        /// usually arrives within seconds, and the status endpoint asks sooner on its own.
        public var pendingAfterSeconds = ReconcilerDefaults.pendingAfterSeconds
        /// At most this many payments per step and pass (waiting, then due), so one pass
        /// stays short whatever the backlog; the least recently checked go first.
        public var batchSize = ReconcilerDefaults.batchSize
        /// The same waiting or due payment is not asked again sooner than this (seconds).
        /// It is also when a failed `GetState` is retried.
        public var recheckSeconds = ReconcilerDefaults.recheckSeconds
        /// `GetState` timeout (seconds).
        public var timeout = ReconcilerDefaults.timeout
        /// An `expired`, `rejected` or `canceled` payment is asked again this often (seconds)…
        public var settledRecheckSeconds = ReconcilerDefaults.settledRecheckSeconds
        /// …for this long after it settled (seconds since `updated_at`); 0 turns it off.
        public var settledRecheckWindowSeconds = ReconcilerDefaults.settledRecheckWindowSeconds
        /// At most this many settled payments asked per pass.
        public var settledBatchSize = ReconcilerDefaults.settledBatchSize
        /// A due payment the bank could not be asked about for this long past its due date
        /// is logged as a warning at each attempt. It is never expired blindly: see
        /// `expireDuePayments`.
        public var unansweredWarningSeconds = ReconcilerDefaults.unansweredWarningSeconds

        public init() {}

        public static var settings: [DutySetting<Self>] {
            [
                .seconds("pending-after", \.pendingAfterSeconds, in: 0...86_400, "Check payments waiting longer than this."),
                .count("batch-size", \.batchSize, in: 1...1000, "At most this many payments asked about per step and pass."),
                .seconds("recheck-after", \.recheckSeconds, in: 1...86_400, "The same payment is not asked again sooner.", onCommandLine: false),
                .seconds("timeout", \.timeout, in: 0.5...60, "How long GetState may take.", onCommandLine: false),
                .seconds("settled-recheck-every", \.settledRecheckSeconds, in: 60...604_800,
                         "A settled payment is asked again this often.", onCommandLine: false),
                .seconds("settled-recheck-for", \.settledRecheckWindowSeconds, in: 0...2_592_000,
                         "…for this long after it settled.", onCommandLine: false),
                .count("settled-batch-size", \.settledBatchSize, in: 0...1000, "Settled payments asked per pass.", onCommandLine: false),
                .seconds("warn-unanswered-after", \.unansweredWarningSeconds, in: 0...2_592_000,
                         "Warn about a due payment the bank could not be asked about for this long.", onCommandLine: false),
            ]
        }
    }

    public struct Report: DutyReport, Equatable {
        /// `GetState` answers received.
        public var checked = 0
        /// Payments the bank's answer moved (any step).
        public var applied = 0
        /// Due payments expired after the bank said they were never paid.
        public var expired = 0
        /// Settled payments a late bank status moved (an expired one revived by CONFIRMED): among `applied`.
        public var revived = 0
        /// Bank states the payment cannot take (CONFIRMED after `rejected`, …): logged at error level and counted.
        public var refused = 0
        /// Due payments left pending: the bank was not asked successfully, or the payer is still paying.
        public var keptPending = 0
        /// `GetState` calls that failed or could not be made (retried after `recheckSeconds`).
        public var errors = 0
        /// The pass stopped claiming payments at its deadline.
        public var stoppedAtDeadline = false

        public init() {}

        public var json: JSON {
            ["checked": .int(checked), "applied": .int(applied), "expired": .int(expired), "revived": .int(revived),
             "refused": .int(refused), "keptPending": .int(keptPending), "errors": .int(errors),
             "stoppedAtDeadline": .bool(stoppedAtDeadline)]
        }
    }

    public let deps: Dependencies
    public let config: Config
    let log = Logger(label: "reconcile")

    public init(deps: Dependencies, config: Config = Config()) throws {
        try config.validate()
        self.deps = deps
        self.config = config
    }

    public func runOnce(now: Double, deadline: Double) throws -> Report {
        var report = Report()
        try checkWaitingPayments(now: now, deadline: deadline, &report)
        try expireDuePayments(now: now, deadline: deadline, &report)
        try recheckSettledPayments(now: now, deadline: deadline, &report)
        return report
    }

    /// Step 1: payments waiting for a notification that may never come. A due payment is
    /// left to `expireDuePayments`, which asks about it anyway; a hold (`authorized`) never
    /// expires, so it is asked about whatever its due date.
    func checkWaitingPayments(now: Double, deadline: Double, _ report: inout Report) throws {
        try forEachClaimed(limit: config.batchSize, deadline: deadline, &report, claim: {
            try claimNext("""
                status IN ('new', 'pending', 'authorized') AND tbank_payment_id IS NOT NULL
                AND created_at < to_timestamp($1) - make_interval(secs => $2)
                AND (status = 'authorized' OR redirect_due_at >= to_timestamp($1))
                AND (last_checked_at IS NULL OR last_checked_at < to_timestamp($1) - make_interval(secs => $3))
                """, now: now, [config.pendingAfterSeconds, config.recheckSeconds])
        }) { payment, report in
            _ = try askAndApply(payment, deadline: deadline, &report)
        }
    }

    /// Step 3: `expired`, `rejected` and `canceled` payments settled within the window, each
    /// asked at most once per `settledRecheckSeconds` (counted from the later of its last
    /// check and its settling). A CONFIRMED revives an expired payment (the transition table
    /// allows it); for a rejected or canceled one it is refused, logged and counted.
    func recheckSettledPayments(now: Double, deadline: Double, _ report: inout Report) throws {
        guard config.settledRecheckWindowSeconds > 0 else { return }
        try forEachClaimed(limit: config.settledBatchSize, deadline: deadline, &report, claim: {
            try claimNext("""
                status IN ('expired', 'rejected', 'canceled') AND tbank_payment_id IS NOT NULL
                AND updated_at > to_timestamp($1) - make_interval(secs => $2)
                AND GREATEST(last_checked_at, updated_at) < to_timestamp($1) - make_interval(secs => $3)
                """, now: now, [config.settledRecheckWindowSeconds, config.settledRecheckSeconds])
        }) { payment, report in
            guard try askAndApply(payment, deadline: deadline, &report)?.outcome == .applied else { return }
            report.revived += 1
            log.warning("a settled payment was moved by a late bank status (a lost notification)",
                        metadata: Trace.payment(deps, payment.id, ["payment_id": "\(payment.id)", "was": "\(payment.status.rawValue)"]))
        }
    }
}

extension Reconciler {
    /// Claims and handles payments one at a time: at most `limit`, and none once the clock
    /// reaches `deadline` (what is claimed is handled, so nothing waits a recheck unasked).
    func forEachClaimed(limit: Int, deadline: Double, _ report: inout Report, claim: () throws -> PaymentRecord?,
                        handle: (PaymentRecord, inout Report) throws -> Void) throws {
        for _ in 0..<limit {
            guard deps.clock() < deadline else { report.stoppedAtDeadline = true; return }
            guard let payment = try claim() else { return }
            try handle(payment, &report)
        }
    }

    /// Claims the next payment matching `condition` (`$1` is `now`, `params` are `$2`…), the
    /// least recently checked first so none starves. The stamped `last_checked_at` commits
    /// before the bank is called and SKIP LOCKED passes over a row another reconciler is
    /// claiming: two hosts never ask about one payment at once.
    func claimNext(_ condition: String, now: Double, _ params: [PostgresEncodable?]) throws -> PaymentRecord? {
        try deps.db().query("""
            UPDATE payments SET last_checked_at = to_timestamp($1)
            WHERE id = (SELECT id FROM payments WHERE \(condition)
                        ORDER BY last_checked_at NULLS FIRST, created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
            RETURNING \(PaymentRecord.columns)
            """, [now] + params).first.map { try PaymentRecord($0) }
    }

    /// Asks the bank about a claimed payment (outside any transaction) and applies its answer
    /// with the webhook's guarded transition. nil when the bank could not be asked: counted
    /// in `errors` and logged, the payment is asked again after `recheckSeconds`.
    func askAndApply(_ payment: PaymentRecord, deadline: Double, _ report: inout Report) throws -> (state: BankState, outcome: TransitionOutcome)? {
        let asked: BankState?
        do {
            // A slow bank never carries the pass past its deadline.
            asked = try PaymentCheck.ask(deps, payment, timeout: min(config.timeout, max(0.5, deadline - deps.clock())))
        } catch {
            log.warning("GetState failed", metadata: Trace.payment(deps, payment.id, ["payment_id": "\(payment.id)", "error": "\(error)"]))
            asked = nil
        }
        guard let state = asked else { report.errors += 1; return nil }
        report.checked += 1
        let outcome = try PaymentCheck.apply(deps, payment, state)
        if outcome == .applied {
            report.applied += 1
            log.info("payment moved by the bank's state", metadata: Trace.payment(deps, payment.id, [
                "payment_id": "\(payment.id)", "was": "\(payment.status.rawValue)", "bank_status": "\(state.status)"]))
        }
        if outcome == .refused { report.refused += 1 }
        return (state, outcome)
    }
}

/// The named defaults of `Reconciler.Config` (each documented on its field).
public enum ReconcilerDefaults {
    public static let pendingAfterSeconds = 120
    public static let batchSize = 50
    public static let recheckSeconds = 60
    public static let timeout = 10.0
    public static let settledRecheckSeconds = 6 * 3600
    public static let settledRecheckWindowSeconds = 3 * 86_400
    public static let settledBatchSize = 10
    public static let unansweredWarningSeconds = 3 * 86_400
}

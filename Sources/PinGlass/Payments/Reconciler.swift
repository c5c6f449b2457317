import Logging
import Postgres

/// The cron duty behind `pinglass reconcile`: missed webhooks are normal, so payments still
/// pending after a while are asked about (`GetState`) and moved by the same guarded
/// transition as the webhook; payment links past their RedirectDueDate are expired (a late
/// CONFIRMED still revives them).
public struct Reconciler: Duty {
    public static let name = DutyName.reconcile

    public struct Config: DutyConfig, Equatable {
        /// A payment is checked once it has been pending this long.
        public var pendingAfterSeconds = ReconcilerDefaults.pendingAfterSeconds
        /// At most this many GetState calls per pass.
        public var batchSize = ReconcilerDefaults.batchSize
        /// The same payment is not asked again sooner than this.
        public var recheckSeconds = ReconcilerDefaults.recheckSeconds
        /// GetState timeout.
        public var timeout = ReconcilerDefaults.timeout
        public init() {}

        public func validate() throws {
            try DutyConfigError.require("pending-after", pendingAfterSeconds, in: 0...86_400, unit: "s")
            try DutyConfigError.require("batch-size", batchSize, in: 1...1000)
            try DutyConfigError.require("recheck-after", recheckSeconds, in: 1...86_400, unit: "s")
            try DutyConfigError.require("timeout", timeout, in: 0.5...60, unit: "s")
        }
    }

    public struct Report: DutyReport, Equatable {
        public var checked = 0
        public var applied = 0
        public var expired = 0
        public var errors = 0
        public var json: JSON { ["checked": .int(checked), "applied": .int(applied), "expired": .int(expired), "errors": .int(errors)] }
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
        let db = try deps.db()
        var result = Report()
        // Claim a batch in one short statement: oldest-checked first, so no payment starves;
        // SKIP LOCKED and the bumped last_checked_at keep concurrent reconcilers apart.
        let claimed = try db.query("""
            UPDATE payments SET last_checked_at = now()
            WHERE id IN (
                SELECT id FROM payments
                WHERE status IN ('new', 'pending') AND tbank_payment_id IS NOT NULL
                  AND created_at < now() - make_interval(secs => $1)
                  AND (last_checked_at IS NULL OR last_checked_at < now() - make_interval(secs => $3))
                ORDER BY last_checked_at NULLS FIRST, created_at
                LIMIT $2
                FOR UPDATE SKIP LOCKED)
            RETURNING \(PaymentRecord.columns)
            """, [config.pendingAfterSeconds, config.batchSize, config.recheckSeconds]).map { try PaymentRecord($0) }
        for payment in claimed where deps.clock() < deadline {
            result.checked += 1
            do {
                if try PaymentCheck.refresh(deps, payment, timeout: config.timeout) == .applied { result.applied += 1 }
            } catch {
                result.errors += 1
                log.warning("GetState failed", metadata: ["payment_id": "\(payment.id)", "error": "\(error)"])
            }
        }
        // Links past their due date: one guarded statement (rule 6).
        result.expired = try db.execute("""
            UPDATE payments SET status = 'expired', updated_at = now()
            WHERE status IN ('new', 'pending') AND redirect_due_at < now()
            """)
        return result
    }
}

public enum ReconcilerDefaults {
    public static let pendingAfterSeconds = 120
    public static let batchSize = 50
    public static let recheckSeconds = 60
    public static let timeout = 10.0
}

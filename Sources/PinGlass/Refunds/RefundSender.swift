import Logging
import Postgres

/// The cron duty behind `pinglass refund` (architecture.md flow step 8): sends due refund
/// rows to T-Bank with `Cancel`, one at a time, until none is due, `batchSize` were sent or
/// the pass's deadline comes. Per refund (reliability rule 9):
///
/// 1. **Intent**: one guarded autocommit statement claims the row (`FOR UPDATE SKIP LOCKED`,
///    a fresh lease) and writes `requested`, `attempts + 1` (crash point
///    `refund.after-intent` right after it commits). Due means `pending`, or `requested`
///    whose retry time came or whose lease ran out (a sender died mid-call).
/// 2. **Call**, outside any transaction, with the payment's own terminal: a row that was
///    already `requested` has an unknown outcome, so the bank is asked first (`GetState`);
///    then `Cancel` with `Amount` = the refund, a refund receipt (`PaymentReceipt`) and
///    `ExternalRequestId` = the row's UUID, so a retry after a lost answer returns the
///    first outcome instead of refunding twice.
/// 3. **Result** (`RefundSender+Outcome.swift`), compare-and-set on the lease token: money
///    back → one transaction moves the refund to `succeeded` with the bank's amounts and
///    the payment through `PaymentLedger.applyRefund` (`refunded_kopecks` = paid −
///    `NewAmount`, the bank's own answer; crash point `refund.after-bank-ok` before it);
///    a permanent refusal → `failed` + an alert; anything unknown → still `requested`, due
///    again after a backoff, never failed blindly.
///
/// ```swift
/// let sender = try RefundSender(deps: deps, config: RefundSender.Config())
/// let report = try sender.runOnce(now: deps.clock(), deadline: deps.clock() + 55)
/// ```
public struct RefundSender: Duty {
    public static let name = DutyName.refund

    public struct Config: DutyConfig, Equatable {
        /// At most this many refunds sent per pass.
        public var batchSize = RefundSenderDefaults.batchSize
        /// Seconds a claimed refund belongs to this sender; longer than `GetState` plus
        /// `Cancel` at their timeout, so a live sender never loses a refund mid-call.
        public var leaseSeconds = RefundSenderDefaults.leaseSeconds
        /// `GetState` and `Cancel` timeout (seconds each).
        public var timeout = RefundSenderDefaults.timeout
        /// First retry of an unknown outcome after about this many seconds, doubling per
        /// attempt (with jitter)…
        public var retryBaseSeconds = RefundSenderDefaults.retryBaseSeconds
        /// …up to this many.
        public var retryCapSeconds = RefundSenderDefaults.retryCapSeconds
        /// A refund still unresolved after this many attempts raises an alert (at most one
        /// per hour), while it keeps being retried.
        public var alertAfterAttempts = RefundSenderDefaults.alertAfterAttempts

        public init() {}

        public func validate() throws {
            try DutyConfigError.require("batch-size", batchSize, in: 1...10_000)
            try DutyConfigError.require("timeout", timeout, in: 1...60, unit: "s")
            try DutyConfigError.require("lease", leaseSeconds, in: Int(2 * timeout) + 10...3600, unit: "s")
            try DutyConfigError.require("retry-base", retryBaseSeconds, in: 1...3600, unit: "s")
            try DutyConfigError.require("retry-cap", retryCapSeconds, in: retryBaseSeconds...86_400, unit: "s")
            try DutyConfigError.require("alert-after-attempts", alertAfterAttempts, in: 1...1000)
        }
    }

    public struct Report: DutyReport, Equatable {
        /// `Cancel` calls made.
        public var sent = 0
        /// Refunds the bank confirmed, recorded with the payment.
        public var succeeded = 0
        /// Refunds the bank refused for good: failed, alerted.
        public var failed = 0
        /// Refunds whose outcome is unknown or that the bank asked to retry: due again later.
        public var retried = 0
        /// `GetState` calls made before retrying an unknown outcome.
        public var askedState = 0
        /// Refunds whose lease was taken back before their result was recorded (another
        /// sender sends them again with the same ExternalRequestId and records that).
        public var leaseLost = 0
        /// The pass stopped claiming at its deadline.
        public var stoppedAtDeadline = false

        public init() {}

        public var json: JSON {
            ["sent": .int(sent), "succeeded": .int(succeeded), "failed": .int(failed), "retried": .int(retried),
             "askedState": .int(askedState), "leaseLost": .int(leaseLost), "stoppedAtDeadline": .bool(stoppedAtDeadline)]
        }
    }

    public let deps: Dependencies
    public let config: Config
    let log = Logger(label: "refund")

    public init(deps: Dependencies, config: Config = Config()) throws {
        try config.validate()
        // Without a terminal nothing can be sent: refuse to start (cron mail) rather than
        // spin through attempts and alerts.
        guard !deps.config.terminals.isEmpty else {
            throw ConfigError.missing("TBANK_TEST_TERMINAL_KEY/TBANK_TEST_PASSWORD (or TBANK_TERMINAL_KEY/TBANK_PASSWORD)")
        }
        self.deps = deps
        self.config = config
    }

    public func runOnce(now: Double, deadline: Double) throws -> Report {
        var report = Report()
        for _ in 0..<config.batchSize {
            guard deps.clock() < deadline else { report.stoppedAtDeadline = true; break }
            guard let refund = try claim() else { break }
            Crashpoint.hit("refund.after-intent")
            try send(refund, deadline: deadline, &report)
        }
        return report
    }

    /// A refund this sender claimed, with what its call needs.
    struct ClaimedRefund {
        let id: Int
        let paymentID: Int
        let amount: Int
        let externalRequestID: String
        let attempts: Int
        let lease: String
        /// It was `requested` before this claim: the last attempt's outcome is unknown.
        let outcomeUnknown: Bool
        let bankPaymentID: String
        let terminalKey: String
        let paid: Int
        let receipt: PaymentReceipt
        /// The end of the claim's lease on the monotonic clock (taken before the claim, so
        /// never later than the database's): until then this sender holds a known outcome
        /// through a database outage (`KnownOutcome`).
        let heldUntil: Double
    }

    /// The intent (rule 9), in one guarded autocommit statement: the next due refund, oldest
    /// due first, becomes `requested` with a fresh lease and its attempt counted. SKIP LOCKED
    /// keeps concurrent senders apart; the subquery's lock re-checks the row, so `was` is
    /// the state this claim moved it from.
    func claim() throws -> ClaimedRefund? {
        let heldUntil = System.monotonic() + Double(config.leaseSeconds)
        guard let r = try deps.db().query("""
            UPDATE refunds r SET state = 'requested', attempts = r.attempts + 1, lease_token = gen_random_uuid(),
                   lease_until = now() + make_interval(secs => $1)
            FROM (SELECT id, state AS was FROM refunds
                  WHERE state IN ('pending', 'requested') AND run_at <= now() AND (lease_until IS NULL OR lease_until < now())
                  ORDER BY run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) due,
                 payments p JOIN users u ON u.id = p.user_id
            WHERE r.id = due.id AND p.id = r.payment_id AND r.state IN ('pending', 'requested')
            RETURNING r.id, r.payment_id, r.amount_kopecks, r.external_request_id::text AS erid, r.attempts,
                      r.lease_token::text AS lease, due.was, p.tbank_payment_id, p.terminal_key, p.amount_kopecks AS paid,
                      p.email, p.photo_count, p.tier, u.telegram_user_id
            """, [config.leaseSeconds]).first else { return nil }
        let receipt = PaymentReceipt(
            email: PaymentReceipt.email(stored: r.string("email"), telegramID: Int64(r.requiredInt("telegram_user_id")),
                                        publicBaseURL: deps.config.publicBaseURL),
            description: PaymentReceipt.description(photos: r.requiredInt("photo_count"), tier: r.requiredString("tier")))
        return ClaimedRefund(id: r.requiredInt("id"), paymentID: r.requiredInt("payment_id"), amount: r.requiredInt("amount_kopecks"),
                             externalRequestID: r.requiredString("erid"), attempts: r.requiredInt("attempts"),
                             lease: r.requiredString("lease"), outcomeUnknown: r.string("was") == "requested",
                             bankPaymentID: r.string("tbank_payment_id") ?? "", terminalKey: r.requiredString("terminal_key"),
                             paid: r.requiredInt("paid"), receipt: receipt, heldUntil: heldUntil)
    }

    /// The calls for one claimed refund (outside any transaction) and the recording of
    /// what they mean.
    func send(_ refund: ClaimedRefund, deadline: Double, _ report: inout Report) throws {
        let meta: Logger.Metadata = ["refund_id": "\(refund.id)", "payment_id": "\(refund.paymentID)", "attempt": "\(refund.attempts)"]
        // The terminal the payment was made with (a switch of mode never changes it).
        guard let terminal = PaymentCheck.terminal(key: refund.terminalKey, in: deps.config), !refund.bankPaymentID.isEmpty else {
            try retryLater(refund, why: "the payment's T-Bank terminal \(refund.terminalKey) is not configured", &report)
            return
        }
        // A slow bank never carries the pass far past its deadline.
        let bank = deps.bank(terminal, min(config.timeout, max(1, deadline - deps.clock())))
        if refund.outcomeUnknown {
            report.askedState += 1
            let state: BankState
            do { state = try bank.getState(paymentID: refund.bankPaymentID) } catch let e as ProviderCallInTransaction {
                throw e
            } catch {
                try retryLater(refund, why: "GetState before retrying failed: \(error)", &report)
                return
            }
            log.info("retrying a refund whose outcome was unknown", metadata: meta.merging(["bank_status": "\(state.status)"]) { $1 })
            if CancelVerdict.inProgressStatuses.contains(state.status) {
                try retryLater(refund, why: "the bank is still processing a refund (\(state.status))", &report)
                return
            }
        }
        report.sent += 1
        let result = Result {
            try bank.cancel(paymentID: refund.bankPaymentID, amount: refund.amount, externalRequestID: refund.externalRequestID,
                            receipt: refund.receipt.json(amount: refund.amount))
        }
        if case .failure(let e as ProviderCallInTransaction) = result { throw e }
        switch CancelVerdict.classify(result, paymentID: refund.bankPaymentID, externalRequestID: refund.externalRequestID,
                                      paid: refund.paid) {
        case .refunded(let answer):
            Crashpoint.hit("refund.after-bank-ok")
            // The bank gave the money back: a database outage delays the record, never drops it
            // (the retry would ask GetState and repeat the Cancel, answered by its ExternalRequestId).
            try KnownOutcome.record(heldUntil: refund.heldUntil, what: "refund \(refund.id) made by the bank", log: log) {
                try recordSucceeded(refund, answer, &report)
            }
        case .refused(let code, let message):
            try recordFailed(refund, code: code, message: message, &report)
        case .retry(let why):
            try retryLater(refund, why: why, &report)
        }
    }
}

/// The named defaults of `RefundSender.Config` (each documented on its field).
public enum RefundSenderDefaults {
    public static let batchSize = 500
    public static let leaseSeconds = 120
    public static let timeout = 15.0
    public static let retryBaseSeconds = 30.0
    public static let retryCapSeconds = 3600.0
    public static let alertAfterAttempts = 6
}

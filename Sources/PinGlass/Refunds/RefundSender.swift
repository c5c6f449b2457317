import Logging
import Postgres
import JSON
import PinGlassConfig
import Platform
import ProviderWire

/// The cron duty behind `pinglass refund` (docs/architecture.md#flow-refund): sends due refund
/// rows to T-Bank with `Cancel`, one at a time, until none is due, `batchSize` were sent or
/// the pass's deadline comes. Per refund (docs/reliability.md#R9):
///
/// 1. **Intent**: one guarded autocommit statement claims the row (`FOR UPDATE SKIP LOCKED`,
///    a fresh lease) and writes `requested`, `attempts + 1` (crash point
///    `refund.after-intent` right after it commits). Due means `pending`, or `requested`
///    whose retry time came or whose lease ran out (a sender died mid-call).
/// 2. **Call**, outside any transaction, with the payment's own terminal: `Cancel` with
///    `Amount` = the refund, a refund receipt (`PaymentReceipt`) and `ExternalRequestId` =
///    the row's UUID. A row that was already `requested` has an unknown outcome, so the
///    bank is asked first (`GetState`) and `RefundLanding` reads its state: our refund
///    landed → recorded from the bank's figures, no Cancel; not landed → Cancel; in
///    progress → later; cannot tell → Cancel again only where the same key returns the
///    first outcome (card acquiring; docs/providers.md#tbank-cancel: not for SBP), else the refund is held
///    (`requested`, asked again hourly) and an operator alerted: never a blind second Cancel.
///    Where the key is not honoured, "not landed" is not trusted either while a Cancel of
///    ours may be in flight (the bank's state can lag behind its operations): the refund
///    waits `settleSeconds` after that Cancel, asking again, and is then held for an
///    operator (`pinglass resolve-refund`). Right before each Cancel the row records that
///    one went out (`cancel_sent_at`), so a refund whose earlier attempts never called the
///    bank is sent without waiting.
///    A refund is claimed only while the pass has time for all its calls at their full
///    timeout (GetState, Cancel, and GetState again after a refusal: three): a Cancel cut
///    short by the pass's end would turn a slow bank into an unknown outcome.
/// 3. **Result** (`RefundSender+Outcome.swift`): money back → one transaction moves the
///    refund to `succeeded` with the bank's amounts and the payment through
///    `PaymentLedger.applyRefund` (`refunded_kopecks` = paid − what the bank says stays
///    charged; crash point `refund.after-bank-ok` before it), guarded by the refund's state
///    alone: the bank's answer is the truth whoever holds the lease; a refusal → `failed`
///    + an alert (after an unknown outcome only once `GetState` shows our refund did not
///    land); anything unknown → still `requested`, due again after a backoff, never failed
///    blindly. Those two are compare-and-set on the lease token.
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
        /// Seconds a claimed refund belongs to this sender; longer than its calls (at most
        /// `callsPerRefund`) at their timeout, so a live sender never loses a refund mid-call.
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
        /// Seconds after a Cancel with an unknown outcome during which, where the bank does
        /// not honour ExternalRequestId, a GetState that shows no refund is not believed
        /// (it may lag): asked again, nothing sent. After it the refund is held for an operator.
        public var settleSeconds = RefundSenderDefaults.settleSeconds

        /// The most bank calls one claimed refund makes: GetState, Cancel, and GetState again
        /// when the Cancel after an unknown outcome is refused.
        public static let callsPerRefund = 3.0

        /// Seconds a pass needs left to claim a refund: every call at its full timeout.
        public var secondsPerRefund: Double { Self.callsPerRefund * timeout }

        public init() {}

        /// A run of `runFor` seconds (`--for`; 0: a single pass) must leave room for one
        /// refund's calls, or it could never claim one.
        public func validate(runFor: Double) throws {
            guard runFor > 0, secondsPerRefund > runFor else { return }
            throw DutyConfigError(setting: "timeout", value: "\(DutyConfigError.show(timeout))s",
                                  rule: "times 3 (GetState, Cancel, GetState again) must fit in --for \(DutyConfigError.show(runFor))s, "
                                      + "or no refund is ever claimed")
        }

        public static var settings: [DutySetting<Self>] {
            [
                .count("batch-size", \.batchSize, in: 1...10_000, "At most this many refunds sent per pass."),
                .seconds("timeout", \.timeout, in: 1...60, "How long GetState and Cancel may each take."),
                .seconds("lease", \.leaseSeconds, in: { Int((callsPerRefund * $0.timeout).rounded(.up)) + 10...3600 },
                         "How long a claimed refund is held (at least 3 × --timeout + 10s)."),
                .seconds("retry-base", \.retryBaseSeconds, in: 1...3600, "First retry of an unknown outcome after about this long (doubles per attempt)."),
                .seconds("retry-cap", \.retryCapSeconds, in: { $0.retryBaseSeconds...86_400 }, "Longest wait between retries."),
                .count("alert-after-attempts", \.alertAfterAttempts, in: 1...1000, "Alert (hourly) about a refund still unresolved after this many attempts."),
                .seconds("settle", \.settleSeconds, in: 0...86_400,
                         "After a Cancel with an unknown outcome on an SBP payment, how long a GetState that shows no refund "
                         + "is not believed (asked again, nothing sent) before the refund is held for an operator."),
            ]
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
        /// Refunds whose result this sender did not write: its lease was taken back (the new
        /// holder asks the bank and records), or a bank-confirmed success another sender
        /// had recorded already.
        public var leaseLost = 0
        /// Refunds with an unknown outcome the bank's state cannot settle and that may not
        /// be sent again (the key is not honoured): held, asked again hourly, alerted.
        public var unresolved = 0
        /// Refunds whose Cancel outcome is unknown, the key not honoured, and GetState shows
        /// no refund yet: within the settle period, asked again later, nothing sent.
        public var settling = 0
        /// The pass stopped claiming at its deadline.
        public var stoppedAtDeadline = false

        public init() {}

        public var json: JSON {
            ["sent": .int(sent), "succeeded": .int(succeeded), "failed": .int(failed), "retried": .int(retried),
             "askedState": .int(askedState), "leaseLost": .int(leaseLost), "unresolved": .int(unresolved), "settling": .int(settling), "stoppedAtDeadline": .bool(stoppedAtDeadline)]
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
            // Room for every call of one refund at its full timeout, or no claim: the next
            // pass (or cron run) takes it.
            // Stopping here is news only when a refund is due (an idle pass stays a debug line).
            guard deps.clock() + config.secondsPerRefund <= deadline else { report.stoppedAtDeadline = try anyDue(); break }
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
        /// Seconds since the last Cancel of this refund that may have reached the bank went
        /// out (nil: none has).
        let cancelSentAgo: Double?
        let bankPaymentID: String
        let terminalKey: String
        let paid: Int
        let receipt: PaymentReceipt
        /// The end of the claim's lease on the monotonic clock (taken before the claim, so
        /// never later than the database's): until then this sender holds a known outcome
        /// through a database outage (`KnownOutcome`).
        let heldUntil: Double
    }

    /// The intent (docs/reliability.md#R9), in one guarded autocommit statement: the next due refund, oldest
    /// due first, becomes `requested` with a fresh lease and its attempt counted. SKIP LOCKED
    /// keeps concurrent senders apart; the subquery's lock re-checks the row, so `was` is
    /// the state this claim moved it from.
    func claim() throws -> ClaimedRefund? {
        let heldUntil = deps.clock.monotonic() + Double(config.leaseSeconds)
        guard let r = try deps.db().query("""
            UPDATE refunds r SET state = 'requested', attempts = r.attempts + 1, \(LeasedQueue.grant(seconds: "$1"))
            FROM (SELECT id, state AS was FROM refunds
                  WHERE state IN ('pending', 'requested') AND run_at <= now() AND \(LeasedQueue.free)
                  ORDER BY run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) due,
                 payments p JOIN users u ON u.id = p.user_id
            WHERE r.id = due.id AND p.id = r.payment_id AND r.state IN ('pending', 'requested')
            RETURNING r.id, r.payment_id, r.amount_kopecks, r.external_request_id::text AS erid, r.attempts,
                      \(LeasedQueue.token("r")), due.was, extract(epoch FROM now() - r.cancel_sent_at)::float8 AS sent_ago,
                      p.tbank_payment_id, p.terminal_key, p.amount_kopecks AS paid,
                      p.email, p.photo_count, p.tier, u.telegram_user_id
            """, [config.leaseSeconds]).first else { return nil }
        let receipt = PaymentReceipt(
            email: PaymentReceipt.email(stored: r.string("email"), telegramID: Int64(r.requiredInt("telegram_user_id")),
                                        publicBaseURL: deps.config.publicBaseURL),
            description: PaymentReceipt.description(photos: r.requiredInt("photo_count"), tier: r.requiredString("tier")))
        return ClaimedRefund(id: r.requiredInt("id"), paymentID: r.requiredInt("payment_id"), amount: r.requiredInt("amount_kopecks"),
                             externalRequestID: r.requiredString("erid"), attempts: r.requiredInt("attempts"),
                             lease: r.requiredString("lease"), outcomeUnknown: r.string("was") == "requested",
                             cancelSentAgo: r.double("sent_ago"),
                             bankPaymentID: r.string("tbank_payment_id") ?? "", terminalKey: r.requiredString("terminal_key"),
                             paid: r.requiredInt("paid"), receipt: receipt, heldUntil: heldUntil)
    }

    /// The calls for one claimed refund (outside any transaction) and the recording of
    /// what they mean.
    func send(_ refund: ClaimedRefund, deadline: Double, _ report: inout Report) throws {
        // The terminal the payment was made with (a switch of mode never changes it). Without
        // it (or without the bank's PaymentId) nothing can be sent: a configuration error. The
        // refund stays `requested` and keeps being retried, so it resumes by itself once the
        // terminal is configured again, and an alert per refund says so on every attempt (at
        // most hourly). Failing it instead would free its share of the payment and, re-queued,
        // make it `pending`: its next claim would no longer know that an earlier attempt may
        // have reached the bank, and would not ask before sending.
        guard let terminal = PaymentCheck.terminal(key: refund.terminalKey, in: deps.config), !refund.bankPaymentID.isEmpty else {
            let why = refund.bankPaymentID.isEmpty ? "the payment has no T-Bank PaymentId"
                : "the payment's T-Bank terminal \(refund.terminalKey) is not configured"
            try retryLater(refund, why: why, alert: Alert(key: "refund-config:\(refund.id)", text: """
                Refund \(refund.id) of \(Money(kopecks: refund.amount)) for payment \(refund.paymentID) cannot be sent: \(why). \
                It is retried until this is fixed (configure the terminal the payment was made with).
                """), &report)
            return
        }
        // Always the full timeout: the claim left room for every call. A Cancel cut short
        // would make a slow bank's answer an unknown outcome.
        let bank = deps.bank(terminal, config.timeout)
        if refund.outcomeUnknown {
            // An earlier Cancel may have given the money back (docs/reliability.md#R9): the bank is asked first.
            guard let (state, landing) = try askBank(bank, refund, &report) else { return }
            switch landing {
            case .landed(let figures, let stillCharged):
                try recordSucceeded(refund, figures, stillCharged: stillCharged, &report)
                return
            case .inProgress(let why):
                try retryLater(refund, why: why, &report)
                return
            case .notLanded:
                // Where the key is not honoured, "not landed" may only be a lagging state
                // while a Cancel of ours is recent: wait, then a person decides.
                if !state.honoursExternalRequestID, let ago = refund.cancelSentAgo {
                    try settleOrHold(refund, sentAgo: ago, &report)
                    return
                }
            case .undecided(let why):
                // The same key returns the first outcome only where the bank honours it (docs/providers.md#tbank-cancel:
                // not for SBP); elsewhere a second Cancel could be a second refund.
                guard state.honoursExternalRequestID else {
                    try holdUnresolved(refund, why: why, &report)
                    return
                }
            }
        }
        // Recorded before the call: from here on a Cancel of this refund may be at the bank.
        guard try markCancelSent(refund) else { report.leaseLost += 1; return }
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
            // (the retry would ask GetState and find the refund landed).
            try KnownOutcome(clock: deps.clock).record(heldUntil: refund.heldUntil, what: "refund \(refund.id) made by the bank", log: log) {
                try recordSucceeded(refund, answer, stillCharged: answer.newAmount ?? 0, &report)
            }
        case .refused(let code, let message):
            if refund.outcomeUnknown {
                // After an unknown outcome a refusal may only mean the money went back already:
                // accepted once the bank's state shows our refund did not land.
                guard let (_, landing) = try askBank(bank, refund, &report) else { return }
                switch landing {
                case .landed(let figures, let stillCharged):
                    try recordSucceeded(refund, figures, stillCharged: stillCharged, &report)
                    return
                case .inProgress(let why):
                    try retryLater(refund, why: "T-Bank error \(code) while \(why)", &report)
                    return
                case .undecided(let why):
                    // Failing would free the refund's share of the payment for a second refund.
                    try holdUnresolved(refund, why: "T-Bank error \(code): \(message); \(why)", &report)
                    return
                case .notLanded:
                    break
                }
            }
            try recordFailed(refund, code: code, message: message, &report)
        case .retry(let why):
            try retryLater(refund, why: why, &report)
        }
    }

    /// Whether any refund is due now (the claim's condition, without claiming).
    func anyDue() throws -> Bool {
        try deps.db().query("""
            SELECT EXISTS (SELECT 1 FROM refunds WHERE state IN ('pending', 'requested') AND run_at <= now()
                                                   AND \(LeasedQueue.free)) AS due
            """, retry: .idempotent).first?.bool("due") ?? false
    }
}

/// The named defaults of `RefundSender.Config` (each documented on its field).
public enum RefundSenderDefaults {
    public static let batchSize = 500
    public static let leaseSeconds = 120
    public static let timeout = 10.0
    public static let retryBaseSeconds = 30.0
    public static let retryCapSeconds = 3600.0
    public static let alertAfterAttempts = 6
    public static let settleSeconds = 900.0
}

import ProviderWire

/// Whether a refund whose `Cancel` outcome is unknown (an answer lost, a sender gone) has
/// reached the bank, judged from the bank's own state of the payment (`GetState`, docs/providers.md#tbank-getstate) and
/// the refunds we know of: the one place this rule lives. `RefundSender` asks it before it
/// sends a Cancel again after an unknown outcome, and before it accepts a refusal that
/// followed one (the money may have gone back already).
///
/// Why the figures and not only the key: the bank's `ExternalRequestId` (docs/providers.md#tbank-cancel: a repeat returns the
/// first outcome) does not hold for SBP, so for such a payment a second Cancel is a second
/// refund. The figures:
/// - what stays charged at the bank: `GetState` `Amount` for a partial refund or reversal
///   (see `BankState.amount` for the assumption), nothing for REFUNDED / REVERSED;
/// - what we know went back: the bank's amounts of our succeeded refunds (`knownBack`);
/// - our other refunds of the payment whose outcome is open too (`open`: `requested`, they
///   may or may not have landed), read AFTER `GetState` answered, so any refund that could
///   have landed by then is among them or already succeeded (intent before call, docs/reliability.md#R9).
///
/// What the bank gave back beyond `knownBack` must be this refund plus some of the open
/// ones (landed), or some of the open ones alone (not landed). Exactly one of the two fits:
/// decided; both or neither (a refund made in the bank's dashboard, an amount we cannot
/// explain, an Amount that does not mean what we assume): undecided, never guessed.
///
/// ```swift
/// let known = RefundLanding.Known(bankPaymentID: "7000000001", paid: 49_900, knownBack: 0, open: [])
/// switch RefundLanding.judge(state, refund: 10_847, known: known) {
/// case .landed(let figures, let stillCharged): …   // record success with the bank's figures
/// case .notLanded: …                                // a Cancel is due
/// case .inProgress(let why), .undecided(let why): …
/// }
/// ```
public enum RefundLanding: Equatable, Sendable {
    /// The bank has given this refund back. `figures` is the refund as the bank's state
    /// shows it (what was charged before it and after it, counting the refunds we know);
    /// `stillCharged` what the bank says stays charged now (the payment's refunded sum is
    /// paid minus that).
    case landed(figures: BankCancel, stillCharged: Int)
    /// The bank has not given it back: a Cancel is the right next step.
    case notLanded
    /// The bank is still processing a refund: ask again later, send nothing meanwhile.
    case inProgress(String)
    /// The bank's state cannot tell: resend only where the key protects (card acquiring).
    case undecided(String)

    /// What our own records say about the payment.
    public struct Known: Equatable, Sendable {
        /// The payment's T-Bank PaymentId (the answer must be about it).
        public var bankPaymentID: String
        /// What the payment took in (kopecks).
        public var paid: Int
        /// What our succeeded refunds of it gave back by the bank's figures (kopecks).
        public var knownBack: Int
        /// The amounts of our OTHER refunds of it whose outcome is open (`requested`).
        public var open: [Int]

        public init(bankPaymentID: String, paid: Int, knownBack: Int, open: [Int]) {
            self.bankPaymentID = bankPaymentID
            self.paid = paid
            self.knownBack = knownBack
            self.open = open
        }
    }

    /// Beyond this many open refunds of one payment, the combinations are not tried.
    public static let maxOpen = 10

    public static func judge(_ state: BankState, refund amount: Int, known: Known) -> RefundLanding {
        guard state.paymentID == known.bankPaymentID else { return .undecided("GetState answered about PaymentId \(state.paymentID.prefix(20))") }
        if CancelVerdict.inProgressStatuses.contains(state.status) {
            return .inProgress("the bank is still processing a refund (\(state.status))")
        }
        let chargedBefore = known.paid - known.knownBack
        let stillCharged: Int
        switch state.status {
        case "CONFIRMED":
            // Charged and nothing given back at all (docs/providers.md#tbank-statuses).
            return known.knownBack == 0 ? .notLanded
                : .undecided("the bank reports CONFIRMED, but our succeeded refunds gave back \(known.knownBack) kopecks")
        case "REFUNDED", "REVERSED":
            stillCharged = 0
        case "PARTIAL_REFUNDED", "PARTIAL_REVERSED":
            guard let amount = state.amount, amount > 0, amount < known.paid else {
                return .undecided("\(state.status) with Amount \(state.amount.map(String.init) ?? "none") of \(known.paid) paid")
            }
            stillCharged = amount
        default:
            return .undecided("unexpected status \(state.status.prefix(40))")
        }
        guard known.open.count <= maxOpen else { return .undecided("\(known.open.count) other refunds of the payment are unresolved too") }
        let unexplained = chargedBefore - stillCharged
        let sums = subsetSums(known.open)
        let landedFits = sums.contains(unexplained - amount)
        // A refund status needs a refund behind it: one we know, or open ones that landed.
        let notLandedFits = sums.contains(unexplained) && (unexplained > 0 || known.knownBack > 0)
        let expectation = "the bank says \(stillCharged) kopecks stay charged; after the refunds we know, \(chargedBefore) would "
            + "without this refund of \(amount), \(chargedBefore - amount) with it"
            + (known.open.isEmpty ? "" : ", less any of our open refunds \(known.open)")
        switch (landedFits, notLandedFits) {
        case (true, false):
            let figures = BankCancel(status: state.status, originalAmount: chargedBefore, newAmount: chargedBefore - amount,
                                     paymentID: state.paymentID)
            return .landed(figures: figures, stillCharged: stillCharged)
        case (false, true):
            return .notLanded
        case (true, true):
            return .undecided("ambiguous: \(expectation)")
        case (false, false):
            return .undecided(expectation)
        }
    }

    /// One line for the log.
    public var summary: String {
        switch self {
        case .landed(_, let left): return "landed (\(left) kopecks stay charged)"
        case .notLanded: return "not landed"
        case .inProgress(let why): return "in progress: \(why)"
        case .undecided(let why): return "undecided: \(why)"
        }
    }

    /// Every sum of a subset of `amounts` (the empty one included).
    static func subsetSums(_ amounts: [Int]) -> Set<Int> {
        amounts.reduce(into: Set([0])) { sums, a in sums.formUnion(sums.map { $0 + a }) }
    }
}

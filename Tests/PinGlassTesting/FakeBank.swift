import Foundation
import PinGlass
import JSON
import PinGlassConfig
import ProviderWire

/// An in-process `BankAPI` for unit tests of duties and handlers: records every call
/// (thread-safe), answers with a scripted state, can be slow or fail; Cancel refunds from
/// what is still charged, answers a repeated ExternalRequestId with its first outcome
/// (except for an SBP payment: `route = "SBP"`, every Cancel is a new refund, docs/providers.md#tbank-cancel), and
/// follows `cancelSteps` first. Once a Cancel gave money back, GetState reports it like
/// the simulator: PARTIAL_REFUNDED / REFUNDED with `Amount` = what stays charged.
/// End-to-end tests use the simulator instead.
///
/// ```swift
/// let bank = FakeBank(state: "CONFIRMED")
/// app.deps.bankFactory = bank.factory
/// ```
public final class FakeBank: BankAPI, @unchecked Sendable {
    public struct Call: Equatable, Sendable {
        public let method: String
        public let terminalKey: String
        public let paymentID: String
        /// Cancel only: what was asked.
        public var amount: Int? = nil
        public var externalRequestID: String? = nil
        public var receipt: JSON? = nil
    }

    /// What the next Cancel does instead of refunding normally (`cancelSteps`, in order).
    public enum CancelStep: Sendable {
        /// Throws without refunding (a refusal, or no answer from a bank that did nothing).
        case fail(TBankError)
        /// Refunds, then throws (the answer was lost).
        case refundThenFail(TBankError)
        /// Answers this, refunding nothing.
        case answer(BankCancel)
    }

    private let lock = NSLock()
    private var _calls: [Call] = []
    private let terminalKey: String
    public var state: String
    public var amount: Int?
    public var delay: Double
    public var failure: TBankError?
    /// The `PaymentURL` Init answers.
    public var paymentURL = "https://bank.invalid/pay"
    /// How the payment was paid, reported in GetState `Params`: `ACQ` (card) or `SBP`
    /// (Cancel ignores ExternalRequestId), or nil for no `Params` at all.
    public var route: String? {
        get { let root = parent ?? self; root.lock.lock(); defer { root.lock.unlock() }; return root._route }
        set { lock.lock(); _route = newValue; lock.unlock() }
    }
    private var _route: String? = "ACQ"
    /// Scripted Cancel outcomes, used up in order; then Cancel refunds like the bank: from
    /// what is still charged (starting at `amount`), the same ExternalRequestId answering
    /// the first outcome again.
    public var cancelSteps: [CancelStep] {
        get { lock.lock(); defer { lock.unlock() }; return _cancelSteps }
        set { lock.lock(); _cancelSteps = newValue; lock.unlock() }
    }
    private var _cancelSteps: [CancelStep] = []
    private var charged: [String: Int] = [:]
    private var answered: [String: BankCancel] = [:]

    public init(state: String, amount: Int? = 49900, delay: Double = 0, failure: TBankError? = nil) {
        self.state = state
        self.amount = amount
        self.delay = delay
        self.failure = failure
        self.terminalKey = ""
    }

    private init(sharing other: FakeBank, terminalKey: String) {
        self.state = other.state
        self.amount = other.amount
        self.delay = other.delay
        self.failure = other.failure
        self.paymentURL = other.paymentURL
        self.terminalKey = terminalKey
        self.parent = other
    }
    private var parent: FakeBank?

    /// For `Dependencies.bank`: every client made records into this one.
    public var factory: (TBankTerminal, Double) -> any BankAPI {
        { terminal, _ in FakeBank(sharing: self, terminalKey: terminal.key) }
    }

    public var calls: [Call] { lock.lock(); defer { lock.unlock() }; return _calls }

    private func record(_ method: String, _ paymentID: String, amount: Int? = nil, externalRequestID: String? = nil,
                        receipt: JSON? = nil) throws {
        let root = parent ?? self
        root.lock.lock()
        root._calls.append(Call(method: method, terminalKey: terminalKey, paymentID: paymentID, amount: amount,
                                externalRequestID: externalRequestID, receipt: receipt))
        root.lock.unlock()
        if delay > 0 { Thread.sleep(forTimeInterval: delay) }
        if let failure { throw failure }
    }

    public func initPayment(_ fields: [(String, JSON)]) throws -> BankInit {
        try record("Init", "", amount: fields.first { $0.0 == "Amount" }?.1.intValue, receipt: fields.first { $0.0 == "Receipt" }?.1)
        return BankInit(paymentID: String(Int.random(in: 100_000_000...999_999_999)), paymentURL: paymentURL, status: "NEW")
    }

    public func getState(paymentID: String) throws -> BankState {
        try record("GetState", paymentID)
        let root = parent ?? self
        let route = self.route
        let params = route.map { ["Route": $0, "Source": $0 == "SBP" ? "sbp" : "cards"] } ?? [:]
        root.lock.lock()
        let left = root.charged[paymentID]
        root.lock.unlock()
        guard let left else { return BankState(paymentID: paymentID, status: state, amount: amount, orderID: nil, params: params) }
        return BankState(paymentID: paymentID, status: left == 0 ? "REFUNDED" : "PARTIAL_REFUNDED", amount: left, orderID: nil,
                         params: params)
    }

    public func cancel(paymentID: String, amount: Int?, externalRequestID: String, receipt: JSON?) throws -> BankCancel {
        try record("Cancel", paymentID, amount: amount, externalRequestID: externalRequestID, receipt: receipt)
        let root = parent ?? self
        root.lock.lock()
        let step = root._cancelSteps.isEmpty ? nil : root._cancelSteps.removeFirst()
        root.lock.unlock()
        switch step {
        case .fail(let e)?: throw e
        case .answer(let a)?: return a
        case .refundThenFail(let e)?:
            _ = try root.refund(paymentID: paymentID, amount: amount, externalRequestID: externalRequestID)
            throw e
        case nil:
            return try root.refund(paymentID: paymentID, amount: amount, externalRequestID: externalRequestID)
        }
    }

    /// What the bank does with a Cancel of a confirmed payment (docs/providers.md#tbank-cancel).
    private func refund(paymentID: String, amount: Int?, externalRequestID: String) throws -> BankCancel {
        lock.lock()
        defer { lock.unlock() }
        if _route != "SBP", let first = answered[externalRequestID] { return first }
        let before = charged[paymentID] ?? (self.amount ?? 0)
        let take = amount ?? before
        guard take > 0, take <= before else {
            throw TBankError.rejected(code: "104", message: "Сумма возврата больше суммы платежа", details: nil)
        }
        let answer = BankCancel(status: take == before ? "REFUNDED" : "PARTIAL_REFUNDED", originalAmount: before,
                                newAmount: before - take, paymentID: paymentID, externalRequestID: externalRequestID)
        charged[paymentID] = before - take
        answered[externalRequestID] = answer
        return answer
    }

    /// What is still charged for a payment after the Cancels so far.
    public func charged(_ paymentID: String) -> Int {
        lock.lock()
        defer { lock.unlock() }
        return charged[paymentID] ?? (amount ?? 0)
    }
}

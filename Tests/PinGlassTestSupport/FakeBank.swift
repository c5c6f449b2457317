import Foundation
import PinGlass

/// An in-process `BankAPI` for unit tests of duties and handlers: records every call
/// (thread-safe), answers with a scripted state, can be slow or fail. End-to-end tests use
/// the simulator instead.
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
    }

    private let lock = NSLock()
    private var _calls: [Call] = []
    private let terminalKey: String
    public var state: String
    public var amount: Int?
    public var delay: Double
    public var failure: TBankError?

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
        self.terminalKey = terminalKey
        self.parent = other
    }
    private var parent: FakeBank?

    /// For `Dependencies.bank`: every client made records into this one.
    public var factory: (TBankTerminal, Double) -> any BankAPI {
        { terminal, _ in FakeBank(sharing: self, terminalKey: terminal.key) }
    }

    public var calls: [Call] { lock.lock(); defer { lock.unlock() }; return _calls }

    private func record(_ method: String, _ paymentID: String) throws {
        let root = parent ?? self
        root.lock.lock()
        root._calls.append(Call(method: method, terminalKey: terminalKey, paymentID: paymentID))
        root.lock.unlock()
        if delay > 0 { Thread.sleep(forTimeInterval: delay) }
        if let failure { throw failure }
    }

    public func initPayment(_ fields: [(String, JSON)]) throws -> BankInit {
        try record("Init", "")
        return BankInit(paymentID: String(Int.random(in: 100_000_000...999_999_999)), paymentURL: "https://bank.invalid/pay", status: "NEW")
    }

    public func getState(paymentID: String) throws -> BankState {
        try record("GetState", paymentID)
        return BankState(paymentID: paymentID, status: state, amount: amount, orderID: nil)
    }

    public func cancel(paymentID: String, amount: Int?, externalRequestID: String, receipt: JSON?) throws -> BankCancel {
        try record("Cancel", paymentID)
        return BankCancel(status: "REFUNDED", originalAmount: self.amount, newAmount: 0)
    }
}

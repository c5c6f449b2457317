/// The T-Bank internet-acquiring calls the domain makes, for one terminal. `TBankClient`
/// talks to the bank (or the simulator); tests may pass an in-process fake through
/// `Dependencies.bank`. Errors are `TBankError`: `.rejected` when the bank answered
/// `Success: false`, `.unavailable` when there was no usable answer (the call may or may not
/// have taken effect).
public protocol BankAPI {
    /// `Init`: `fields` are the root parameters besides `TerminalKey`.
    func initPayment(_ fields: [(String, JSON)]) throws -> BankInit
    func getState(paymentID: String) throws -> BankState
    /// `Cancel`: a refund or reversal; `externalRequestID` makes a repeat return the first outcome.
    func cancel(paymentID: String, amount: Int?, externalRequestID: String, receipt: JSON?) throws -> BankCancel
}

public struct BankInit: Equatable, Sendable {
    public let paymentID: String
    public let paymentURL: String
    public let status: String
    public init(paymentID: String, paymentURL: String, status: String) {
        self.paymentID = paymentID
        self.paymentURL = paymentURL
        self.status = status
    }
}

/// T-Bank's `GetState` answer (docs/providers.md#tbank-getstate).
///
/// ```swift
/// let state = try bank.getState(paymentID: "7000000001")
/// if state.status == "PARTIAL_REFUNDED", state.honoursExternalRequestID { … }
/// ```
public struct BankState: Equatable, Sendable {
    public let paymentID: String
    public let status: String
    /// `Amount` (kopecks). Taken to be what the payment has charged NOW: after a refund, what
    /// stays charged (assumption docs/providers.md#A1: the bank names the field without saying; the simulator
    /// answers so). Code that relies on it checks it against what it knows first.
    public let amount: Int?
    public let orderID: String?
    /// `Params` (`{Key, Value}` pairs, e.g. `Route`, `Source`): how the payment was made.
    public let params: [String: String]

    public init(paymentID: String, status: String, amount: Int?, orderID: String?, params: [String: String] = [:]) {
        self.paymentID = paymentID
        self.status = status
        self.amount = amount
        self.orderID = orderID
        self.params = params
    }

    /// Whether a repeated `Cancel` with the same `ExternalRequestId` returns the first
    /// outcome for this payment: it does, except for SBP (docs/providers.md#tbank-cancel). Only a payment the bank says
    /// went through card acquiring (`Route` ACQ, and no `Source` naming SBP or a QR code)
    /// counts; no `Params`, or any other route, is not known to be protected, so a Cancel
    /// whose outcome is unknown is never sent again blindly for it.
    public var honoursExternalRequestID: Bool {
        guard params["Route"]?.uppercased() == "ACQ" else { return false }
        let source = (params["Source"] ?? "").lowercased()
        return !source.contains("sbp") && !source.contains("qr")
    }
}

/// T-Bank's answer to a `Cancel` that came back with `Success: true`.
public struct BankCancel: Equatable, Sendable {
    /// The payment's status after the operation (`REFUNDED`, `PARTIAL_REFUNDED`, …).
    public let status: String
    /// What was charged before this operation (kopecks, `OriginalAmount`).
    public let originalAmount: Int?
    /// What stays charged after it (kopecks, `NewAmount`).
    public let newAmount: Int?
    /// `ErrorCode` as sent ("0" when the operation went through).
    public let errorCode: String
    /// `PaymentId` and `ExternalRequestId` as the bank echoed them (nil when absent).
    public let paymentID: String?
    public let externalRequestID: String?

    public init(status: String, originalAmount: Int?, newAmount: Int?, errorCode: String = "0", paymentID: String? = nil,
                externalRequestID: String? = nil) {
        self.status = status
        self.originalAmount = originalAmount
        self.newAmount = newAmount
        self.errorCode = errorCode
        self.paymentID = paymentID
        self.externalRequestID = externalRequestID
    }
}

extension BankAPI {
    public func cancel(paymentID: String, amount: Int?, externalRequestID: String) throws -> BankCancel {
        try cancel(paymentID: paymentID, amount: amount, externalRequestID: externalRequestID, receipt: nil)
    }
}

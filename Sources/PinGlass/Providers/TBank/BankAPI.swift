import JSON
import ProviderWire

/// The T-Bank internet-acquiring calls the domain makes, for one terminal. `TBankClient` (the
/// Providers target) talks to the bank (or the simulator); tests may pass an in-process fake
/// through `Dependencies.bankFactory`. Errors are `TBankError`: `.rejected` when the bank
/// answered `Success: false`, `.unavailable` when there was no usable answer (the call may or
/// may not have taken effect); `ProviderCallInTransaction` when called while this process
/// holds a database transaction open (`Dependencies.bank` refuses it).
public protocol BankAPI {
    /// `Init`: `fields` are the root parameters besides `TerminalKey`.
    func initPayment(_ fields: [(String, JSON)]) throws -> BankInit
    func getState(paymentID: String) throws -> BankState
    /// `Cancel`: a refund or reversal; `externalRequestID` makes a repeat return the first outcome.
    func cancel(paymentID: String, amount: Int?, externalRequestID: String, receipt: JSON?) throws -> BankCancel
}

extension BankAPI {
    public func cancel(paymentID: String, amount: Int?, externalRequestID: String) throws -> BankCancel {
        try cancel(paymentID: paymentID, amount: amount, externalRequestID: externalRequestID, receipt: nil)
    }
}

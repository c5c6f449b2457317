import JSON

// What T-Bank answers to Init, GetState and Cancel, and how a call failed.

/// What went wrong calling T-Bank.
public enum TBankError: Error, CustomStringConvertible, Equatable {
    /// The bank answered `Success: false`.
    case rejected(code: String, message: String, details: String?)
    /// No usable answer: timeout, connection failure, HTTP error, unparsable body.
    case unavailable(String)

    public var description: String {
        switch self {
        case .rejected(let code, let message, let details):
            return "T-Bank error \(code): \(message)" + (details.map { " (\($0))" } ?? "")
        case .unavailable(let why): return "T-Bank unavailable: \(why)"
        }
    }
}

/// T-Bank's answer to `Init`: the payment it created and where the customer pays.
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


/// T-Bank sends `PaymentId` as a string or as a number (in answers and in notifications):
/// its text either way; nil when absent or empty.
public enum BankPaymentID {
    public static func read(_ v: JSON?) -> String? {
        switch v {
        case .string(let s)?: return s.isEmpty ? nil : s
        case .number(let n)?: return n
        default: return nil
        }
    }
}

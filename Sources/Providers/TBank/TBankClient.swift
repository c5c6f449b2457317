import HTTPClient
import JSON
import PinGlass
import PinGlassConfig
import ProviderWire

/// A T-Bank internet-acquiring v2 client for one terminal: Init, GetState, Cancel.
/// Every call has a timeout; `Success: false` becomes `TBankError.rejected` with the bank's
/// code; `PaymentId` is read whether the bank sends it as a string or a number.
///
/// ```swift
/// let bank = TBankClient(apiURL: config.tbankAPIURL, terminal: terminal)
/// let state = try bank.getState(paymentID: "3093639567")
/// ```
public struct TBankClient: BankAPI {
    public let apiURL: String
    public let terminal: TBankTerminal
    public var timeout: Double
    let http: HTTPClient

    public init(apiURL: String, terminal: TBankTerminal, timeout: Double = 15, http: HTTPClient = HTTPClient()) {
        self.apiURL = apiURL
        self.terminal = terminal
        self.timeout = timeout
        self.http = http
    }

    /// `Init`: creates the payment at the bank. `fields` are the root parameters besides
    /// `TerminalKey` (Amount, OrderId, Description, URLs, RedirectDueDate, Receipt, …).
    public func initPayment(_ fields: [(String, JSON)]) throws -> BankInit {
        let r = try call("Init", fields)
        guard let id = BankPaymentID.read(r["PaymentId"]), let url = r["PaymentURL"]?.stringValue else {
            throw TBankError.unavailable("Init answer without PaymentId or PaymentURL")
        }
        return BankInit(paymentID: id, paymentURL: url, status: r["Status"]?.stringValue ?? "NEW")
    }

    public func getState(paymentID: String) throws -> BankState {
        let r = try call("GetState", [("PaymentId", .string(paymentID))])
        guard let status = r["Status"]?.stringValue else { throw TBankError.unavailable("GetState answer without Status") }
        return BankState(paymentID: BankPaymentID.read(r["PaymentId"]) ?? paymentID, status: status,
                         amount: r["Amount"]?.intValue, orderID: r["OrderId"]?.stringValue, params: Self.params(r["Params"]))
    }

    /// GetState's `Params`: an array of `{Key, Value}` (docs/providers.md#tbank-getstate), or an object like a
    /// notification's `DATA`; values read as text, whatever their JSON type.
    static func params(_ v: JSON?) -> [String: String] {
        var out: [String: String] = [:]
        for p in v?.arrayValue ?? [] {
            if let key = p["Key"]?.stringValue, let value = p["Value"]?.scalarText { out[key] = value }
        }
        for (key, value) in v?.objectValue ?? [] {
            if let text = value.scalarText { out[key] = text }
        }
        return out
    }

    /// `Cancel` (refund or reversal). `externalRequestID` makes a repeated call return the
    /// first call's outcome instead of refunding again.
    public func cancel(paymentID: String, amount: Int?, externalRequestID: String, receipt: JSON?) throws -> BankCancel {
        var fields: [(String, JSON)] = [("PaymentId", .string(paymentID))]
        if let amount { fields.append(("Amount", .int(amount))) }
        fields.append(("ExternalRequestId", .string(externalRequestID)))
        if let receipt { fields.append(("Receipt", receipt)) }
        let r = try call("Cancel", fields)
        return BankCancel(status: r["Status"]?.stringValue ?? "", originalAmount: r["OriginalAmount"]?.intValue,
                          newAmount: r["NewAmount"]?.intValue, errorCode: r["ErrorCode"]?.scalarText ?? "",
                          paymentID: BankPaymentID.read(r["PaymentId"]), externalRequestID: r["ExternalRequestId"]?.stringValue)
    }

    /// Signs and posts one method; returns the answer when `Success` is true.
    func call(_ method: String, _ fields: [(String, JSON)]) throws -> JSON {
        let body = TBankToken.signed(.object([("TerminalKey", .string(terminal.key))] + fields), password: terminal.password)
        let response: HTTPResponse
        do {
            response = try http.send(.json("POST", apiURL + "/" + method, body: body.bytes, timeout: timeout))
        } catch {
            throw TBankError.unavailable("\(method): \(error)")
        }
        guard (200..<300).contains(response.status) else {
            throw TBankError.unavailable("\(method): HTTP \(response.status)")
        }
        guard let answer = try? JSON.parse(response.body) else {
            throw TBankError.unavailable("\(method): answer is not JSON")
        }
        guard answer["Success"]?.boolValue == true else {
            throw TBankError.rejected(code: answer["ErrorCode"]?.scalarText ?? "?",
                                      message: answer["Message"]?.stringValue ?? "no message",
                                      details: answer["Details"]?.stringValue)
        }
        return answer
    }
}

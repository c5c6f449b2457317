import Foundation
import HTTPClient
import PinGlass
import JSON

/// The simulated T-Bank's control API (`/sim/control/*`), for tests and benchmarks.
///
/// ```swift
/// let bank = BankSimulator(simURL: stack.simURL)
/// try bank.set(["cancel_error": "9999", "cancel_error_times": 1])   // the next Cancel fails once
/// try bank.pay(paymentID)                                         // the customer pays
/// try bank.payment(paymentID)["refunded"]?.intValue                // what the bank gave back
/// ```
public struct BankSimulator: Sendable {
    public let simURL: String
    let http = HTTPClient()

    public init(simURL: String) { self.simURL = simURL }

    /// Sets switches (see the simulator's Bank.cancel); null clears one.
    public func set(_ switches: JSON) throws { _ = try call("POST", "switches", switches) }

    /// The customer pays on the bank's page (notifications go out at once), by card or by
    /// SBP (where Cancel ignores ExternalRequestId: every Cancel is a new refund).
    public func pay(_ paymentID: String, sbp: Bool = false) throws {
        _ = try call("POST", "customer", ["paymentId": .string(paymentID), "action": .string(sbp ? "pay-sbp" : "pay")])
    }

    /// The bank's view: `status`, `amount`, `charged`, `refunded` and `cancels` (each with
    /// `externalRequestId`, `amount`, `status`, `originalAmount`, `newAmount`).
    public func payment(_ paymentID: String) throws -> JSON { try call("GET", "payments/" + paymentID) }

    /// Every request of one method the bank received (bodies as sent).
    public func requests(_ method: String) throws -> [JSON] {
        try call("GET", "requests?method=" + method)["requests"]?.arrayValue ?? []
    }

    /// The notifications the bank queued for a payment, with what our webhook answered:
    /// `attempts`, `delivered`, `lastStatus` (502 when nginx found no worker alive), `body`.
    public func notifications(_ paymentID: String) throws -> [JSON] {
        try call("GET", "notifications?payment_id=" + paymentID)["notifications"]?.arrayValue ?? []
    }

    /// Sends due notifications now (held ones too).
    public func deliver() throws { _ = try call("POST", "deliver", ["force": true]) }

    /// The payment page a person sees (`/pay/<id>`).
    public func page(_ paymentID: String) throws -> String { try http.send(HTTPRequest(url: simURL + "/pay/" + paymentID)).text }

    func call(_ method: String, _ path: String, _ body: JSON? = nil) throws -> JSON {
        let r = try http.send(HTTPRequest(method: method, url: simURL + "/sim/control/" + path,
                                          headers: [("Content-Type", "application/json")], body: body?.bytes ?? []))
        guard r.status == 200 else { throw Subprocess.Failed(command: "sim control \(path): \(r.text)", status: Int32(r.status)) }
        return try JSON.parse(r.body)
    }
}

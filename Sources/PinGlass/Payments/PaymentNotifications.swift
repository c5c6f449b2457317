import Logging
import Postgres
import JSON
import LibCrypto
import ProviderWire

/// T-Bank notifications (what `POST /api/payment/webhook` receives). One short transaction:
/// verify the Token with the password of the terminal the notification names, cross-check
/// the payment, apply the guarded transition, log the notification with its outcome. No
/// outbound call happens here (docs/reliability.md#R1).
///
/// The log keeps an allow-list of fields only: never the Token, card data (Pan, ExpDate,
/// CardId, RebillId), DATA or receipts. A rejected request keeps only its size, SHA-256 and
/// a short prefix.
///
/// ```swift
/// switch try PaymentNotifications.receive(deps, body: bytes, source: source, log: ctx.log) {
/// case .accepted: …   // answer 200 "OK" (applied, duplicate, stale or an unused kind)
/// case .malformed(let why): …   // 400
/// case .forbidden: …   // 403
/// }
/// ```
public enum PaymentNotifications {
    /// Where a notification came from, for the log.
    public typealias Source = WebhookLog.Source

    public enum Verdict: Equatable, Sendable {
        case accepted(Outcome)
        case malformed(String)
        case forbidden
    }

    /// What happened to an accepted notification; `rawValue` is what `webhook_logs.outcome`
    /// records. (A refused one is logged as `malformed` or `bad_signature`.)
    public enum Outcome: Equatable, Sendable {
        /// Handed to the payment's state machine (`PaymentLedger.apply`), which answered this.
        case transition(TransitionOutcome)
        /// Not handed to it: a status we never act on for a payment we could not name, or a
        /// success status the notification does not confirm (`Success`, `ErrorCode`).
        case ignored
        /// A money-relevant status for no payment of ours.
        case unknownPayment
        /// Signed by the bank, but it does not fit the payment it names.
        case mismatch

        public var rawValue: String {
            switch self {
            case .transition(let outcome): outcome.rawValue
            case .ignored: "ignored"
            case .unknownPayment: "unknown_payment"
            case .mismatch: "mismatch"
            }
        }
    }

    /// The notification fields worth keeping.
    public static let loggedFields: Set<String> = [
        "TerminalKey", "OrderId", "Success", "Status", "PaymentId", "ErrorCode", "Amount", "Message", "Details",
    ]

    /// `log` carries the request id of the notification's request.
    public static func receive(_ deps: Dependencies, body: [UInt8], source: Source, log: Logger) throws -> Verdict {
        let db = try deps.db()
        let notification: JSON
        do {
            notification = try JSON.parse(body)
            guard case .object = notification else { throw JSONParseError(offset: 0, reason: "not a JSON object") }
        } catch {
            try record(db, source, payload: fingerprint(body), paymentID: nil, event: nil, outcome: "malformed", reason: "\(error)")
            return .malformed("\(error)")
        }
        let status = notification["Status"]?.stringValue
        guard let key = notification["TerminalKey"]?.stringValue,
              let terminal = deps.config.terminals.first(where: { $0.key == key }),
              TBankToken.verify(notification, password: terminal.password) else {
            log.warning("webhook with an unknown terminal or a bad Token")
            try record(db, source, payload: fingerprint(body), paymentID: nil, event: nil, outcome: "bad_signature",
                       reason: "unknown TerminalKey or Token mismatch")
            return .forbidden
        }

        let payload = allowListed(notification)
        let bankPaymentID = BankPaymentID.read(notification["PaymentId"])
        let orderID = notification["OrderId"]?.stringValue
        let amount = notification["Amount"]?.intValue
        let transition = status.flatMap(BankTransition.forBankStatus)
        var paymentRequestID: String?     // the purchase's own request id, for the log line (`Trace`)
        let outcome: Outcome = try db.withTransaction { tx in
            guard bankPaymentID != nil || orderID != nil,
                  let payment = try PaymentLedger.findForNotification(tx, paymentID: bankPaymentID, orderID: orderID) else {
                let outcome: Outcome = transition == nil ? .ignored : .unknownPayment
                if transition != nil {
                    // Signed by the bank, about money, for a payment we do not know: answered OK
                    // (re-sending cannot help) but told and counted for a person to look at.
                    log.error("a signed notification names no payment of ours",
                              metadata: ["status": "\(status ?? "-")", "order_id": "\(orderID ?? "-")"])
                    try Counters.increment(tx, "payments.unknown_notifications")
                }
                try record(tx, source, payload: payload, paymentID: nil, event: status, outcome: outcome.rawValue, reason: nil)
                return outcome
            }
            paymentRequestID = payment.requestID
            if let problem = mismatch(payment, terminalKey: key, bankPaymentID: bankPaymentID, orderID: orderID,
                                      amount: amount, status: status) {
                log.error("webhook does not match its payment", metadata: ["payment_id": "\(payment.id)", "reason": "\(problem)"])
                try Counters.increment(tx, "payments.mismatched_notifications")
                try record(tx, source, payload: payload, paymentID: payment.id, event: status, outcome: Outcome.mismatch.rawValue, reason: problem)
                return .mismatch
            }
            if let transition, transition.isPositive, !confirmsSuccess(notification) {
                // Money moves only on a notification that says the operation succeeded.
                try record(tx, source, payload: payload, paymentID: payment.id, event: status, outcome: Outcome.ignored.rawValue,
                           reason: "Success is not true or ErrorCode is not \"0\"")
                return .ignored
            }
            let result = try PaymentLedger.apply(tx, payment: payment, bankStatus: status ?? "", bankPaymentID: bankPaymentID)
            Crashpoint.hit("webhook.after-transition")
            if result == .refused {
                log.error("a signed notification the payment cannot take",
                          metadata: ["payment_id": "\(payment.id)", "status": "\(payment.status.rawValue)", "bank_status": "\(status ?? "-")"])
            }
            try record(tx, source, payload: payload, paymentID: payment.id, event: status, outcome: result.rawValue, reason: nil)
            Crashpoint.hit("webhook.after-log")
            return .transition(result)
        }
        var meta: Logger.Metadata = ["status": "\(status ?? "-")", "outcome": "\(outcome.rawValue)", "order_id": "\(orderID ?? "-")"]
        if let id = paymentRequestID { meta["payment_request_id"] = "\(id)" }
        log.info("webhook", metadata: meta)
        return .accepted(outcome)
    }

    /// `Success: true` (a boolean) and `ErrorCode` "0" (string or number).
    static func confirmsSuccess(_ n: JSON) -> Bool {
        n["Success"]?.boolValue == true && n["ErrorCode"]?.scalarText == "0"
    }

    /// Only the allow-listed fields, in the notification's order.
    public static func allowListed(_ n: JSON) -> JSON {
        guard case .object(let pairs) = n else { return .object([]) }
        return .object(pairs.filter { loggedFields.contains($0.0) })
    }

    /// What is kept of a request we refused: its size, its SHA-256 and its first bytes,
    /// reduced to characters that cannot carry a card number's digits in a row or markup.
    static func fingerprint(_ body: [UInt8]) -> JSON {
        let shown = body.prefix(24).map { b -> UInt8 in
            let c = Character(Unicode.Scalar(b))
            return c.isASCII && (c.isLetter || "{}\":,_".contains(c)) ? b : UInt8(ascii: ".")
        }
        return ["size": .int(body.count), "sha256": .string(Crypto.hex(Crypto.sha256(body))),
                "prefix": .string(String(decoding: shown, as: UTF8.self))]
    }

    /// Why a correctly signed notification does not fit the payment it names (nil: fits).
    static func mismatch(_ p: PaymentRecord, terminalKey: String, bankPaymentID: String?, orderID: String?,
                         amount: Int?, status: String?) -> String? {
        if p.terminalKey != terminalKey { return "TerminalKey differs from the payment's terminal" }
        if let orderID, orderID != p.orderID { return "OrderId differs" }
        if let bankPaymentID, let known = p.tbankPaymentID, known != bankPaymentID { return "PaymentId differs" }
        let isRefund = status.flatMap(BankTransition.forBankStatus)?.isRefund ?? false
        if let amount {
            if isRefund ? (amount < 0 || amount > p.amountKopecks) : amount != p.amountKopecks {
                return "Amount \(amount) does not match the payment's \(p.amountKopecks)"
            }
        } else if status.flatMap(BankTransition.forBankStatus) != nil {
            return "Amount missing"
        }
        return nil
    }

    static func record(_ db: some Queryable, _ source: Source, payload: JSON, paymentID: Int?, event: String?, outcome: String,
                       reason: String?) throws {
        try WebhookLog.record(db, .tbank, source, paymentID: paymentID, event: event, payload: payload, outcome: outcome, reason: reason)
    }
}

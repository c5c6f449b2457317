import HTTPCore
import Postgres

/// `POST /api/payment/webhook`: T-Bank notifications. One short transaction: verify the
/// Token with the password of the terminal the notification names, cross-check the payment,
/// apply the guarded transition, log the notification with its outcome. Every valid
/// notification (applied, duplicate, stale, unused kind) is answered `200 OK` so the bank
/// stops re-sending; a bad Token gets 403, an unparsable body 400, a database outage 503.
/// No outbound call happens here.
public enum PaymentWebhook {
    public static func handle(_ ctx: Context) throws -> Response {
        let db = try ctx.db()
        let notification: JSON
        do {
            notification = try JSON.parse(ctx.request.body)
            guard case .object = notification else { throw JSONParseError(offset: 0, reason: "not an object") }
        } catch {
            try log(db, ctx, payload: ["raw": .string(String(decoding: ctx.request.body.prefix(2000), as: UTF8.self))],
                    paymentID: nil, event: nil, outcome: "malformed", reason: "\(error)")
            return .text("malformed notification", status: 400)
        }
        var payload = notification
        if case .object(let pairs) = notification { payload = .object(pairs.filter { $0.0 != "Token" }) }
        let status = notification["Status"]?.stringValue

        guard let key = notification["TerminalKey"]?.stringValue,
              let terminal = ctx.config.terminals.first(where: { $0.key == key }) else {
            try log(db, ctx, payload: payload, paymentID: nil, event: status, outcome: "bad_signature", reason: "unknown TerminalKey")
            return .text("unknown terminal", status: 403)
        }
        guard TBankToken.verify(notification, password: terminal.password) else {
            ctx.log.warning("webhook with a bad Token", metadata: ["status": "\(status ?? "-")"])
            try log(db, ctx, payload: payload, paymentID: nil, event: status, outcome: "bad_signature", reason: "Token mismatch")
            return .text("bad token", status: 403)
        }

        let bankPaymentID = TBankClient.paymentID(notification["PaymentId"])
        let orderID = notification["OrderId"]?.stringValue
        let amount = notification["Amount"]?.intValue
        let outcome: String = try db.withTransaction { tx in
            guard bankPaymentID != nil || orderID != nil,
                  let payment = try PaymentLedger.findForNotification(tx, paymentID: bankPaymentID, orderID: orderID) else {
                let outcome = status.flatMap(BankTransition.forBankStatus) == nil ? "ignored" : "unknown_payment"
                try log(tx, ctx, payload: payload, paymentID: nil, event: status, outcome: outcome, reason: nil)
                return outcome
            }
            if let problem = mismatch(payment, terminalKey: key, bankPaymentID: bankPaymentID, orderID: orderID,
                                      amount: amount, status: status) {
                ctx.log.error("webhook does not match its payment", metadata: ["payment_id": "\(payment.id)", "reason": "\(problem)"])
                try log(tx, ctx, payload: payload, paymentID: payment.id, event: status, outcome: "mismatch", reason: problem)
                return "mismatch"
            }
            let result = try PaymentLedger.apply(tx, payment: payment, bankStatus: status ?? "", bankPaymentID: bankPaymentID,
                                                 bankAmount: amount)
            Crashpoint.hit("webhook.after-transition")
            try log(tx, ctx, payload: payload, paymentID: payment.id, event: status, outcome: result.rawValue, reason: nil)
            Crashpoint.hit("webhook.after-log")
            return result.rawValue
        }
        ctx.log.info("webhook", metadata: ["status": "\(status ?? "-")", "outcome": "\(outcome)", "order_id": "\(orderID ?? "-")"])
        return .text("OK")
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

    static func log(_ db: some Queryable, _ ctx: Context, payload: JSON, paymentID: Int?, event: String?, outcome: String,
                    reason: String?) throws {
        try db.execute("""
            INSERT INTO webhook_logs (source, payment_id, event_type, payload, outcome, reason, remote_addr, request_id)
            VALUES ('tbank', $1, $2, $3::jsonb, $4, $5, NULLIF($6, '')::inet, $7)
            """, [paymentID, event, payload.serialized, outcome, reason, ctx.request.remoteAddress, ctx.request.requestID])
    }
}

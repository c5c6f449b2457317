import HTTPCore
import PinGlass
import Platform
import ProviderWire

/// The payment endpoints side by side (docs/http-api.md): create and status for the
/// Mini App, the webhook for T-Bank.
enum PaymentsRoutes {
    static func create(_ ctx: Context) throws -> Response {
        let user = try Authentication.user(ctx)
        let body = try ctx.jsonBody()
        guard let tierID = body["tierId"]?.stringValue, !tierID.isEmpty, tierID.count <= 32 else {
            throw APIError.validation("tierId is required (a string, e.g. \"starter\")")
        }
        var avatarID: Int?
        if let a = body["avatarId"], !a.isNull {
            guard let id = a.intValue ?? a.stringValue.flatMap({ Int($0) }), id > 0 else {
                throw APIError.validation("avatarId must be a positive integer")
            }
            avatarID = id
        }
        // Checked as PATCH /api/me checks it; remembered on the user by PaymentCreation.
        var email: String?
        if let e = body["email"], !e.isNull {
            guard let s = e.stringValue else { throw ReceiptEmail.Invalid() }
            email = try ReceiptEmail.checked(s)
        }
        let created = try PaymentCreation(deps: ctx.deps, log: ctx.log)
            .create(user: user, tierID: tierID, avatarID: avatarID, email: email, requestID: ctx.requestID)
        let amount = Money(kopecks: created.payment.amountKopecks)
        return .json(["paymentId": .string(created.payment.tbankPaymentID ?? ""), "orderId": .string(created.payment.orderID),
                      "confirmationUrl": .string(created.paymentURL), "amount": .int(amount.kopecks),
                      "amountRub": amount.roublesJSON, "testMode": .bool(created.testMode)])
    }

    /// The named payment if it is the caller's, else (no id) the caller's latest one, as
    /// `PaymentStatusPoll` finds it.
    static func status(_ ctx: Context) throws -> Response {
        let requested = ctx.request.query["payment_id"].flatMap { $0.isEmpty ? nil : $0 }
        if let requested, requested.count > 20 || !requested.allSatisfy({ $0.isASCII && $0.isNumber }) {
            throw APIError.validation("payment_id must be the T-Bank payment id (digits)")
        }
        // The user and the payment in one statement: this is what the Mini App polls.
        let (user, rows) = try Authentication.read(ctx, PaymentLedger.latestSQL(user: "me.id", bankPaymentID: "$6"), [requested])
        guard let stored = try rows.first.map({ try PaymentRecord($0) }) else {
            if requested != nil { throw APIError.notFound("payment not found") }
            return .json(["paid": false, "status": "no_payment", "consumed": false])
        }
        let status = try PaymentStatusPoll.check(ctx.deps, stored, telegramID: user.telegramID, log: ctx.log)
        let payment = status.payment
        return .json(["paid": .bool(payment.status.holdsMoney), "status": .string(payment.status.rawValue),
                      "consumed": .bool(payment.consumed), "usable": .bool(status.usable),
                      "paymentId": payment.tbankPaymentID.map { .string($0) } ?? .null,
                      "orderId": .string(payment.orderID), "amount": .int(payment.amountKopecks),
                      "amountRub": Money(kopecks: payment.amountKopecks).roublesJSON])
    }

    /// `POST /api/payment/webhook`: plain `OK` for every valid notification (so the bank
    /// stops re-sending), one 403 body for an unknown terminal and a bad Token alike.
    static func webhook(_ ctx: Context) throws -> Response {
        let source = PaymentNotifications.Source(remoteAddress: ctx.request.remoteAddress, requestID: ctx.request.requestID)
        switch try PaymentNotifications.receive(ctx.deps, body: ctx.request.body, source: source, log: ctx.log) {
        case .accepted: return .text("OK")
        case .malformed(let why): return .text("malformed notification: \(why)", status: 400)
        case .forbidden: return .text("forbidden", status: 403)
        }
    }
}

import HTTPCore
import Platform
import ProviderWire

/// The payment endpoints side by side (docs/http-api.md): create and status for the
/// Mini App, the webhook for T-Bank.
enum PaymentsAPI {
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
        var email: String?
        if let e = body["email"], !e.isNull {
            guard let s = e.stringValue?.trimmingSpaces(), Self.looksLikeEmail(s) else {
                throw APIError.validation("email must be an address like name@example.com (64 characters at most)")
            }
            email = s
        }
        let created = try PaymentCreation(deps: ctx.deps, log: ctx.log)
            .create(user: user, tierID: tierID, avatarID: avatarID, email: email, requestID: ctx.requestID)
        let amount = Money(kopecks: created.payment.amountKopecks)
        return .json(["paymentId": .string(created.payment.tbankPaymentID ?? ""), "orderId": .string(created.payment.orderID),
                      "confirmationUrl": .string(created.paymentURL), "amount": .int(amount.kopecks),
                      "amountRub": amount.roublesJSON, "testMode": .bool(created.testMode)])
    }

    static func looksLikeEmail(_ s: String) -> Bool {
        let parts = s.split(separator: "@", omittingEmptySubsequences: false)
        return s.count <= 64 && parts.count == 2 && !parts[0].isEmpty && parts[1].contains(".")
            && !s.contains(" ") && !parts[1].hasPrefix(".") && !parts[1].hasSuffix(".")
    }

    /// A payment the bank may still move is asked about at most once per this interval,
    /// however many status calls arrive.
    static let checkIntervalSeconds = 5.0
    static let checkTimeout = 3.0

    /// The terminal mode `usable` is judged by, cached per worker for this long (only the
    /// answer depends on it: a generation reads the mode afresh in its own transaction).
    static let modeCacheSeconds = 1.0

    static func status(_ ctx: Context) throws -> Response {
        // The named payment if it is the caller's, else (no id) the caller's latest one.
        let requested = ctx.request.query["payment_id"].flatMap { $0.isEmpty ? nil : $0 }
        if let requested, requested.count > 20 || !requested.allSatisfy({ $0.isASCII && $0.isNumber }) {
            _ = try Authentication.telegramUser(ctx)
            throw APIError.validation("payment_id must be the T-Bank payment id (digits)")
        }
        // The user and the payment in one statement: this is what the Mini App polls.
        let (user, rows) = try Authentication.read(ctx, PaymentLedger.latestSQL(user: "me.id", bankPaymentID: "$6"), [requested])
        let db = try ctx.db()
        guard var payment = try rows.first.map({ try PaymentRecord($0) }) else {
            if requested != nil { throw APIError.notFound("payment not found") }
            return .json(["paid": false, "status": "no_payment", "consumed": false])
        }
        if payment.status.awaitsBank, try PaymentCheck.claim(db, paymentID: payment.id, interval: checkIntervalSeconds) {
            // The notification may be late or lost: ask the bank, briefly.
            do {
                _ = try PaymentCheck.refresh(ctx.deps, payment, timeout: checkTimeout, log: ctx.log)
                payment = try PaymentLedger.find(db, id: payment.id) ?? payment
            } catch let e as TBankError {
                ctx.log.warning("GetState failed during status check", metadata: ["error": "\(e)"])
            }
        }
        let mode = try ctx.deps.cache.value("tbank_mode", ttl: modeCacheSeconds) { try PaymentSettings.terminalMode(db) }
        let usable = PaymentEligibility.isConsumable(payment, mode: mode,
                                                     telegramID: user.telegramID, config: ctx.config)
        return .json(["paid": .bool(payment.status.holdsMoney), "status": .string(payment.status.rawValue),
                      "consumed": .bool(payment.consumed), "usable": .bool(usable),
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

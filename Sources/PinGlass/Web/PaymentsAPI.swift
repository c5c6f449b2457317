import HTTPCore

/// `POST /api/payment/create` and `GET /api/payment/status` (contract: http-api.md).
enum PaymentsAPI {
    static func create(_ ctx: Context) throws -> Response {
        let user = try UserAuth.authenticate(ctx)
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
        let created = try PaymentCreation(services: ctx.services, log: ctx.log)
            .create(user: user, tierID: tierID, avatarID: avatarID, email: email)
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

    /// A pending payment older than this may be checked with the bank (once per interval).
    static let checkAfterSeconds = 5.0
    static let checkTimeout = 3.0

    static func status(_ ctx: Context) throws -> Response {
        let user = try UserAuth.authenticate(ctx)
        let db = try ctx.db()
        // The named payment if it is the caller's, else (no id) the caller's latest one.
        let requested = ctx.request.query["payment_id"].flatMap { $0.isEmpty ? nil : $0 }
        let rows = try db.query("""
            SELECT \(PaymentRecord.columns), extract(epoch FROM now() - COALESCE(last_checked_at, created_at))::float8 AS idle
            FROM payments WHERE user_id = $1 AND ($2::text IS NULL OR tbank_payment_id = $2)
            ORDER BY created_at DESC, id DESC LIMIT 1
            """, [user.id, requested], retry: .idempotent)
        if rows.isEmpty {
            if requested != nil { throw APIError.notFound("payment not found") }
            return .json(["paid": false, "status": "no_payment", "consumed": false])
        }
        var payment = PaymentRecord(rows[0])
        let idle = rows[0].double("idle") ?? 0
        if (payment.status == .pending || payment.status == .new) && idle > checkAfterSeconds {
            // The notification may be late or lost: ask the bank once, briefly.
            do {
                _ = try PaymentCheck.refresh(ctx.services, payment, timeout: checkTimeout)
                payment = try PaymentLedger.find(db, id: payment.id) ?? payment
            } catch let e as TBankError {
                ctx.log.warning("GetState failed during status check", metadata: ["error": "\(e)"])
            }
        }
        return .json(["paid": .bool(payment.status.isPaid), "status": .string(payment.status.rawValue),
                      "consumed": .bool(payment.consumed), "paymentId": payment.tbankPaymentID.map { .string($0) } ?? .null,
                      "orderId": .string(payment.orderID), "amount": .int(payment.amountKopecks),
                      "amountRub": Money(kopecks: payment.amountKopecks).roublesJSON])
    }
}

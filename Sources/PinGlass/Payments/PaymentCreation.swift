import Logging
import Postgres
import JSON
import LibCrypto
import Platform
import ProviderWire
import WebURL

/// Creating a payment: the row first (status `new`, our own OrderId, the tier's price and
/// photo count, the terminal in force), then T-Bank `Init` outside any transaction, then the
/// bank's PaymentId and PaymentURL (status `pending`) or `init_failed` with the bank's error.
///
/// Residual risk (docs/reliability.md#R9): `Init` has no idempotency key and nothing asks
/// the bank about it again, so a process that dies (or a database that cannot be reached)
/// after the bank created the payment and before its answer is recorded leaves our row `new`
/// without a PaymentId, and the client got no link: one bank payment nobody was shown. It is
/// one call wide (the client's retry is a new row with a new OrderId), nobody can pay it
/// without its link, and `reconcile` expires the row after its RedirectDueDate
/// (`Reconciler.expireUnsentPayments`); should the bank report it paid after all, its
/// notification finds the row by OrderId.
public struct PaymentCreation {
    /// Per-user limit: at most this many payment creations per window (counted in PostgreSQL).
    public static let limitPerWindow = 10
    public static let windowSeconds = 15 * 60
    /// How long `Init` may take: the client waits for this answer.
    public static let initTimeout = 15.0

    public struct Created: Sendable {
        public let payment: PaymentRecord
        public let paymentURL: String
        public let testMode: Bool
    }

    let deps: Dependencies
    let log: Logging.Logger

    public init(deps: Dependencies, log: Logging.Logger) {
        self.deps = deps
        self.log = log
    }

    /// `requestID` (the HTTP request's) is kept on the payment for the duties' log lines.
    /// `email` (checked: `ReceiptEmail`) is remembered on the user for the next payments;
    /// without it the remembered one goes on the receipt (`Account.receiptEmail`).
    public func create(user: AuthenticatedUser, tierID: String, avatarID: Int?, email: String?, requestID: String? = nil) throws -> Created {
        let db = try deps.db()
        guard let base = deps.config.publicBaseURL else {
            log.error("PUBLIC_BASE_URL is not set: payments are disabled")
            throw PaymentError.notConfigured("PUBLIC_BASE_URL")
        }
        guard let tier = try Catalogue.tier(db, id: tierID), tier.active else {
            throw PaymentError.unknownTier(tierID, known: try Catalogue.tiers(db).map(\.id))
        }
        if let avatarID {
            let owned = try db.query("SELECT 1 FROM avatars WHERE id = $1 AND user_id = $2 AND status <> 'deleted'",
                                     [avatarID, user.id], retry: .idempotent)
            if owned.isEmpty { throw PaymentError.avatarNotFound(avatarID) }
        }
        let mode = try PaymentSettings.terminalMode(db)
        guard let terminal = deps.config.terminal(for: mode) else {
            log.error("no credentials for the T-Bank terminal in force", metadata: ["mode": "\(mode.rawValue)"])
            throw PaymentError.notConfigured("the \(mode.rawValue) terminal")
        }
        let orderID = "pg" + Crypto.hex(Crypto.randomBytes(12))
        let (payment, receiptEmail) = try db.withTransaction { tx -> (PaymentRecord, String?) in
            // Serialise this user's creations so the limit cannot be raced past.
            try tx.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", [user.id])
            let recent = try tx.query("""
                SELECT count(*)::int AS n,
                       ceil(extract(epoch FROM min(created_at) + make_interval(secs => $2) - now()))::int AS retry
                FROM payments WHERE user_id = $1 AND created_at > now() - make_interval(secs => $2)
                """, [user.id, Self.windowSeconds])[0]
            if recent.requiredInt("n") >= Self.limitPerWindow {
                throw PaymentError.tooManyPayments(limit: Self.limitPerWindow, retryAfter: max(1, recent.int("retry") ?? 60))
            }
            let receiptEmail = try Account.receiptEmail(tx, userID: user.id, given: email)
            let row = try tx.query("""
                INSERT INTO payments (user_id, avatar_id, order_id, terminal, terminal_key, tier, photo_count,
                                      amount_kopecks, email, redirect_due_at, request_id)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now() + make_interval(secs => $10), left($11, 64))
                RETURNING \(PaymentRecord.columns)
                """, [user.id, avatarID, orderID, mode.rawValue, terminal.key, tier.id, tier.photos, tier.amount.kopecks,
                      receiptEmail, deps.config.paymentRedirectDue, requestID])
            return (try PaymentRecord(row[0]), receiptEmail)
        }

        // Outside any transaction (docs/reliability.md#R1).
        let bank = deps.bank(terminal, Self.initTimeout)
        let receipt = PaymentReceipt(email: PaymentReceipt.email(stored: receiptEmail, telegramID: user.telegramID, publicBaseURL: base),
                                     description: PaymentReceipt.description(photos: tier.photos, tier: tier.id))
        let description = receipt.description
        let fields: [(String, JSON)] = [
            ("Amount", .int(tier.amount.kopecks)),
            ("OrderId", .string(orderID)),
            ("Description", .string(description)),
            ("PayType", "O"),
            ("NotificationURL", .string(base + "/api/payment/webhook")),
            ("SuccessURL", .string(base + "/payment/success?order=" + orderID)),
            ("FailURL", .string(base + "/payment/fail?order=" + orderID)),
            ("RedirectDueDate", .string(Self.bankDate(deps.clock() + Double(deps.config.paymentRedirectDue)))),
            ("Receipt", receipt.json(amount: tier.amount.kopecks)),
        ]
        do {
            let r = try bank.initPayment(fields)
            // The Mini App opens this address and links to it: an http(s) page only. A
            // `javascript:` or `data:` address would run in the page that holds the init data;
            // such an answer is treated as a broken one (init_failed, nothing stored or shown).
            guard Self.isBankPage(r.paymentURL) else {
                throw TBankError.unavailable("Init answer whose PaymentURL is not an http(s) address")
            }
            // Not guarded on `new`, and its row count decides nothing: the row is this
            // request's own (inserted above, and payments are never deleted), so the count is
            // always 1. A notification found by OrderId may have moved it on meanwhile; the
            // CASE then leaves its state and bank status as they are, while the bank's ids
            // are still filled in (COALESCE: the first recorded wins). A guard on `new` would
            // drop the link of such a row. The statement is idempotent, so its retry is safe.
            try db.execute("""
                UPDATE payments SET tbank_payment_id = COALESCE(tbank_payment_id, $2), payment_url = COALESCE(payment_url, $3),
                       status = CASE WHEN status = 'new' THEN 'pending' ELSE status END,
                       bank_status = CASE WHEN status = 'new' THEN $4 ELSE bank_status END, updated_at = now()
                WHERE id = $1
                """, [payment.id, r.paymentID, r.paymentURL, r.status], retry: .idempotent)
            log.info("payment created", metadata: ["payment_id": "\(payment.id)", "order_id": "\(orderID)", "tier": "\(tier.id)"])
            return Created(payment: try PaymentLedger.find(db, id: payment.id) ?? payment, paymentURL: r.paymentURL,
                           testMode: mode == .test)
        } catch let e as TBankError {
            try db.execute("""
                UPDATE payments SET status = 'init_failed', init_error = left($2, 500), updated_at = now()
                WHERE id = $1 AND status = 'new'
                """, [payment.id, e.description], retry: .idempotent)
            log.error("T-Bank Init failed", metadata: ["payment_id": "\(payment.id)", "error": "\(e)"])
            switch e {
            case .rejected(let code, let message, _): throw PaymentError.bankRefused(code: code, message: message)
            case .unavailable: throw PaymentError.bankUnavailable
            }
        }
    }

    /// An absolute http(s) address without spaces or control characters.
    static func isBankPage(_ url: String) -> Bool {
        url.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) && HTTPURL(url) != nil
    }

    /// `YYYY-MM-DDTHH:MM:SS+00:00`, the form RedirectDueDate takes.
    static func bankDate(_ t: Double) -> String { System.utc(t, .iso8601Offset) }
}

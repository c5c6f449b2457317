import JSON

/// The 54-FZ receipt (FFD 1.05, docs/providers.md#tbank-receipt) T-Bank gets with a
/// payment and with each refund of it: the one place its rules live. One line, the service,
/// fully prepaid, no VAT; its `Amount` is the operation's amount, so the items always sum to
/// the `Amount` of the request they travel with (the bank refuses anything else, code 308).
/// A refund's receipt names the same customer and service as the payment's.
///
/// ```swift
/// let receipt = PaymentReceipt(email: PaymentReceipt.email(stored: p.email, telegramID: 42, publicBaseURL: base),
///                              description: PaymentReceipt.description(photos: 7, tier: "starter"))
/// let initReceipt = receipt.json(amount: 49_900)      // Init
/// let refundReceipt = receipt.json(amount: 10_847)    // Cancel (partial refund)
/// ```
public struct PaymentReceipt: Equatable, Sendable {
    /// Where the fiscal receipt goes (tag 1008).
    public let email: String
    /// The service sold (tag 1030, at most 128 characters).
    public let description: String

    public init(email: String, description: String) {
        self.email = email
        self.description = description
    }

    /// What the customer pays for: also the payment's `Description`.
    public static func description(photos: Int, tier: String) -> String { "PinGlass: \(photos) AI portraits (\(tier))" }

    /// The payer's e-mail (given with the payment or remembered on the user:
    /// `Account.receiptEmail`), or, for a payer who never gave one, a per-user address on our
    /// own host: a receipt must name an Email or a Phone.
    public static func email(stored: String?, telegramID: Int64, publicBaseURL: String?) -> String {
        if let stored, !stored.isEmpty { return stored }
        return "user\(telegramID)@\(host(of: publicBaseURL ?? ""))"
    }

    /// The receipt for an operation of `amount` kopecks.
    public func json(amount: Int) -> JSON {
        ["Email": .string(email), "Taxation": "usn_income",
         "Items": [["Name": .string(String(description.prefix(128))), "Price": .int(amount), "Quantity": 1, "Amount": .int(amount),
                    "Tax": "none", "PaymentMethod": "full_prepayment", "PaymentObject": "service"]]]
    }

    static func host(of url: String) -> String {
        let rest = url.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: true)
        return rest.count > 1 ? String(rest[1].split(separator: ":")[0]) : "localhost"
    }
}

import Platform

/// The e-mail address fiscal receipts go to (`PATCH /api/me`, `POST /api/payment/create`):
/// the one check both apply. At most 64 characters, because the receipt's `Email` (tag 1008)
/// takes no more (docs/providers.md#tbank-receipt): a longer address would make the bank
/// refuse the payment, so it is refused here, where the customer can fix it. One `@` with
/// something before it, a domain with a dot inside it (not first, not last, not doubled), no
/// spaces or control characters. Nothing more is guessed: whether the mailbox exists is the
/// mail server's business. Characters are counted as PostgreSQL's `length` counts them (the
/// columns' CHECKs): Unicode code points, not Swift's grapheme clusters ("e" and a combining
/// accent are one `Character`, two code points).
///
/// ```swift
/// let email = try ReceiptEmail.checked("  ann@example.com ")   // "ann@example.com"
/// ```
public enum ReceiptEmail {
    public static let maxLength = 64

    /// Why an address is refused.
    public struct Invalid: Error, Equatable, CustomStringConvertible {
        public init() {}

        public var description: String {
            "email must be an address like name@example.com (\(ReceiptEmail.maxLength) characters at most, no spaces)"
        }
    }

    /// The address without surrounding spaces, or `Invalid`.
    public static func checked(_ text: String) throws -> String {
        let s = text.trimmingSpaces()
        guard isValid(s) else { throw Invalid() }
        return s
    }

    public static func isValid(_ s: String) -> Bool {
        guard !s.isEmpty, s.unicodeScalars.count <= maxLength,
              !s.unicodeScalars.contains(where: {
                  $0.properties.isWhitespace || [.control, .format, .lineSeparator, .paragraphSeparator].contains($0.properties.generalCategory)
              }) else { return false }
        let parts = s.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty else { return false }
        let domain = parts[1]
        return domain.contains(".") && !domain.hasPrefix(".") && !domain.hasSuffix(".") && !domain.contains("..")
    }
}

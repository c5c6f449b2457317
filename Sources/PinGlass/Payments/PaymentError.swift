/// Why a payment operation did not happen. Domain code throws these; `PinGlassWeb` turns them into
/// HTTP answers (`APIError.init(domain:)`), the CLI into messages.
public enum PaymentError: Error, Equatable, CustomStringConvertible {
    /// A setting payments need is missing (PUBLIC_BASE_URL, the terminal in force).
    case notConfigured(String)
    case unknownTier(String, known: [String])
    case avatarNotFound(Int)
    /// The per-user creation limit; `retryAfter` seconds until a slot frees.
    case tooManyPayments(limit: Int, retryAfter: Int)
    /// The bank answered `Init` with an error.
    case bankRefused(code: String, message: String)
    /// The bank gave no usable answer to `Init`.
    case bankUnavailable

    public var description: String {
        switch self {
        case .notConfigured(let what): return "payments are not configured: \(what)"
        case .unknownTier(let id, let known): return "unknown tier '\(id)'; use one of: \(known.joined(separator: ", "))"
        case .avatarNotFound(let id): return "avatar \(id) not found"
        case .tooManyPayments(let limit, _): return "too many payments: at most \(limit) per 15 minutes"
        case .bankRefused(let code, let message): return "the bank refused the payment: \(message) (code \(code))"
        case .bankUnavailable: return "the bank did not answer; try again in a minute"
        }
    }
}

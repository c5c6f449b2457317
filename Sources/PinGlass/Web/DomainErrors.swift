/// The one place domain errors become HTTP answers. Domain code never picks a status.
extension APIError {
    /// The answer for a domain error; nil for an error that is not the client's business
    /// (it becomes a logged 500).
    init?(domain error: Error) {
        switch error {
        case let e as PaymentError:
            switch e {
            case .notConfigured: self = .unavailable("payments are not configured")
            case .unknownTier: self = .validation(e.description)
            case .avatarNotFound: self.init(status: 404, code: "AVATAR_NOT_FOUND", message: e.description)
            case .tooManyPayments(_, let retryAfter): self = .rateLimited(retryAfter: retryAfter, message: e.description)
            case .bankRefused, .bankUnavailable: self.init(status: 502, code: "PAYMENT_FAILED", message: e.description)
            }
        case let e as JSONParseError:
            self = .validation("malformed JSON body: \(e)")
        default:
            return nil
        }
    }
}

import PinGlass
import Postgres
import JSON

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
        case let e as AvatarError:
            switch e {
            case .notFound: self.init(status: 404, code: "AVATAR_NOT_FOUND", message: e.description)
            case .invalidName: self = .validation(e.description)
            case .limitReached: self.init(status: 429, code: "LIMIT_REACHED", message: e.description)
            case .jobRunning: self.init(status: 409, code: "CONFLICT", message: e.description)
            }
        case let e as GenerationError:
            switch e {
            case .avatarNotFound: self.init(status: 404, code: "AVATAR_NOT_FOUND", message: e.description)
            case .noReferenceImages: self.init(status: 400, code: "NO_REFERENCE_IMAGES", message: e.description)
            case .unknownStyle: self = .validation(e.description)
            case .paymentRequired: self.init(status: 402, code: "PAYMENT_REQUIRED", message: e.description)
            case .paymentConsumed: self.init(status: 402, code: "PAYMENT_CONSUMED", message: e.description)
            case .tooManyActiveJobs: self = .rateLimited(retryAfter: 60, message: e.description)
            case .tooSoon(let s): self = .rateLimited(retryAfter: s, message: e.description)
            case .jobNotFound: self = .notFound(e.description)
            }
        case let e as AccountError:
            self.init(status: 409, code: "CONFLICT", message: e.description)
        case is MediaRemoval.DeliveryInFlight:
            self.init(status: 409, code: "CONFLICT", message: AccountError.deliveryInFlight.description)
        case let e as ReceiptEmail.Invalid:
            self = .validation(e.description)
        case let e as MediaStoreError:
            switch e {
            case .notFound: self = .notFound("stored photo not found")
            case .unavailable: self = .unavailable("photo storage is unavailable; try again shortly")
            }
        case PostgresError.invalidParameter(_, let reason):
            self = .validation("invalid input: \(reason)")
        case let e as JSONParseError:
            self = .validation("malformed JSON body: \(e)")
        default:
            return nil
        }
    }
}

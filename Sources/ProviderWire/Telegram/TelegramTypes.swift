// What a Bot API send carries and how it failed (the values `TelegramAPI` passes and throws).

/// How a photo reaches Telegram: a public https URL it fetches itself (≤ 5 MB), or the bytes
/// uploaded in the request (multipart, ≤ 10 MB).
public enum TelegramMedia: Equatable, Sendable {
    case url(String)
    case upload(filename: String, contentType: String, bytes: [UInt8])
}

/// How a send failed, classified for what to do next (docs/providers.md#telegram-errors). Status and `description` of
/// the error envelope are both read.
public enum TelegramError: Error, Equatable, CustomStringConvertible {
    /// 429 flood control: repeat no sooner than `retryAfter` seconds (from
    /// `parameters.retry_after`, else from the description's number, else a default).
    case retryAfter(seconds: Int)
    /// 5xx, timeouts, network errors: retry with backoff.
    case transient(String)
    /// Telegram could not fetch or use a photo URL ("failed to get HTTP URL content", "wrong
    /// type of the web page content", "wrong file identifier/HTTP URL specified"): send the
    /// bytes instead.
    case mediaURLRejected(String)
    /// The group became a supergroup: send to `chatID` instead.
    case migrated(toChatID: Int64)
    /// 403 (blocked, deactivated, kicked), 400 chat not found and other refusals: never retry.
    case permanent(code: Int, description: String)
    /// 401: the bot token is wrong. Alert-worthy; nothing can be sent.
    case unauthorized(String)

    public var description: String {
        switch self {
        case .retryAfter(let s): return "Telegram flood control: retry after \(s) s"
        case .transient(let why): return "Telegram unavailable: \(why)"
        case .mediaURLRejected(let d): return "Telegram could not fetch the photo URL: \(d)"
        case .migrated(let id): return "chat migrated to \(id)"
        case .permanent(let code, let d): return "Telegram refused (\(code)): \(d)"
        case .unauthorized(let d): return "Telegram bot token refused (401): \(d)"
        }
    }
}

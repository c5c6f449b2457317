/// The Telegram Bot API calls delivery makes (docs/providers.md#telegram-envelope):
/// `sendPhoto`, `sendMediaGroup` and `sendMessage`. `TelegramClient` talks to Telegram (or
/// the simulator's Telegram part); tests of the deliver duty may pass an in-process fake
/// through `Dependencies.telegram`.
///
/// A send has no idempotency key at Telegram: a lost answer after a successful send means
/// the caller cannot know, and a retry shows the batch twice. Callers keep that window to
/// one call (record the message ids right after the answer).
///
/// ```swift
/// let ids = try deps.telegram!.sendMediaGroup(chatID: 42, photos: [.url(a), .url(b)], caption: "Your portraits")
/// ```
public protocol TelegramAPI: AnyObject {
    /// One photo; the id of the sent message.
    func sendPhoto(chatID: Int64, photo: TelegramMedia, caption: String?) throws(TelegramError) -> Int
    /// An album of 2–10 photos (the caption goes on the first item); the ids of the sent
    /// messages, one per photo, in order.
    func sendMediaGroup(chatID: Int64, photos: [TelegramMedia], caption: String?) throws(TelegramError) -> [Int]
    /// A text message (HTML parse mode when `html`); the id of the sent message.
    func sendMessage(chatID: Int64, text: String, html: Bool) throws(TelegramError) -> Int
}

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

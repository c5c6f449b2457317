import ProviderWire

/// The Telegram Bot API calls delivery makes (docs/providers.md#telegram-envelope):
/// `sendPhoto`, `sendMediaGroup` and `sendMessage` (with an inline keyboard for the final message's button). `TelegramClient` (the Providers target)
/// talks to Telegram (or the simulator's Telegram part); tests of the deliver duty may pass
/// an in-process fake through `Dependencies.telegram`. Calls fail with `TelegramError`, or
/// with `ProviderCallInTransaction` when made while this process holds a database
/// transaction open (`Dependencies` refuses them).
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
    func sendPhoto(chatID: Int64, photo: TelegramMedia, caption: String?) throws -> Int
    /// An album of 2–10 photos (the caption goes on the first item); the ids of the sent
    /// messages, one per photo, in order.
    func sendMediaGroup(chatID: Int64, photos: [TelegramMedia], caption: String?) throws -> [Int]
    /// A text message (HTML parse mode when `html`) with an inline keyboard of buttons that
    /// open pages (none when empty); the id of the sent message.
    func sendMessage(chatID: Int64, text: String, html: Bool, keyboard: [[InlineButton]]) throws -> Int
}

extension TelegramAPI {
    /// A text message without buttons.
    public func sendMessage(chatID: Int64, text: String, html: Bool) throws -> Int {
        try sendMessage(chatID: chatID, text: text, html: html, keyboard: [])
    }
}

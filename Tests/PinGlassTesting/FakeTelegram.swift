import Foundation
import PinGlass
import ProviderWire

/// An in-process `TelegramAPI` for unit tests of the deliver duty: records every call with
/// the wall-clock time it arrived (thread-safe, so two deliverers on two threads can share
/// it), answers with increasing message ids, and throws scripted errors: the next calls in
/// order (`errors`), or every call to a chat (`chatErrors`). End-to-end tests use the
/// simulator instead.
///
/// ```swift
/// let telegram = FakeTelegram()
/// deps.telegram = telegram
/// telegram.errors = [.retryAfter(seconds: 5)]            // the next call answers 429
/// telegram.chatErrors[42] = .permanent(code: 403, description: "Forbidden: bot was blocked by the user")
/// XCTAssertEqual(telegram.sent.map(\.method), [.mediaGroup, .message])
/// ```
public final class FakeTelegram: TelegramAPI, @unchecked Sendable {
    public enum Method: String, Sendable { case photo, mediaGroup, message }

    /// One call as Telegram received it (failed calls too: `messageIDs` empty).
    public struct Call: Sendable {
        public let method: Method
        public let chatID: Int64
        public let media: [TelegramMedia]
        public let caption: String?
        public let text: String?
        /// A message's inline keyboard (empty for none).
        public let keyboard: [[InlineButton]]
        /// Seconds since the epoch (the database's clock is the same host's).
        public let at: Double
        public let messageIDs: [Int]
        public let failed: Bool

        /// Telegram messages the call made or tried (an album of N counts N).
        public var cost: Int { max(1, media.count) }
    }

    private let lock = NSLock()
    private var _calls: [Call] = []
    private var nextID = 1000
    private var _errors: [TelegramError] = []
    private var _chatErrors: [Int64: TelegramError] = [:]

    public init() {}

    /// Errors the next calls throw, in order (whatever the chat).
    public var errors: [TelegramError] {
        get { locked { _errors } }
        set { locked { _errors = newValue } }
    }
    /// An error every call to the chat throws, until removed.
    public var chatErrors: [Int64: TelegramError] {
        get { locked { _chatErrors } }
        set { locked { _chatErrors = newValue } }
    }
    /// Runs at the start of each call, before it is answered (a test's chance to act while
    /// the deliverer waits for Telegram).
    public var onCall: ((Method, Int64) -> Void)?
    /// Every call, in arrival order.
    public var calls: [Call] { locked { _calls } }
    /// The calls Telegram accepted.
    public var sent: [Call] { calls.filter { !$0.failed } }

    public func sendPhoto(chatID: Int64, photo: TelegramMedia, caption: String?) throws(TelegramError) -> Int {
        try answer(.photo, chatID, [photo], caption: caption, text: nil, count: 1)[0]
    }

    public func sendMediaGroup(chatID: Int64, photos: [TelegramMedia], caption: String?) throws(TelegramError) -> [Int] {
        try answer(.mediaGroup, chatID, photos, caption: caption, text: nil, count: photos.count)
    }

    public func sendMessage(chatID: Int64, text: String, html: Bool, keyboard: [[InlineButton]] = []) throws(TelegramError) -> Int {
        try answer(.message, chatID, [], caption: nil, text: text, keyboard: keyboard, count: 1)[0]
    }

    private func answer(_ method: Method, _ chat: Int64, _ media: [TelegramMedia], caption: String?, text: String?,
                        keyboard: [[InlineButton]] = [], count: Int) throws(TelegramError) -> [Int] {
        onCall?(method, chat)
        lock.lock()
        defer { lock.unlock() }
        let at = Date().timeIntervalSince1970
        var error = _chatErrors[chat]
        if error == nil, !_errors.isEmpty { error = _errors.removeFirst() }
        if let error {
            _calls.append(Call(method: method, chatID: chat, media: media, caption: caption, text: text, keyboard: keyboard, at: at, messageIDs: [], failed: true))
            throw error
        }
        let ids = (0..<count).map { nextID + $0 }
        nextID += count
        _calls.append(Call(method: method, chatID: chat, media: media, caption: caption, text: text, keyboard: keyboard, at: at, messageIDs: ids, failed: false))
        return ids
    }

    private func locked<T>(_ body: () -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body()
    }
}

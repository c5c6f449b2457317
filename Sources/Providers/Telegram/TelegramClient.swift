import HTTPClient
import JSON
import PinGlass
import ProviderWire
import WebURL

/// The Telegram Bot API over libcurl (docs/providers.md#telegram-envelope): a call is
/// `POST <TELEGRAM_API_URL>/bot<token>/<method>`. Photos by URL go as a JSON body; photos as
/// bytes go as `multipart/form-data`, an album's uploads as parts `photo0`, `photo1`, …
/// named by `attach://photoN` in its `media` array. Answers are classified by
/// `TelegramAnswer` into `TelegramError`.
///
/// The bot token is a secret carried in the URL path. It never reaches an error: transport
/// errors carry the redacted URL (`HTTPURL.redact` cuts the path at the `bot<id>:<token>`
/// segment), and every error text this client throws is scrubbed of the token besides.
///
/// Sends are not idempotent at Telegram: after a timeout or a lost answer the message may
/// have been sent, and a retry shows it twice (see `TelegramAPI`).
///
/// ```swift
/// let telegram = TelegramClient(apiURL: config.telegramAPIURL, botToken: token)
/// let ids = try telegram.sendMediaGroup(chatID: 42, photos: [.url(a), .url(b)], caption: "Your portraits")
/// let id = try telegram.sendMessage(chatID: 42, text: "<a href=\"https://…\">Gallery</a>", html: true)
/// ```
public final class TelegramClient: TelegramAPI {
    /// Default whole-call limit: an album of ten uploads must fit in it (delivery sizes its
    /// lease from it, `DelivererDefaults.telegramTimeout`).
    public static let defaultTimeout = DelivererDefaults.telegramTimeout

    public let apiURL: String
    private let botToken: String
    /// Whole-call limit in seconds (uploads included).
    public var timeout: Double
    /// Limit for the connection alone, seconds.
    public var connectTimeout: Double = 5
    let http: HTTPClient

    public init(apiURL: String, botToken: String, timeout: Double = TelegramClient.defaultTimeout, http: HTTPClient = HTTPClient()) {
        self.apiURL = apiURL.hasSuffix("/") ? String(apiURL.dropLast()) : apiURL
        self.botToken = botToken
        self.timeout = timeout
        self.http = http
    }

    public func sendPhoto(chatID: Int64, photo: TelegramMedia, caption: String?) throws(TelegramError) -> Int {
        var fields: [(String, JSON)] = [("chat_id", .number(String(chatID)))]
        var uploads: [HTTPRequest.Part] = []
        switch photo {
        case .url(let url): fields.append(("photo", .string(url)))
        case .upload(let filename, let contentType, let bytes):
            uploads.append(Self.part("photo", filename, contentType, bytes))
        }
        if let caption { fields.append(("caption", .string(caption))) }
        return TelegramAnswer.messageID(try call("sendPhoto", fields, uploads: uploads))
    }

    /// Refuses other than 2–10 photos before calling (Telegram would answer 400).
    public func sendMediaGroup(chatID: Int64, photos: [TelegramMedia], caption: String?) throws(TelegramError) -> [Int] {
        guard (2...10).contains(photos.count) else {
            throw .permanent(code: 400, description: "an album needs 2-10 photos, not \(photos.count)")
        }
        var uploads: [HTTPRequest.Part] = []
        let media: [JSON] = photos.enumerated().map { i, photo in
            var item: [(String, JSON)] = [("type", "photo")]
            switch photo {
            case .url(let url): item.append(("media", .string(url)))
            case .upload(let filename, let contentType, let bytes):
                uploads.append(Self.part("photo\(i)", filename, contentType, bytes))
                item.append(("media", .string("attach://photo\(i)")))
            }
            if i == 0, let caption { item.append(("caption", .string(caption))) }
            return .object(item)
        }
        let result = try call("sendMediaGroup", [("chat_id", .number(String(chatID))), ("media", .array(media))], uploads: uploads)
        guard let messages = result.arrayValue else { return photos.map { _ in 0 } }
        return messages.map(TelegramAnswer.messageID)
    }

    public func sendMessage(chatID: Int64, text: String, html: Bool, keyboard: [[InlineButton]] = []) throws(TelegramError) -> Int {
        var fields: [(String, JSON)] = [("chat_id", .number(String(chatID))), ("text", .string(text))]
        if html { fields.append(("parse_mode", "HTML")) }
        if !keyboard.isEmpty { fields.append(("reply_markup", InlineButton.markup(keyboard))) }
        return TelegramAnswer.messageID(try call("sendMessage", fields, uploads: []))
    }

    /// Where the calls go, for messages: `TELEGRAM_API_URL` redacted (the token is never in it).
    public var location: String { HTTPURL.redact(apiURL) }

    /// `getMe`: the bot's id and username (for `pinglass doctor`; delivery does not need it).
    public func getMe() throws(TelegramError) -> (id: Int64, username: String?) {
        let me = try call("getMe", [], uploads: [])
        guard let id = me["id"]?.intValue else { throw .transient("getMe answer without the bot's id") }
        return (Int64(id), me["username"]?.stringValue)
    }

    /// One Bot API call: a JSON body, or multipart when there are uploads (every other field
    /// then goes as a text part: strings as they are, anything else JSON-serialized).
    func call(_ method: String, _ fields: [(String, JSON)], uploads: [HTTPRequest.Part]) throws(TelegramError) -> JSON {
        let url = apiURL + "/bot" + botToken + "/" + method
        var request: HTTPRequest
        if uploads.isEmpty {
            request = .json("POST", url, body: JSON.object(fields).bytes, timeout: timeout)
        } else {
            let parts = fields.map { name, value in
                HTTPRequest.Part(name: name, data: Array((value.stringValue ?? value.serialized).utf8))
            } + uploads
            request = .multipart(url, parts: parts, timeout: timeout)
        }
        request.connectTimeout = connectTimeout
        request.maxResponseBytes = 1 << 20
        request.headers.append(("Accept", "application/json"))
        let answer: HTTPResponse
        do { answer = try http.send(request) } catch { throw scrubbed(.transient("\(error)")) }
        do { return try TelegramAnswer.result(status: answer.status, body: answer.body) } catch { throw scrubbed(error) }
    }

    /// The error with the bot token cut out of every text it carries.
    func scrubbed(_ error: TelegramError) -> TelegramError {
        func s(_ text: String) -> String { botToken.isEmpty ? text : text.replacing(botToken, with: "[bot token]") }
        switch error {
        case .retryAfter, .migrated: return error
        case .transient(let why): return .transient(s(why))
        case .mediaURLRejected(let d): return .mediaURLRejected(s(d))
        case .permanent(let code, let d): return .permanent(code: code, description: s(d))
        case .unauthorized(let d): return .unauthorized(s(d))
        }
    }

    /// A file part; the file name loses characters that would break the part's header.
    static func part(_ name: String, _ filename: String, _ contentType: String, _ bytes: [UInt8]) -> HTTPRequest.Part {
        let safeName = String(filename.map { "\"\\\r\n".contains($0) ? "_" : $0 })
        return HTTPRequest.Part(name: name, filename: safeName.isEmpty ? name : safeName, contentType: contentType, data: bytes)
    }
}

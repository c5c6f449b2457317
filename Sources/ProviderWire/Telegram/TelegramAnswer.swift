import JSON
import WebURL

/// Reading the Bot API's answers (docs/providers.md#telegram-envelope, docs/providers.md#telegram-errors): the envelope
/// `{ok, result}` or `{ok: false, error_code, description, parameters}` and the error classes
/// of `TelegramError`. Pure functions, so unit tests feed them real-shaped answers.
///
/// ```swift
/// let result = try TelegramAnswer.result(status: 200, body: Array(#"{"ok":true,"result":{"message_id":7}}"#.utf8))
/// TelegramAnswer.messageID(result)       // 7
/// ```
public enum TelegramAnswer {
    /// Seconds to wait after a 429 that names no number at all (neither `parameters.retry_after`
    /// nor "retry after N" in the description).
    public static let defaultRetryAfter = 5

    /// Descriptions of a photo URL Telegram could not fetch or use (docs/providers.md#telegram-files; wording observed,
    /// not documented, so matched as case-insensitive substrings). Sending the bytes instead
    /// may work.
    public static let urlRejections = [
        "failed to get http url content", "wrong type of the web page content",
        "wrong file identifier/http url specified", "webpage_curl_failed", "webpage_media_empty",
    ]

    /// The `result` of a successful answer, or the error it stands for. `ok: true` is a sent
    /// message whatever else is odd about the answer (re-sending would show it twice); a body
    /// that is not Telegram's envelope at all (a proxy's error page, a cut-off answer) is
    /// classified by the HTTP status, and as transient when that says nothing better: the
    /// caller's retry limit ends it, and a misconfigured `TELEGRAM_API_URL` never marks a
    /// user's delivery as permanently failed.
    public static func result(status: Int, body: [UInt8]) throws(TelegramError) -> JSON {
        guard let envelope = try? JSON.parse(body), envelope.objectValue != nil, let ok = envelope["ok"]?.boolValue else {
            if status == 429 { throw .retryAfter(seconds: defaultRetryAfter) }
            if status == 401 { throw .unauthorized("HTTP 401") }
            throw .transient("HTTP \(status) without a Bot API answer")
        }
        if ok { return envelope["result"] ?? .null }
        let code = envelope["error_code"]?.intValue ?? status
        let description = clean(envelope["description"]?.stringValue ?? "")
        throw classify(code: code, description: description.isEmpty ? "HTTP \(status)" : description,
                       parameters: envelope["parameters"])
    }

    /// docs/providers.md#telegram-errors, in this order: `retry_after` (any code) or 429 → wait; `migrate_to_chat_id` →
    /// the new chat; 401 → the token; 5xx → transient; 400 naming a photo URL problem →
    /// send the bytes; any other 4xx (403 blocked/deactivated/kicked, 400 chat not found …)
    /// → permanent; a code outside 4xx/5xx → transient.
    public static func classify(code: Int, description: String, parameters: JSON?) -> TelegramError {
        if let seconds = parameters?["retry_after"]?.intValue { return .retryAfter(seconds: max(1, seconds)) }
        if code == 429 { return .retryAfter(seconds: retryAfter(in: description) ?? defaultRetryAfter) }
        if let chat = parameters?["migrate_to_chat_id"]?.intValue { return .migrated(toChatID: Int64(chat)) }
        if code == 401 { return .unauthorized(description) }
        if (500...599).contains(code) { return .transient("\(code) \(description)") }
        let lower = description.lowercased()
        if code == 400, urlRejections.contains(where: { lower.contains($0) }) { return .mediaURLRejected(description) }
        if (400...499).contains(code) { return .permanent(code: code, description: description) }
        return .transient("error_code \(code): \(description)")
    }

    /// The N of "Too Many Requests: retry after N" (at least 1).
    public static func retryAfter(in description: String) -> Int? {
        guard let range = description.lowercased().firstRange(of: "retry after") else { return nil }
        let digits = description[range.upperBound...].drop { $0 == " " }.prefix { $0.isASCII && $0.isNumber }
        return Int(digits).map { max(1, $0) }
    }

    /// A sent message's id; 0 when an `ok: true` answer lacks it (the message was sent all the same).
    public static func messageID(_ message: JSON) -> Int { message["message_id"]?.intValue ?? 0 }

    /// Telegram's text, shortened and with any URL in it redacted before it reaches a log.
    public static func clean(_ text: String) -> String { String(HTTPURL.redactingURLs(in: text).prefix(300)) }
}

import JSON

/// What `getWebhookInfo` says (docs/providers.md#telegram-webhook): the registered URL
/// (empty: none), the update types asked for (nil: Telegram's default set), updates
/// waiting, and the last delivery error with its time (Unix seconds). Telegram never returns
/// the `secret_token`.
public struct TelegramWebhookInfo: Equatable, Sendable {
    public var url: String
    public var allowedUpdates: [String]?
    public var pendingUpdateCount: Int
    public var lastErrorMessage: String?
    public var lastErrorDate: Int?

    public init(url: String, allowedUpdates: [String]?, pendingUpdateCount: Int = 0, lastErrorMessage: String? = nil,
                lastErrorDate: Int? = nil) {
        self.url = url
        self.allowedUpdates = allowedUpdates
        self.pendingUpdateCount = pendingUpdateCount
        self.lastErrorMessage = lastErrorMessage
        self.lastErrorDate = lastErrorDate
    }

    public init(_ result: JSON) {
        url = result["url"]?.stringValue ?? ""
        allowedUpdates = result["allowed_updates"]?.arrayValue?.compactMap(\.stringValue)
        pendingUpdateCount = result["pending_update_count"]?.intValue ?? 0
        lastErrorMessage = result["last_error_message"]?.stringValue
        lastErrorDate = result["last_error_date"]?.intValue
    }

    /// Telegram's last delivery was refused with 401 ("Wrong response from the webhook: 401
    /// Unauthorized"): the secret token it holds is not the one the webhook checks.
    public var lastErrorIsUnauthorized: Bool { lastErrorMessage?.contains("401") == true }

    public var json: JSON {
        var fields: [(String, JSON)] = [("url", .string(url)), ("has_custom_certificate", false),
                                        ("pending_update_count", .int(pendingUpdateCount))]
        if let allowedUpdates { fields.append(("allowed_updates", .array(allowedUpdates.map(JSON.string)))) }
        if let lastErrorDate { fields.append(("last_error_date", .int(lastErrorDate))) }
        if let lastErrorMessage { fields.append(("last_error_message", .string(lastErrorMessage))) }
        return .object(fields)
    }
}

/// The bot's menu button (`setChatMenuButton` / `getChatMenuButton`): Telegram's default,
/// the list of commands, or a button opening a Mini App (https only).
public enum TelegramMenuButton: Equatable, Sendable {
    case standard
    case commands
    case webApp(text: String, url: String)

    /// nil for a shape Telegram does not define.
    public init?(_ json: JSON?) {
        switch json?["type"]?.stringValue {
        case "default": self = .standard
        case "commands": self = .commands
        case "web_app":
            guard let text = json?["text"]?.stringValue, let url = json?["web_app"]?["url"]?.stringValue else { return nil }
            self = .webApp(text: text, url: url)
        default: return nil
        }
    }

    public var json: JSON {
        switch self {
        case .standard: return ["type": "default"]
        case .commands: return ["type": "commands"]
        case .webApp(let text, let url):
            return .object([("type", "web_app"), ("text", .string(text)), ("web_app", .object([("url", .string(url))]))])
        }
    }

    public var description: String {
        switch self {
        case .standard: return "Telegram's default"
        case .commands: return "the list of commands"
        case .webApp(let text, let url): return "\"\(text)\" opening \(url)"
        }
    }
}

import HTTPCore
import JSON
import Platform
import Postgres
import ProviderWire
import WebURL

/// The bot's settings at the simulated Telegram (docs/providers.md#telegram-webhook), kept in
/// `sim.tg_bot`: `setWebhook` (url, secret_token, allowed_updates; an empty url removes it),
/// `getWebhookInfo` (never the secret, as at Telegram), `deleteWebhook`, `setChatMenuButton`
/// and `getChatMenuButton` (the bot's default button; `chat_id` is not kept per chat). Web
/// apps (menu button, inline keyboard `web_app` buttons) must be https, as Telegram requires;
/// a webhook URL must be https too, except on a loopback host (the local run's API).
extension TelegramSim {
    static let botSettingMethods = ["setWebhook", "getWebhookInfo", "deleteWebhook", "setChatMenuButton", "getChatMenuButton"]

    /// The webhook `setWebhook` registered, with its secret (for `TelegramUpdates`).
    struct Webhook {
        var url: String
        var secretToken: String?
        var allowedUpdates: [String]?
        /// Why the last update was not taken, and when (`getWebhookInfo`'s `last_error_message`
        /// and `last_error_date`).
        var lastError: String?
        var lastErrorDate: Int?
        /// Updates refused since the last one taken (Telegram holds them as pending; the
        /// simulator only counts them, it does not send them again).
        var pendingUpdateCount = 0
    }

    static func webhook(_ db: some Queryable) throws -> Webhook? {
        guard let text = try db.query("SELECT value FROM sim.tg_bot WHERE name = 'webhook'", retry: .idempotent).first?.string("value"),
              let v = try? JSON.parse(text), let url = v["url"]?.stringValue, !url.isEmpty else { return nil }
        return Webhook(url: url, secretToken: v["secret_token"]?.stringValue,
                       allowedUpdates: v["allowed_updates"]?.arrayValue?.compactMap(\.stringValue),
                       lastError: v["last_error_message"]?.stringValue, lastErrorDate: v["last_error_date"]?.intValue,
                       pendingUpdateCount: v["pending_update_count"]?.intValue ?? 0)
    }

    /// Keeps why the webhook refused an update, as Telegram shows it (until the next
    /// setWebhook), and counts the update as pending.
    static func recordWebhookError(_ db: Connection, _ message: String) throws {
        try db.execute("""
            UPDATE sim.tg_bot SET value = (value::jsonb || jsonb_build_object('last_error_message', $1::text,
                'last_error_date', $2::bigint,
                'pending_update_count', coalesce((value::jsonb ->> 'pending_update_count')::int, 0) + 1))::text
            WHERE name = 'webhook'
            """, [message, Int(System.now())], retry: .idempotent)
    }

    /// An update was taken: nothing is pending any more (Telegram would have sent the held
    /// ones first). The last error stays, as Telegram may keep it.
    static func recordWebhookTaken(_ db: Connection) throws {
        try db.execute("""
            UPDATE sim.tg_bot SET value = (value::jsonb || '{"pending_update_count": 0}'::jsonb)::text WHERE name = 'webhook'
            """, retry: .idempotent)
    }

    func botSetting(_ method: String, _ p: BotRequest) throws -> Outcome {
        switch method {
        case "setWebhook":
            let url = p.string("url") ?? ""
            if !url.isEmpty {
                guard let parsed = HTTPURL(url), parsed.scheme == "https" || parsed.isLoopback else {
                    return refused(.badRequest("bad webhook: An HTTPS URL must be provided for webhook"), chatID: nil)
                }
            }
            var value: [(String, JSON)] = [("url", .string(url))]
            if let secret = p.string("secret_token") {
                guard secret.count <= 256, secret.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) else {
                    return refused(.badRequest("bad webhook: secret token contains unallowed characters"), chatID: nil)
                }
                value.append(("secret_token", .string(secret)))
            }
            if p.fields["allowed_updates"] != nil {
                guard let updates = p.json("allowed_updates")?.arrayValue, updates.allSatisfy({ $0.stringValue != nil }) else {
                    return refused(.badRequest("can't parse allowed updates"), chatID: nil)
                }
                value.append(("allowed_updates", .array(updates)))
            }
            try save("webhook", .object(value))
            return Outcome(response: Self.success(true, description: url.isEmpty ? "Webhook was deleted" : "Webhook was set"), outcome: "sent")
        case "deleteWebhook":
            try save("webhook", ["url": ""])
            return Outcome(response: Self.success(true, description: "Webhook was deleted"), outcome: "sent")
        case "getWebhookInfo":
            let hook = try Self.webhook(db)
            let info = TelegramWebhookInfo(url: hook?.url ?? "", allowedUpdates: hook?.allowedUpdates,
                                           pendingUpdateCount: hook?.pendingUpdateCount ?? 0,
                                           lastErrorMessage: hook?.lastError, lastErrorDate: hook?.lastErrorDate)
            return Outcome(response: Self.success(info.json), outcome: "sent")
        case "setChatMenuButton":
            var button = TelegramMenuButton.standard
            if p.fields["menu_button"] != nil {
                guard let parsed = TelegramMenuButton(p.json("menu_button")) else {
                    return refused(.badRequest("can't parse menu button"), chatID: nil)
                }
                button = parsed
            }
            if case .webApp(_, let url) = button, HTTPURL(url)?.scheme != "https" {
                return refused(.badRequest("menu button Web App URL '\(url)' is invalid: Only HTTPS links are allowed"), chatID: nil)
            }
            try save("menu_button", button.json)
            return Outcome(response: Self.success(true), outcome: "sent")
        default:   // getChatMenuButton
            let text = try db.query("SELECT value FROM sim.tg_bot WHERE name = 'menu_button'", retry: .idempotent).first?.string("value")
            return Outcome(response: Self.success(text.flatMap { try? JSON.parse($0) } ?? TelegramMenuButton.standard.json), outcome: "sent")
        }
    }

    func save(_ name: String, _ value: JSON) throws {
        try db.execute("INSERT INTO sim.tg_bot VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = $2",
                       [name, value.serialized], retry: .idempotent)
    }

    static func success(_ result: JSON, description: String) -> Response {
        .json(.object([("ok", true), ("result", result), ("description", .string(description))]))
    }

    /// A message's `reply_markup`: only an inline keyboard of buttons that open a page (`url`,
    /// `web_app`), each with a text; a `web_app` button needs https and a private chat.
    static func replyMarkup(_ p: BotRequest, chat: Int64) throws(BotError) -> JSON? {
        guard p.fields["reply_markup"] != nil else { return nil }
        guard let markup = p.json("reply_markup"), markup["inline_keyboard"] != nil else {
            throw .badRequest("can't parse reply keyboard markup JSON object")
        }
        guard let rows = InlineButton.rows(markup) else {
            throw .badRequest("the simulator takes inline keyboards of url and web_app buttons only, each with a text")
        }
        for button in rows.joined() {
            guard !button.text.isEmpty else { throw .badRequest("text buttons are unallowed in the inline keyboard") }
            guard let url = HTTPURL(button.url), ["http", "https"].contains(url.scheme) else {
                throw .badRequest("inline keyboard button URL '\(button.url)' is invalid")
            }
            if case .webApp = button.action {
                guard url.scheme == "https" else {
                    throw .badRequest("inline keyboard button Web App URL '\(button.url)' is invalid: Only HTTPS links are allowed")
                }
                guard chat > 0 else { throw .badRequest("BUTTON_TYPE_INVALID") }
            }
        }
        return InlineButton.markup(rows)
    }
}

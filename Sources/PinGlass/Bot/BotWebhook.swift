import JSON
import Postgres
import ProviderWire

/// What the bot does with an update Telegram posts to the webhook
/// (docs/http-api.md#telegram-webhook): `/start` in a private chat, with or without a
/// payload (`/start promo`, `/start@pinglass_bot`), is answered with a greeting and a button
/// that opens the Mini App, and its sender's user row is created or refreshed
/// (`Users.resolve`). The answer is the Bot API method itself, returned in the webhook's
/// answer (Telegram runs it), so nothing calls out while the request is served. Anything
/// else is ignored (nil: the route answers `{}`).
///
/// ```swift
/// let method = try BotWebhook.answer(db, update: update, publicBaseURL: "https://pinglass.example")
/// // {"method":"sendMessage","chat_id":42,"text":"Hi! …","reply_markup":{"inline_keyboard":[[{"text":"Open PinGlass","web_app":{"url":"https://pinglass.example/"}}]]}}
/// ```
public enum BotWebhook {
    /// Where Telegram posts the updates: `PUBLIC_BASE_URL/api/telegram/webhook`, what
    /// `pinglass telegram setup` registers and `pinglass doctor` compares with.
    public static func url(_ publicBaseURL: String) -> String { publicBaseURL + "/api/telegram/webhook" }

    /// `simulatedTelegram`: Telegram is our simulator (`MiniApp.telegramIsSimulated`), which
    /// takes a button to a plain-http Mini App.
    public static func answer(_ db: Connection, update: JSON, publicBaseURL: String?, simulatedTelegram: Bool = false) throws -> JSON? {
        guard let start = Start(update) else { return nil }
        if let user = start.user { _ = try Users.resolve(db, user) }
        return reply(start, publicBaseURL: publicBaseURL, simulatedTelegram: simulatedTelegram)
    }

    /// The `sendMessage` answering a `/start` (no database needed); the Mini App is linked as
    /// `MiniApp.link` says: a button, or its address as the text's last line.
    static func reply(_ start: Start, publicBaseURL: String?, simulatedTelegram: Bool = false) -> JSON {
        let lang = DeliveryLanguage(languageCode: start.languageCode)
        let link = publicBaseURL.map { MiniApp.link(MiniApp.home($0), simulatedTelegram: simulatedTelegram) }
        var text = BotTexts.welcome(lang, withButton: link.map { if case .button = $0 { true } else { false } } ?? false)
        if case .line(let url)? = link { text += "\n" + BotTexts.appLine(lang, url: url) }
        var fields: [(String, JSON)] = [("method", "sendMessage"), ("chat_id", .number(String(start.chatID))), ("text", .string(text))]
        if case .button(let url)? = link {
            fields.append(("reply_markup", InlineButton.markup([[.miniApp(BotTexts.openButton(lang), url: url)]])))
        }
        return .object(fields)
    }

    /// A `/start` command in a private chat, read from an Update.
    struct Start: Equatable {
        let chatID: Int64
        let languageCode: String?
        /// The sender as a user row stores it (nil when Telegram sent no usable `from`, or a bot).
        let user: TelegramUser?

        init?(_ update: JSON) {
            guard let message = update["message"], message.objectValue != nil,
                  message["chat"]?["type"]?.stringValue == "private",
                  let chat = message["chat"]?["id"]?.scalarText.flatMap({ Int64($0) }),
                  let text = message["text"]?.stringValue, Self.isStart(text) else { return nil }
            chatID = chat
            let from = message["from"]
            languageCode = from?["language_code"]?.stringValue
            if let from, from["is_bot"]?.boolValue != true, let id = from["id"]?.scalarText.flatMap({ Int64($0) }), id > 0 {
                user = TelegramUser(id: id, username: from["username"]?.stringValue, firstName: from["first_name"]?.stringValue,
                                    lastName: from["last_name"]?.stringValue, languageCode: languageCode)
            } else {
                user = nil
            }
        }

        /// `/start`, `/start <payload>`, `/start@<bot>` (Telegram's deep-link and command forms).
        static func isStart(_ text: String) -> Bool {
            let command = text.prefix { $0 != " " && $0 != "\n" }
            return command == "/start" || command.hasPrefix("/start@")
        }
    }
}

/// The bot's own texts (the greeting after `/start`), Russian or English like the chat's
/// other texts (`DeliveryLanguage`).
public enum BotTexts {
    public static func welcome(_ lang: DeliveryLanguage, withButton: Bool) -> String {
        switch (lang, withButton) {
        case (.russian, true):
            return "Привет! PinGlass делает портреты по вашим селфи. Откройте приложение кнопкой ниже: "
                + "загрузите 3–20 селфи, выберите набор и оплатите — портреты придут в этот чат."
        case (.russian, false):
            return "Привет! PinGlass делает портреты по вашим селфи; портреты приходят в этот чат."
        case (.english, true):
            return "Hi! PinGlass makes portraits from your selfies. Open the app with the button below: "
                + "upload 3–20 selfies, choose a set and pay — the portraits arrive in this chat."
        case (.english, false):
            return "Hi! PinGlass makes portraits from your selfies; they arrive in this chat."
        }
    }

    public static func openButton(_ lang: DeliveryLanguage) -> String { lang == .russian ? "Открыть PinGlass" : "Open PinGlass" }

    /// The Mini App's address as a line, where a button cannot go (`MiniApp.link`).
    public static func appLine(_ lang: DeliveryLanguage, url: String) -> String { (lang == .russian ? "Приложение: " : "The app: ") + url }
}

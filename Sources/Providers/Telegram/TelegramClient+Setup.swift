import JSON
import ProviderWire

/// The Bot API calls `pinglass telegram setup` makes (docs/providers.md#telegram-webhook):
/// the webhook and the menu button, read first so that only what differs is changed.
///
/// ```swift
/// let info = try telegram.getWebhookInfo()
/// try telegram.setWebhook(url: "https://pinglass.example/api/telegram/webhook", secretToken: secret, allowedUpdates: ["message"])
/// try telegram.setChatMenuButton(.webApp(text: "PinGlass", url: "https://pinglass.example/"))
/// ```
extension TelegramClient {
    public func getWebhookInfo() throws(TelegramError) -> TelegramWebhookInfo {
        TelegramWebhookInfo(try call("getWebhookInfo", [], uploads: []))
    }

    public func setWebhook(url: String, secretToken: String, allowedUpdates: [String]) throws(TelegramError) {
        _ = try call("setWebhook", [("url", .string(url)), ("secret_token", .string(secretToken)),
                                    ("allowed_updates", .array(allowedUpdates.map(JSON.string)))], uploads: [])
    }

    public func deleteWebhook() throws(TelegramError) {
        _ = try call("deleteWebhook", [], uploads: [])
    }

    /// The bot's default menu button (no `chat_id`: every private chat without its own).
    public func getChatMenuButton() throws(TelegramError) -> TelegramMenuButton? {
        TelegramMenuButton(try call("getChatMenuButton", [], uploads: []))
    }

    public func setChatMenuButton(_ button: TelegramMenuButton) throws(TelegramError) {
        _ = try call("setChatMenuButton", [("menu_button", button.json)], uploads: [])
    }
}

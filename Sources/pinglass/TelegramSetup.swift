import ArgumentParser
import PinGlass
import PinGlassConfig
import ProviderWire
import Providers

/// `pinglass telegram …`: the bot's own settings at Telegram.
struct TelegramCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "telegram",
        abstract: "The Telegram bot's settings at Telegram (webhook, menu button).",
        subcommands: [TelegramSetup.self]
    )
}

/// `pinglass telegram setup` (docs/runbook.md#telegram-setup): points the bot's webhook at
/// this install and its menu button at the Mini App, changing only what differs.
struct TelegramSetup: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "setup",
        abstract: "Point the bot's webhook at this install and its menu button at the Mini App (idempotent).",
        discussion: """
            Reads getWebhookInfo first and calls setWebhook only when the registered URL or update \
            types differ from PUBLIC_BASE_URL/api/telegram/webhook and ["message"] (with \
            secret_token = TELEGRAM_WEBHOOK_SECRET), or when Telegram's last delivery error says the \
            webhook answered 401 (the secret changed) and updates are waiting. Telegram never shows \
            the secret it holds: after changing TELEGRAM_WEBHOOK_SECRET, run with --force. Then reads getChatMenuButton \
            and sets a web_app button opening PUBLIC_BASE_URL/ when it is not that already. \
            Telegram opens Mini Apps over https only: on a plain-http PUBLIC_BASE_URL (a local run) \
            the menu button stays Telegram's default (one left pointing at a Mini App is reset) and \
            the app is opened from the /start message's button instead. Prints one line per \
            setting, saying whether it changed; running it again changes nothing. Needs \
            TELEGRAM_BOT_TOKEN, TELEGRAM_WEBHOOK_SECRET and PUBLIC_BASE_URL.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Call setWebhook even when the URL and update types match (after changing TELEGRAM_WEBHOOK_SECRET).")
    var force = false

    @Option(help: "The menu button's text.")
    var menuText = "PinGlass"

    static let allowedUpdates = ["message"]

    func run() throws {
        let config = try global.loadConfig()
        guard let token = config.telegramBotToken else {
            throw Refusal.configuration("TELEGRAM_BOT_TOKEN is not set: the bot's token from @BotFather")
        }
        guard let secret = config.telegramWebhookSecret else {
            throw Refusal.configuration("TELEGRAM_WEBHOOK_SECRET is not set: choose one (openssl rand -hex 32), set it for the "
                + "workers too, then run this again")
        }
        guard let base = config.publicBaseURL else {
            throw Refusal.configuration("PUBLIC_BASE_URL is not set: Telegram must be told where this install is")
        }
        let telegram = TelegramClient(apiURL: config.telegramAPIURL, botToken: token, timeout: 15)
        do {
            var changed = 0
            if try webhook(telegram, url: BotWebhook.url(base), secret: secret) { changed += 1 }
            if try menuButton(telegram, base: base) { changed += 1 }
            print(changed == 0 ? "Nothing to change." : "Changed \(changed) setting\(changed == 1 ? "" : "s").")
        } catch {
            throw Refusal.refused("Telegram at \(telegram.location): \(error)")
        }
    }

    /// The webhook: set when it differs (or `--force`, or Telegram saw a 401); true when set.
    func webhook(_ telegram: TelegramClient, url: String, secret: String) throws(TelegramError) -> Bool {
        let info = try telegram.getWebhookInfo()
        let sameURL = info.url == url, sameUpdates = info.allowedUpdates == Self.allowedUpdates
        // A 401 counts while updates wait: a refused update stays pending until the secrets
        // match, whereas the last error may outlive the fix (Telegram does not say when it
        // forgets it), and re-sending on a stale one would change something on every run.
        let refused = info.lastErrorIsUnauthorized && info.pendingUpdateCount > 0
        if sameURL && sameUpdates && !force && !refused {
            print("webhook      unchanged: \(url) (updates: \(Self.allowedUpdates.joined(separator: ", ")); "
                + "\(info.pendingUpdateCount) pending)")
            return false
        }
        try telegram.setWebhook(url: url, secretToken: secret, allowedUpdates: Self.allowedUpdates)
        let why = !sameURL ? "was \(info.url.isEmpty ? "none" : info.url)"
            : !sameUpdates ? "update types were \(info.allowedUpdates.map { $0.joined(separator: ", ") } ?? "Telegram's default")"
            : refused ? "Telegram's last delivery was refused with 401: the secret token is sent again"
            : "--force: the secret token is sent again"
        print("webhook      set: \(url) (updates: \(Self.allowedUpdates.joined(separator: ", ")); \(why))")
        return true
    }

    /// The menu button: a web_app button to the Mini App on https; Telegram's default
    /// otherwise (it refuses web apps on plain http). True when changed.
    func menuButton(_ telegram: TelegramClient, base: String) throws(TelegramError) -> Bool {
        let current = try telegram.getChatMenuButton()
        let home = MiniApp.home(base)
        guard base.lowercased().hasPrefix("https://") else {
            let why = "PUBLIC_BASE_URL is not https, and Telegram opens Mini Apps over https only; "
                + "open the app with the /start message's button"
            if case .webApp? = current {
                try telegram.setChatMenuButton(.standard)
                print("menu button  reset to Telegram's default (was \(current!.description)): \(why)")
                return true
            }
            print("menu button  unchanged: \(current?.description ?? "unknown") (\(why))")
            return false
        }
        let wanted = TelegramMenuButton.webApp(text: menuText, url: home)
        if current == wanted {
            print("menu button  unchanged: \(wanted.description)")
            return false
        }
        try telegram.setChatMenuButton(wanted)
        print("menu button  set: \(wanted.description) (was \(current?.description ?? "unknown"))")
        return true
    }
}

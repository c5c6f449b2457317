import PinGlass
import PinGlassConfig
import Platform
import ProviderWire
import Providers

/// `pinglass doctor`'s Telegram lines (docs/runbook.md#doctor): whether the Bot API takes
/// the token, and the bot's front door: the webhook Telegram holds against the one this
/// install serves (docs/runbook.md#bot-silent). A front door that is off or wrong is a
/// warning with the command that fixes it, not a failure: deliveries still work.
extension Doctor {
    /// With a bot token, one `getMe` at TELEGRAM_API_URL: a refused token or an unreachable
    /// Bot API shows here rather than at the first delivery. The token is never printed.
    /// When it answers, one `getWebhookInfo` (`webhook`).
    func telegram(_ config: Config, _ report: (Bool, String, Bool) -> Void) {
        guard let token = config.telegramBotToken else { return }
        // Built here, not from `Dependencies` (unguarded): a one-off diagnostic call, no transaction open.
        let client = TelegramClient(apiURL: config.telegramAPIURL, botToken: token, timeout: 10)
        let api = client.location
        do {
            let me = try client.getMe()
            report(true, "Telegram at \(api): bot @\(me.username ?? "?") (id \(me.id)) answers", false)
        } catch .unauthorized {
            report(false, "Telegram at \(api) refuses TELEGRAM_BOT_TOKEN (401): nothing can be delivered", false)
            return
        } catch {
            report(false, "Telegram at \(api): \(error)", false)
            return
        }
        do {
            for (ok, line) in Self.webhookLines(try client.getWebhookInfo(), config: config, now: System.now()) {
                report(ok, line, true)
            }
        } catch {
            report(false, "Telegram webhook: getWebhookInfo failed: \(error)", true)
        }
    }

    static let setupHint = "run pinglass telegram setup"

    /// What `getWebhookInfo` says, against `PUBLIC_BASE_URL/api/telegram/webhook` and
    /// `TELEGRAM_WEBHOOK_SECRET`: one line, ok or not, and a second one for Telegram's last
    /// delivery error (with its age: Telegram keeps it after later deliveries succeed).
    static func webhookLines(_ info: TelegramWebhookInfo, config: Config, now: Double) -> [(Bool, String)] {
        let expected = config.publicBaseURL.map(BotWebhook.url)
        let pending = "\(info.pendingUpdateCount) update\(info.pendingUpdateCount == 1 ? "" : "s") pending"
        var lines: [(Bool, String)] = []
        if info.url.isEmpty {
            lines.append((false, "Telegram holds no webhook for the bot: /start reaches nobody; "
                + (config.telegramWebhookSecret == nil ? "set TELEGRAM_WEBHOOK_SECRET, then " : "") + setupHint))
            return lines
        }
        guard let expected else {
            lines.append((false, "Telegram's webhook is \(info.url) (\(pending)); PUBLIC_BASE_URL is not set, so this install "
                + "cannot tell whether that is its own"))
            return lines
        }
        if info.url != expected {
            lines.append((false, "Telegram's webhook is \(info.url), not \(expected): this install gets no updates; \(setupHint)"))
        } else if config.telegramWebhookSecret == nil {
            lines.append((false, "Telegram's webhook is \(expected) (\(pending)), which answers 404 without TELEGRAM_WEBHOOK_SECRET: "
                + "set it for the workers, then \(setupHint) --force"))
        } else if let updates = info.allowedUpdates, !updates.isEmpty, !updates.contains("message") {
            lines.append((false, "Telegram's webhook is \(expected) but takes no messages (allowed_updates: "
                + "\(updates.joined(separator: ", "))): /start never arrives; \(setupHint)"))
        } else {
            lines.append((true, "Telegram's webhook is \(expected) (\(pending))"))
        }
        if let error = info.lastErrorMessage {
            let age = info.lastErrorDate.map { " " + Self.age(now - Double($0)) + " ago" } ?? ""
            let hint = info.lastErrorIsUnauthorized
                ? "the secret Telegram holds is not TELEGRAM_WEBHOOK_SECRET: \(setupHint) --force (Telegram never shows the secret)"
                : "see docs/runbook.md#bot-silent"
            lines.append((false, "Telegram's last delivery to the webhook failed\(age): \(error) (\(pending)); \(hint)"))
        }
        return lines
    }

    /// A rough age: seconds, minutes, hours or days.
    static func age(_ seconds: Double) -> String {
        let s = max(0, Int(seconds))
        switch s {
        case ..<120: return "\(s) s"
        case ..<7200: return "\(s / 60) min"
        case ..<172_800: return "\(s / 3600) h"
        default: return "\(s / 86400) days"
        }
    }
}

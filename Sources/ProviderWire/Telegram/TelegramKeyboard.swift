import JSON
import WebURL

/// One button of an inline keyboard (docs/providers.md#telegram-buttons) that opens a page:
/// a `web_app` button opens it as a Mini App inside Telegram (https only: Telegram refuses
/// any other scheme), a `url` button in the browser.
///
/// ```swift
/// let b = InlineButton.miniApp("Open PinGlass", url: "https://pinglass.example/")   // web_app
/// InlineButton.markup([[b]])   // {"inline_keyboard":[[{"text":"Open PinGlass","web_app":{"url":"https://pinglass.example/"}}]]}
/// ```
public struct InlineButton: Equatable, Sendable {
    public enum Action: Equatable, Sendable {
        case webApp(String)
        case url(String)
    }

    public var text: String
    public var action: Action

    public init(text: String, action: Action) {
        self.text = text
        self.action = action
    }

    /// The button to a page of the Mini App: `web_app` when the address is https (production),
    /// a `url` button to the same address otherwise (a local run on plain http, which Telegram
    /// would not open as a web app).
    public static func miniApp(_ text: String, url: String) -> InlineButton {
        InlineButton(text: text, action: HTTPURL(url)?.scheme == "https" ? .webApp(url) : .url(url))
    }

    /// The address the button opens, whatever its kind.
    public var url: String {
        switch action {
        case .webApp(let u), .url(let u): return u
        }
    }

    public var json: JSON {
        switch action {
        case .webApp(let u): return .object([("text", .string(text)), ("web_app", .object([("url", .string(u))]))])
        case .url(let u): return .object([("text", .string(text)), ("url", .string(u))])
        }
    }

    /// `reply_markup` for these rows of buttons.
    public static func markup(_ rows: [[InlineButton]]) -> JSON {
        .object([("inline_keyboard", .array(rows.map { .array($0.map(\.json)) }))])
    }

    /// The rows of an `InlineKeyboardMarkup` (as received), keeping the buttons that open a
    /// page; nil when it is not one.
    public static func rows(_ markup: JSON?) -> [[InlineButton]]? {
        guard let rows = markup?["inline_keyboard"]?.arrayValue else { return nil }
        var out: [[InlineButton]] = []
        for row in rows {
            guard let buttons = row.arrayValue else { return nil }
            var parsed: [InlineButton] = []
            for b in buttons {
                guard let text = b["text"]?.stringValue else { return nil }
                if let u = b["web_app"]?["url"]?.stringValue {
                    parsed.append(InlineButton(text: text, action: .webApp(u)))
                } else if let u = b["url"]?.stringValue {
                    parsed.append(InlineButton(text: text, action: .url(u)))
                } else {
                    return nil
                }
            }
            out.append(parsed)
        }
        return out
    }
}

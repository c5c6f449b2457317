import HTTPCore
import JSON
import Platform
import ProviderWire
import WebURL

/// `GET /sim/telegram/open?user=<id>[&lang=ru|en][&theme=light|dark][&path=/?job=5]`: opens
/// the Mini App as a Telegram client would (docs/providers.md#telegram-simulator). It signs
/// init data for that test user (first name "Test <id>", `language_code` = lang, default
/// `en`, `allows_write_to_pm`) with `TELEGRAM_BOT_TOKEN`, and answers 302 to
/// `PUBLIC_BASE_URL + path` with the launch parameters in the hash: `tgWebAppData`,
/// `tgWebAppVersion=8.0`, `tgWebAppPlatform=sandbox`, `tgWebAppThemeParams` (JSON).
///
/// ```
/// GET /sim/telegram/open?user=100001&lang=ru&path=%2F%3Fjob%3D5
/// → 302 Location: http://127.0.0.1:8080/?job=5#tgWebAppData=query_id%3D…&tgWebAppVersion=8.0&tgWebAppPlatform=sandbox&tgWebAppThemeParams=%7B…%7D
/// ```
enum TelegramOpen {
    /// Telegram's theme parameters for a light and a dark client.
    static let themes: [String: JSON] = [
        "light": .object([("bg_color", "#ffffff"), ("text_color", "#000000"), ("hint_color", "#999999"), ("link_color", "#2481cc"),
                          ("button_color", "#2481cc"), ("button_text_color", "#ffffff"), ("secondary_bg_color", "#efeff3")]),
        "dark": .object([("bg_color", "#17212b"), ("text_color", "#f5f5f5"), ("hint_color", "#708499"), ("link_color", "#6ab3f3"),
                         ("button_color", "#5288c1"), ("button_text_color", "#ffffff"), ("secondary_bg_color", "#232e3c")]),
    ]

    /// The path of the sim's open link for a user and a page of the Mini App, in the user's
    /// Telegram language (`language_code`: Russian for `ru…`, English otherwise and when unknown).
    static func link(user: Int64, path: String, languageCode: String?) -> String {
        "/sim/telegram/open?user=\(user)&path=\(percentEncode(path))&lang=\(lang(languageCode))"
    }

    /// The Mini App's language for a Telegram `language_code`.
    static func lang(_ languageCode: String?) -> String {
        (languageCode ?? "").lowercased().hasPrefix("ru") ? "ru" : "en"
    }

    static func handle(_ query: [String: String], botToken: String?, publicBaseURL: String?) -> Response {
        func refuse(_ why: String, _ status: Int = 400) -> Response { .json(["error": .string(why)], status: status) }
        guard let user = query["user"].flatMap({ Int64($0) }), user > 0 else {
            return refuse("user must be a Telegram user id (a positive number)")
        }
        let lang = query["lang"] ?? "en"
        guard ["ru", "en"].contains(lang) else { return refuse("lang is ru or en") }
        let themeName = query["theme"] ?? "light"
        guard let theme = themes[themeName] else { return refuse("theme is light or dark") }
        let path = query["path"] ?? "/"
        // A path of the Mini App's own site: never another host (`//host`, `/\host`).
        guard path.hasPrefix("/"), !path.hasPrefix("//"), !path.hasPrefix("/\\"), !path.contains("#"),
              !path.unicodeScalars.contains(where: { $0.value < 0x21 || $0.value == 0x7F }) else {
            return refuse("path is a path of the Mini App, like / or /?job=5")
        }
        guard let token = botToken else { return refuse("TELEGRAM_BOT_TOKEN is not set: there is nothing to sign init data with", 503) }
        guard let base = publicBaseURL else { return refuse("PUBLIC_BASE_URL is not set", 503) }
        let userJSON = JSON.object([("id", .number(String(user))), ("first_name", .string("Test \(user)")),
                                    ("language_code", .string(lang)), ("allows_write_to_pm", true)])
        let queryID = "AAH" + String(user) + String(Int(System.now() * 1000) % 1_000_000)
        let initData = TelegramInitData.sign(fields: [("query_id", queryID), ("user", userJSON.serialized),
                                                      ("auth_date", String(Int(System.now())))], botToken: token)
        let hash = "tgWebAppData=\(percentEncode(initData))&tgWebAppVersion=8.0&tgWebAppPlatform=sandbox"
            + "&tgWebAppThemeParams=\(percentEncode(theme.serialized))"
        return Response(status: 302, headers: [("Location", base + path + "#" + hash), ("Cache-Control", "no-store")], body: [])
    }
}

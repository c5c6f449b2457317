import WebURL

/// The Mini App's addresses (docs/http-api.md#telegram-webhook): it lives at
/// `PUBLIC_BASE_URL + "/"`, and a job's gallery at `PUBLIC_BASE_URL + "/?job=<id>"` (a query,
/// not a hash: Telegram appends its launch parameters to the hash). `PUBLIC_BASE_URL` is kept
/// without a trailing slash (`Config`).
///
/// ```swift
/// MiniApp.home("https://pinglass.example")              // "https://pinglass.example/"
/// MiniApp.gallery("https://pinglass.example", job: 5)   // "https://pinglass.example/?job=5"
/// ```
public enum MiniApp {
    public static func home(_ base: String) -> String { base + "/" }
    public static func gallery(_ base: String, job: Int) -> String { base + "/?job=\(job)" }

    /// How a bot message links an address of the Mini App. Telegram opens only https web
    /// apps and refuses a message whose button points where it cannot go, so the address is a
    /// button on https (a `web_app` button) or when Telegram is our simulator (a `url` button it
    /// opens through its own launcher), and otherwise a line of the text.
    public enum Link: Equatable { case button(String), line(String) }

    public static func link(_ url: String, simulatedTelegram: Bool) -> Link {
        HTTPURL(url)?.scheme == "https" || simulatedTelegram ? .button(url) : .line(url)
    }

    /// True when `TELEGRAM_API_URL` is on loopback: the simulator plays Telegram.
    public static func telegramIsSimulated(_ telegramAPIURL: String) -> Bool {
        HTTPURL(telegramAPIURL)?.isLoopback == true
    }
}

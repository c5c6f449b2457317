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
}

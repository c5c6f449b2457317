import Postgres

/// The simulated Telegram's knobs. Tests set them with `POST /sim/control/telegram/settings`
/// (`{"floodControl": false, "latencyMs": 200}`; null restores the default); they live as
/// `tg.<name>` rows of `sim.switches`, so every sim worker sees them. The defaults are
/// Telegram as its FAQ describes it (docs/providers.md#telegram-limits): about one message per second per chat with short
/// bursts, 20 per minute per group, about 30 per second overall, an album counted as one
/// message per photo (UNCONFIRMED at Telegram; the cautious reading).
struct TelegramSettings {
    /// Every name the control API accepts, with what it does.
    static let documentation: [(String, String)] = [
        ("floodControl", "answer 429 when a chat or the bot as a whole gets messages too fast (default true)"),
        ("chatPerSecond", "messages per second to one private chat (default 1)"),
        ("chatBurst", "messages a chat (or group) may take at once before the pace applies (default 3)"),
        ("groupPerMinute", "messages per minute to one group: a negative chat id (default 20)"),
        ("globalPerSecond", "messages per second over all chats (default 30)"),
        ("globalBurst", "messages the bot may send at once over all chats (default 30)"),
        ("albumCountsEachPhoto", "an album counts as one message per photo (default true); false: as one message"),
        ("floodParameters", "429 answers carry parameters.retry_after (default true); false: only \"retry after N\" in the description"),
        ("latencyMs", "delay before every Bot API answer, after the work is done (default 0)"),
        ("rejectLoopbackURLs", "photo URLs on a loopback host fail as at Telegram, which cannot reach them (default false)"),
        ("urlFetchTimeoutSeconds", "how long fetching a photo URL may take before \"failed to get HTTP URL content\" (default 10)"),
    ]
    static func isKnown(_ name: String) -> Bool { documentation.contains { $0.0 == name } }

    var floodControl = true
    var chatPerSecond = 1.0
    var chatBurst = 3
    var groupPerMinute = 20.0
    var globalPerSecond = 30.0
    var globalBurst = 30
    var albumCountsEachPhoto = true
    var floodParameters = true
    var latencyMs = 0.0
    var rejectLoopbackURLs = false
    var urlFetchTimeoutSeconds = 10.0

    init() {}

    init(_ db: some Queryable) throws {
        var v: [String: String] = [:]
        for r in try db.query("SELECT name, value FROM sim.switches WHERE name LIKE 'tg.%'", retry: .idempotent) {
            v[String(r.requiredString("name").dropFirst(3))] = r.requiredString("value")
        }
        func d(_ k: String, _ x: inout Double) { if let s = v[k], let n = Double(s), n > 0 || k == "latencyMs" { x = max(0, n) } }
        func i(_ k: String, _ x: inout Int) { if let s = v[k], let n = Int(s), n >= 1 { x = n } }
        func b(_ k: String, _ x: inout Bool) { if let s = v[k] { x = s == "true" } }
        b("floodControl", &floodControl)
        d("chatPerSecond", &chatPerSecond); i("chatBurst", &chatBurst); d("groupPerMinute", &groupPerMinute)
        d("globalPerSecond", &globalPerSecond); i("globalBurst", &globalBurst)
        b("albumCountsEachPhoto", &albumCountsEachPhoto); b("floodParameters", &floodParameters)
        d("latencyMs", &latencyMs); latencyMs = min(latencyMs, 50_000)   // the worker's request limit is 60 s
        b("rejectLoopbackURLs", &rejectLoopbackURLs); d("urlFetchTimeoutSeconds", &urlFetchTimeoutSeconds)
    }
}

import Foundation
import HTTPClient
import PinGlass
import JSON

/// The simulated Telegram's control API (`/sim/control/telegram/*`) and its inbox pages, for
/// tests and benchmarks. Stacks point `TELEGRAM_API_URL` at `apiURL` with `Fixtures.botToken`.
///
/// ```swift
/// let telegram = TelegramSimulator(simURL: stack.simURL)
/// try telegram.set(["floodControl": false])
/// try telegram.fail(["kind": "429", "retryAfter": 3])            // the next send answers 429
/// try telegram.chatFault(42, "blocked")
/// try telegram.messages(chat: 42).map { $0["kind"] }             // what chat 42 received
/// ```
public struct TelegramSimulator: Sendable {
    public let simURL: String
    let http = HTTPClient()

    public init(simURL: String) { self.simURL = simURL }

    /// `TELEGRAM_API_URL` of a client talking to it.
    public var apiURL: String { simURL + "/telegram" }

    /// The inbox page of a chat (HTML for people).
    public func inboxURL(chat: Int64) -> String { simURL + "/sim/telegram/chats/\(chat)" }

    /// Sets knobs (see the simulator's `TelegramSettings`); null restores a default.
    public func set(_ settings: JSON) throws { _ = try call("POST", "settings", settings) }

    /// Queues a failure for the next call(s): `{"kind": "429" | "5xx" | "drop" | "hang" |
    /// "urlFetch" | "error" | "lost", "count": N, "method": …, …}` (see `TelegramControl`).
    public func fail(_ failure: JSON) throws { _ = try call("POST", "fail", failure) }

    /// A permanent fault for a chat: "blocked", "deactivated", "kicked", "notFound",
    /// `["migrateTo": id]`, or null to clear it.
    public func chatFault(_ chat: Int64, _ fault: JSON) throws { _ = try call("POST", "chats", .object([(String(chat), fault)])) }

    /// Stored messages in order (`messageId`, `kind`, `text`, `mediaGroupId`, `photoId`,
    /// `photoSha256`, `source`, `atMs` …), of one chat or all.
    public func messages(chat: Int64? = nil) throws -> [JSON] {
        try call("GET", "messages" + (chat.map { "?chat_id=\($0)" } ?? ""))["messages"]?.arrayValue ?? []
    }

    /// Every call: `method`, `chatId`, `status` (0: no answer), `outcome`, `retryAfter`, `atMs`.
    public func calls(method: String? = nil) throws -> [JSON] {
        try call("GET", "calls" + (method.map { "?method=\($0)" } ?? ""))["calls"]?.arrayValue ?? []
    }

    public func counters() throws -> [String: Int] {
        Dictionary(uniqueKeysWithValues: (try call("GET", "counters").objectValue ?? []).map { ($0.0, $0.1.intValue ?? 0) })
    }

    public func reset() throws { _ = try call("POST", "reset") }
    /// Moves flood control `seconds` on, as if that long had passed.
    public func advance(seconds: Double) throws { _ = try call("POST", "advance", ["seconds": .double(seconds)]) }

    /// What a person sees on a chat's inbox page: its HTML and the bytes behind every
    /// `<img>` on it, in page order (each fetched as a browser would).
    public func inbox(chat: Int64) throws -> (html: String, photos: [[UInt8]]) {
        let page = try http.send(HTTPRequest(url: inboxURL(chat: chat)))
        guard page.status == 200 else { throw Subprocess.Failed(command: "inbox page of chat \(chat)", status: Int32(page.status)) }
        var photos: [[UInt8]] = []
        var rest = page.text[...]
        while let tag = rest.firstRange(of: "<img src=\"") {
            let src = rest[tag.upperBound...].prefix { $0 != "\"" }
            rest = rest[src.endIndex...]
            let image = try http.send(HTTPRequest(url: simURL + src))
            guard image.status == 200 else { throw Subprocess.Failed(command: "inbox image \(src)", status: Int32(image.status)) }
            photos.append(image.body)
        }
        return (page.text, photos)
    }

    /// The chat's user writes `text` to the bot (`POST /sim/control/telegram/send`): what the
    /// webhook answered and what the method in its answer gave.
    public func send(chat: Int64, text: String = "/start", lang: String = "en") throws -> JSON {
        try call("POST", "send", .object([("chatId", .number(String(chat))), ("text", .string(text)), ("lang", .string(lang))]))
    }

    /// The bot's webhook (with its secret) and menu button as the simulated Telegram keeps them.
    public func bot() throws -> JSON { try call("GET", "bot") }

    func call(_ method: String, _ path: String, _ body: JSON? = nil) throws -> JSON {
        let r = try http.send(HTTPRequest(method: method, url: simURL + "/sim/control/telegram/" + path,
                                          headers: [("Content-Type", "application/json")], body: body?.bytes ?? []))
        guard r.status == 200 else { throw Subprocess.Failed(command: "sim control \(path): \(r.text)", status: Int32(r.status)) }
        return try JSON.parse(r.body)
    }
}

/// Real, small images for tests that send photos: Telegram (and the simulator) refuse bytes
/// that only start like an image. Independent of the simulator's own encoder.
///
/// ```swift
/// let bytes = TestImages.png(seed: 3)             // a valid 24×32 PNG, different per seed
/// ```
public enum TestImages {
    public static func png(seed: Int = 0, width: Int = 24, height: Int = 32) -> [UInt8] {
        var raw: [UInt8] = []
        for y in 0..<height {
            raw.append(0)
            for x in 0..<width { raw += [UInt8(truncatingIfNeeded: seed &* 53 &+ x), UInt8(truncatingIfNeeded: y &* 7), UInt8(truncatingIfNeeded: seed)] }
        }
        // zlib: one stored block per 65535 bytes, then Adler-32.
        var z: [UInt8] = [0x78, 0x01], at = 0
        repeat {
            let n = min(65535, raw.count - at)
            z += [at + n == raw.count ? 1 : 0, UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)] + raw[at..<(at + n)]
            at += n
        } while at < raw.count
        var a: UInt32 = 1, b: UInt32 = 0
        for v in raw { a = (a + UInt32(v)) % 65521; b = (b + a) % 65521 }
        z += be32(b << 16 | a)
        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
            + chunk("IHDR", be32(UInt32(width)) + be32(UInt32(height)) + [8, 2, 0, 0, 0]) + chunk("IDAT", z) + chunk("IEND", [])
    }

    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let typed = Array(type.utf8) + data
        var c: UInt32 = 0xFFFF_FFFF
        for v in typed {
            c ^= UInt32(v)
            for _ in 0..<8 { c = (c >> 1) ^ (0xEDB8_8320 & (0 &- (c & 1))) }
        }
        return be32(UInt32(data.count)) + typed + be32(~c)
    }

    static func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }
}

import HTTPClient
import HTTPCore
import Postgres
import JSON

/// `/sim/control/telegram/*`, for tests and benchmarks:
/// - `POST settings` `{"name": value | null}` sets knobs (`TelegramSettings.documentation`;
///   null restores the default); `GET settings` lists them with their current values.
/// - `POST fail` queues failures for the next calls: one object or an array, each
///   `{"kind": K, "count": N (default 1), "method": "sendPhoto" (default: any send), …}`:
///   `429` (`retryAfter`, default 5; `parameters`: false leaves `parameters` out),
///   `5xx` (`status`, default 500; `description`; `html`: true answers a proxy's HTML page),
///   `drop` (the connection closes without an answer), `hang` (`ms` of silence, default
///   35000, then the connection closes), `urlFetch` (400 "failed to get HTTP URL content"),
///   `error` (any envelope: `status`, `description`, `parameters`), and `lost` (the call
///   succeeds and is stored, then its answer is lost: `answer` `502` (default) or `drop`).
///   A queued failure is used up by the next call it matches, whatever that call's own fate
///   (a `lost` one turns only a success into a lost answer). `GET fail` lists what is queued.
/// - `POST chats` `{"<chatId>": "blocked" | "deactivated" | "kicked" | "notFound" |
///   {"migrateTo": <id>} | null}` sets or clears permanent per-chat faults; `GET chats`.
/// - `GET messages[?chat_id=]`: stored messages in order, with timestamps (ms).
/// - `GET calls[?method=]`: every call with its arrival time, HTTP status (0: no answer) and
///   outcome (`sent`, `refused`, `injected`, `lost`).
/// - `GET counters`: calls per method and per method + status (`sendMediaGroup.429`), lost
///   answers (`sendPhoto.lost`), `messages`, `photos` (distinct stored images).
/// - `POST advance` `{"seconds": S}`: moves flood control S seconds on (every chat's and the
///   bot's limit), so a test need not wait out a `retry_after`.
/// - `POST send` `{"chatId": 100001, "text": "/start", "lang": "en", "firstName": "Ann"}`: the
///   user of that private chat writes to the bot: the Update goes to the webhook registered by
///   `setWebhook` (with its secret) and the method in its answer is run (`TelegramUpdates`);
///   answers what happened (`delivered`, `webhookStatus`, `answer`, `method`, `result`), 409
///   when no webhook is set.
/// - `POST languages` `{"<chatId>": "ru" | "en" | … | null}` sets (null forgets) the chat's
///   user's Telegram `language_code`, which `send` also records; the chat page's buttons open
///   the Mini App in it. `GET languages` lists them.
/// - `GET bot`: the webhook (with its secret, which `getWebhookInfo` never shows) and the menu button.
/// - `POST reset`: forgets messages, photos, calls, limits, queued failures, chat faults,
///   settings, the webhook and the menu button.
struct TelegramControl {
    let db: Connection
    let http: HTTPClient
    let botToken: String?

    static let chatFaults = ["blocked", "deactivated", "kicked", "notFound"]
    static let failureKinds = ["429", "5xx", "drop", "hang", "urlFetch", "error", "lost"]

    func handle(_ request: Request, _ path: String, _ body: JSON) throws -> Response {
        switch (request.method, path) {
        case ("POST", "settings"):
            let pairs = body.objectValue ?? []
            if let unknown = pairs.first(where: { !TelegramSettings.isKnown($0.0) }) {
                return .json(["error": .string("unknown Telegram setting \(unknown.0)"),
                              "known": .array(TelegramSettings.documentation.map { .string($0.0) })], status: 400)
            }
            try db.withTransaction { tx in
                for (name, value) in pairs {
                    if value.isNull {
                        try tx.query("DELETE FROM sim.switches WHERE name = $1", ["tg." + name])
                    } else {
                        try tx.query("INSERT INTO sim.switches VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = $2",
                                     ["tg." + name, value.scalarText ?? value.serialized])
                    }
                }
            }
            return try settings()
        case ("GET", "settings"):
            return try settings()
        case ("POST", "fail"):
            let specs = body.arrayValue ?? [body]
            for spec in specs {
                guard let kind = spec["kind"]?.scalarText, Self.failureKinds.contains(kind) else {
                    return .json(["error": "each failure needs a kind", "kinds": .array(Self.failureKinds.map(JSON.string))], status: 400)
                }
                if let m = spec["method"]?.stringValue, !TelegramSim.methods.contains(m) {
                    return .json(["error": .string("unknown method \(m)")], status: 400)
                }
            }
            try db.withTransaction { tx in
                for spec in specs {
                    for _ in 0..<max(1, min(spec["count"]?.intValue ?? 1, 10_000)) {
                        try tx.query("INSERT INTO sim.tg_faults (method, spec) VALUES ($1, $2)",
                                     [spec["method"]?.stringValue, normalized(spec).serialized])
                    }
                }
            }
            return try queued()
        case ("GET", "fail"):
            return try queued()
        case ("POST", "chats"):
            for (key, value) in body.objectValue ?? [] {
                guard let chat = Int64(key) else { return .json(["error": .string("chat ids are numbers, not \(key)")], status: 400) }
                if value.isNull {
                    try db.execute("DELETE FROM sim.tg_chat_faults WHERE chat_id = $1", [chat], retry: .idempotent)
                    continue
                }
                let fault: String, migrateTo: Int?
                if let to = value["migrateTo"]?.intValue {
                    (fault, migrateTo) = ("migrated", to)
                } else if let name = value.stringValue, Self.chatFaults.contains(name) {
                    (fault, migrateTo) = (name, nil)
                } else {
                    return .json(["error": .string("a chat fault is one of \(Self.chatFaults.joined(separator: ", ")), {\"migrateTo\": id} or null")],
                                 status: 400)
                }
                try db.execute("""
                    INSERT INTO sim.tg_chat_faults VALUES ($1, $2, $3)
                    ON CONFLICT (chat_id) DO UPDATE SET fault = $2, migrate_to = $3
                    """, [chat, fault, migrateTo], retry: .idempotent)
            }
            return try chats()
        case ("GET", "chats"):
            return try chats()
        case ("GET", "messages"):
            let chat = request.query["chat_id"].flatMap { Int64($0) }
            return .json(["messages": .array(try TelegramStore.messages(db, chatID: chat).map(\.json))])
        case ("GET", "calls"):
            let rows = try db.query("""
                SELECT id, method, chat_id, status, outcome, description, retry_after, messages,
                       (extract(epoch FROM at) * 1000)::bigint AS at_ms
                FROM sim.tg_calls WHERE method = $1 OR $1::text IS NULL ORDER BY at, id
                """, [request.query["method"]], retry: .idempotent)
            return .json(["calls": .array(rows.map { r in
                ["id": .int(r.requiredInt("id")), "atMs": .int(r.requiredInt("at_ms")), "method": .string(r.requiredString("method")),
                 "chatId": r.int("chat_id").map(JSON.int) ?? .null, "status": .int(r.requiredInt("status")),
                 "outcome": .string(r.requiredString("outcome")), "description": r.string("description").map(JSON.string) ?? .null,
                 "retryAfter": r.int("retry_after").map(JSON.int) ?? .null, "messages": .int(r.requiredInt("messages"))]
            })])
        case ("GET", "counters"):
            let rows = try db.query("""
                SELECT method AS name, count(*)::bigint AS n FROM sim.tg_calls GROUP BY 1
                UNION ALL SELECT method || '.' || status, count(*) FROM sim.tg_calls GROUP BY method, status
                UNION ALL SELECT method || '.' || outcome, count(*) FROM sim.tg_calls WHERE outcome IN ('lost', 'injected') GROUP BY method, outcome
                UNION ALL SELECT 'messages', count(*) FROM sim.tg_messages
                UNION ALL SELECT 'photos', count(*) FROM sim.tg_photos
                ORDER BY 1
                """, retry: .idempotent)
            return .json(.object(rows.map { ($0.requiredString("name"), .int($0.requiredInt("n"))) }))
        case ("POST", "advance"):
            guard let seconds = body["seconds"]?.doubleValue, seconds >= 0 else {
                return .json(["error": "advance needs {\"seconds\": S}"], status: 400)
            }
            let n = try db.execute("UPDATE sim.tg_limits SET tat = tat - $1::float8", [seconds])
            return .json(["moved": .int(n)])
        case ("POST", "send"):
            guard let chat = body["chatId"]?.scalarText.flatMap({ Int64($0) }) else {
                return .json(["error": "send needs {\"chatId\": <user id>, \"text\": \"/start\"}"], status: 400)
            }
            do {
                return .json(try TelegramUpdates(db: db, http: http, botToken: botToken)
                    .send(chat: chat, text: body["text"]?.stringValue ?? "/start", lang: body["lang"]?.stringValue ?? "en",
                          firstName: body["firstName"]?.stringValue))
            } catch let refusal as TelegramUpdates.Refusal {
                return .json(["error": .string(refusal.description)], status: 409)
            }
        case ("POST", "languages"):
            for (key, value) in body.objectValue ?? [] {
                guard let chat = Int64(key), chat > 0 else { return .json(["error": .string("a user's chat id is a positive number, not \(key)")], status: 400) }
                guard value.isNull || value.stringValue.map({ !$0.isEmpty && $0.count <= 16 }) == true else {
                    return .json(["error": "a language is a Telegram language_code (\"ru\", \"en\", …) or null"], status: 400)
                }
                try TelegramStore.setLanguage(db, chatID: chat, value.stringValue)
            }
            return try languages()
        case ("GET", "languages"):
            return try languages()
        case ("GET", "bot"):
            let rows = try db.query("SELECT name, value FROM sim.tg_bot ORDER BY name", retry: .idempotent)
            return .json(.object(rows.map { ($0.requiredString("name"), (try? JSON.parse($0.requiredString("value"))) ?? .null) }))
        case ("POST", "reset"):
            try db.executeScript(TelegramStore.resetScript)
            return .json(["ok": true])
        default:
            return .json(["error": "no such Telegram control endpoint"], status: 404)
        }
    }

    /// The spec as stored: its fields without `count` and `method` (those place it in the queue).
    func normalized(_ spec: JSON) -> JSON {
        .object((spec.objectValue ?? []).filter { $0.0 != "count" && $0.0 != "method" })
    }

    func settings() throws -> Response {
        let rows = try db.query("SELECT name, value FROM sim.switches WHERE name LIKE 'tg.%'", retry: .idempotent)
        let set = Dictionary(uniqueKeysWithValues: rows.map { (String($0.requiredString("name").dropFirst(3)), $0.requiredString("value")) })
        return .json(["settings": .array(TelegramSettings.documentation.map { name, doc in
            ["name": .string(name), "value": set[name].map(JSON.string) ?? .null, "about": .string(doc)]
        })])
    }

    func queued() throws -> Response {
        let rows = try db.query("SELECT method, spec FROM sim.tg_faults ORDER BY id", retry: .idempotent)
        return .json(["queued": .array(rows.map { r in
            ["method": r.string("method").map(JSON.string) ?? .null, "failure": (try? JSON.parse(r.requiredString("spec"))) ?? .null]
        })])
    }

    func languages() throws -> Response {
        .json(["languages": .object(try TelegramStore.languages(db).map { (String($0.0), .string($0.1)) })])
    }

    func chats() throws -> Response {
        let rows = try db.query("SELECT chat_id, fault, migrate_to FROM sim.tg_chat_faults ORDER BY chat_id", retry: .idempotent)
        return .json(["faults": .object(rows.map { r in
            (r.requiredString("chat_id"), r.int("migrate_to").map { ["migrateTo": .int($0)] } ?? .string(r.requiredString("fault")))
        })])
    }
}

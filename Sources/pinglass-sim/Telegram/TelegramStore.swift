import Postgres
import JSON
import LibCrypto

/// The simulated Telegram's state in schema `sim`: every message it accepted (per chat, ids
/// increasing per chat as at Telegram), each photo's bytes once (by SHA-256), a log of every
/// call with its outcome (tests check spacing and classification against it), the flood
/// limiter's state, the injected failures waiting for the next calls, and per-chat faults.
enum TelegramStore {
    static let schema = """
        CREATE TABLE IF NOT EXISTS sim.tg_photos (
            id           bigserial PRIMARY KEY,
            sha256       text NOT NULL UNIQUE,
            content_type text NOT NULL,
            width        int NOT NULL,
            height       int NOT NULL,
            size         int NOT NULL,
            bytes        bytea NOT NULL
        );
        CREATE TABLE IF NOT EXISTS sim.tg_chats (
            chat_id         bigint PRIMARY KEY,
            last_message_id int NOT NULL DEFAULT 0
        );
        CREATE TABLE IF NOT EXISTS sim.tg_messages (
            chat_id        bigint NOT NULL,
            message_id     int NOT NULL,
            at             timestamptz NOT NULL,
            kind           text NOT NULL CHECK (kind IN ('photo', 'text')),
            text           text,                -- the message text or the caption, as received
            parse_mode     text,
            media_group_id text,
            photo_id       bigint REFERENCES sim.tg_photos (id),
            source         text,                -- upload | url | file_id
            source_url     text,
            PRIMARY KEY (chat_id, message_id)
        );
        CREATE TABLE IF NOT EXISTS sim.tg_calls (
            id          bigserial PRIMARY KEY,
            at          timestamptz NOT NULL,   -- when the call arrived
            method      text NOT NULL,
            chat_id     bigint,
            status      int NOT NULL,           -- the HTTP status answered; 0: no answer (dropped)
            outcome     text NOT NULL,          -- sent | refused | injected | lost
            description text,
            retry_after int,
            messages    int NOT NULL DEFAULT 0
        );
        CREATE TABLE IF NOT EXISTS sim.tg_limits (key text PRIMARY KEY, tat double precision NOT NULL);
        CREATE TABLE IF NOT EXISTS sim.tg_faults (id bigserial PRIMARY KEY, method text, spec text NOT NULL);
        CREATE TABLE IF NOT EXISTS sim.tg_chat_faults (chat_id bigint PRIMARY KEY, fault text NOT NULL, migrate_to bigint);
        -- A message's inline keyboard as received (JSON), and whether the chat's user wrote it
        -- (a command sent through the control API) rather than the bot.
        ALTER TABLE sim.tg_messages ADD COLUMN IF NOT EXISTS reply_markup text;
        ALTER TABLE sim.tg_messages ADD COLUMN IF NOT EXISTS from_user boolean NOT NULL DEFAULT false;
        -- The bot's settings at Telegram: 'webhook' (url, secret_token, allowed_updates) and
        -- 'menu_button', each as JSON.
        CREATE TABLE IF NOT EXISTS sim.tg_bot (name text PRIMARY KEY, value text NOT NULL);
        -- The chat's user's Telegram language (`language_code`): the one of the last update the
        -- user sent, or set through the control API; the chat page opens the Mini App in it.
        ALTER TABLE sim.tg_chats ADD COLUMN IF NOT EXISTS language_code text;
        """

    static let resetScript = """
        DELETE FROM sim.tg_messages; DELETE FROM sim.tg_photos; DELETE FROM sim.tg_chats; DELETE FROM sim.tg_calls;
        DELETE FROM sim.tg_limits; DELETE FROM sim.tg_faults; DELETE FROM sim.tg_chat_faults; DELETE FROM sim.tg_bot;
        DELETE FROM sim.switches WHERE name LIKE 'tg.%';
        """

    // MARK: photos

    struct StoredPhoto {
        let id: Int
        let contentType: String
        let width: Int
        let height: Int
        let size: Int
        let bytes: [UInt8]
    }

    /// Stores the bytes once per distinct photo; its id.
    static func savePhoto(_ db: Connection, _ p: SimPhoto) throws -> Int {
        let sha = Crypto.hex(Crypto.sha256(p.bytes))
        if let id = try db.query("SELECT id FROM sim.tg_photos WHERE sha256 = $1", [sha], retry: .idempotent).first?.int("id") {
            return id
        }
        return try db.query("""
            INSERT INTO sim.tg_photos (sha256, content_type, width, height, size, bytes) VALUES ($1, $2, $3, $4, $5, $6::bytea)
            ON CONFLICT (sha256) DO UPDATE SET sha256 = EXCLUDED.sha256 RETURNING id
            """, [sha, p.contentType, p.width, p.height, p.bytes.count, Bytea(p.bytes)])[0].requiredInt("id")
    }

    static func photo(_ db: some Queryable, _ id: Int) throws -> StoredPhoto? {
        guard let r = try db.query("""
            SELECT id, content_type, width, height, size, encode(bytes, 'hex') AS hex FROM sim.tg_photos WHERE id = $1
            """, [id], retry: .idempotent).first else { return nil }
        return StoredPhoto(id: r.requiredInt("id"), contentType: r.requiredString("content_type"), width: r.requiredInt("width"),
                           height: r.requiredInt("height"), size: r.requiredInt("size"), bytes: Crypto.unhex(r.requiredString("hex")) ?? [])
    }

    // MARK: messages

    /// One message to store: a photo (with its caption) or a text.
    struct NewMessage {
        var kind: String
        var text: String?
        var parseMode: String?
        var photoID: Int?
        var source: String?
        var sourceURL: String?
        /// The inline keyboard as received (JSON text).
        var replyMarkup: String? = nil
        /// Written by the chat's user (a command the control API sent), not by the bot.
        var fromUser = false
    }

    /// A stored message's id and date (Unix seconds).
    struct Stored {
        let messageID: Int
        let date: Int
    }

    /// Flood control and the store in one transaction: a refused call stores nothing, an
    /// admitted one always stores all its messages (an album together). Returns the stored
    /// messages, or the seconds to wait.
    static func insert(_ db: Connection, chatID: Int64, _ messages: [NewMessage], mediaGroupID: String?,
                       _ s: TelegramSettings) throws -> Result<[Stored], FloodRefusal> {
        try db.withTransaction { tx in
            if s.floodControl {
                let cost = s.albumCountsEachPhoto ? messages.count : 1
                if let refusal = try FloodControl.admit(tx, chatID: chatID, cost: cost, s) { return .failure(refusal) }
            }
            try tx.query("INSERT INTO sim.tg_chats (chat_id) VALUES ($1) ON CONFLICT DO NOTHING", [chatID])
            let last = try tx.query("""
                UPDATE sim.tg_chats SET last_message_id = last_message_id + $2 WHERE chat_id = $1
                RETURNING last_message_id, extract(epoch FROM clock_timestamp())::bigint AS date
                """, [chatID, messages.count])[0]
            let first = last.requiredInt("last_message_id") - messages.count + 1
            let date = last.requiredInt("date")
            for (i, m) in messages.enumerated() {
                try tx.query("""
                    INSERT INTO sim.tg_messages (chat_id, message_id, at, kind, text, parse_mode, media_group_id, photo_id, source, source_url,
                                                 reply_markup, from_user)
                    VALUES ($1, $2, clock_timestamp(), $3, $4, $5, $6, $7, $8, $9, $10, $11)
                    """, [chatID, first + i, m.kind, m.text, m.parseMode, mediaGroupID, m.photoID, m.source, m.sourceURL,
                          m.replyMarkup, m.fromUser])
            }
            return .success(messages.indices.map { Stored(messageID: first + $0, date: date) })
        }
    }

    /// A message as the control API and the inbox show it.
    struct Message {
        let chatID: Int64
        let messageID: Int
        let atMS: Int
        let atText: String
        let kind: String
        let text: String?
        let parseMode: String?
        let mediaGroupID: String?
        let photoID: Int?
        let photoSHA256: String?
        let photoSize: Int?
        let source: String?
        let replyMarkup: JSON?
        let fromUser: Bool

        init(_ r: Row) {
            chatID = Int64(r.requiredInt("chat_id"))
            messageID = r.requiredInt("message_id")
            atMS = r.requiredInt("at_ms")
            atText = r.requiredString("at_text")
            kind = r.requiredString("kind")
            text = r.string("text")
            parseMode = r.string("parse_mode")
            mediaGroupID = r.string("media_group_id")
            photoID = r.int("photo_id")
            photoSHA256 = r.string("sha256")
            photoSize = r.int("size")
            source = r.string("source")
            replyMarkup = r.string("reply_markup").flatMap { try? JSON.parse(Array($0.utf8)) }
            fromUser = r.bool("from_user") ?? false
        }

        var json: JSON {
            ["chatId": .int(Int(chatID)), "messageId": .int(messageID), "atMs": .int(atMS), "at": .string(atText),
             "kind": .string(kind), "text": text.map(JSON.string) ?? .null, "parseMode": parseMode.map(JSON.string) ?? .null,
             "mediaGroupId": mediaGroupID.map(JSON.string) ?? .null, "photoId": photoID.map(JSON.int) ?? .null,
             "photoSha256": photoSHA256.map(JSON.string) ?? .null, "photoBytes": photoSize.map(JSON.int) ?? .null,
             "source": source.map(JSON.string) ?? .null, "replyMarkup": replyMarkup ?? .null,
             "from": .string(fromUser ? "user" : "bot")]
        }
    }

    /// Messages in the order they were stored, of one chat or of all.
    // MARK: the chat's user's language

    /// The `language_code` of the chat's user (nil: never said).
    static func language(_ db: some Queryable, chatID: Int64) throws -> String? {
        try db.query("SELECT language_code FROM sim.tg_chats WHERE chat_id = $1", [chatID], retry: .idempotent).first?.string("language_code")
    }

    /// Remembers (or with nil forgets) the chat's user's `language_code`.
    static func setLanguage(_ db: some Queryable, chatID: Int64, _ code: String?) throws {
        try db.query("""
            INSERT INTO sim.tg_chats (chat_id, language_code) VALUES ($1, $2)
            ON CONFLICT (chat_id) DO UPDATE SET language_code = EXCLUDED.language_code
            """, [chatID, code], retry: .idempotent)
    }

    /// Every chat whose user's language is known.
    static func languages(_ db: some Queryable) throws -> [(Int64, String)] {
        try db.query("SELECT chat_id, language_code FROM sim.tg_chats WHERE language_code IS NOT NULL ORDER BY chat_id", retry: .idempotent)
            .map { (Int64($0.requiredInt("chat_id")), $0.requiredString("language_code")) }
    }

    static func messages(_ db: some Queryable, chatID: Int64?) throws -> [Message] {
        try db.query("""
            SELECT m.chat_id, m.message_id, m.kind, m.text, m.parse_mode, m.media_group_id, m.photo_id, m.source, m.reply_markup, m.from_user,
                   p.sha256, p.size, (extract(epoch FROM m.at) * 1000)::bigint AS at_ms,
                   to_char(m.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS at_text
            FROM sim.tg_messages m LEFT JOIN sim.tg_photos p ON p.id = m.photo_id
            WHERE m.chat_id = $1 OR $1::bigint IS NULL ORDER BY m.at, m.chat_id, m.message_id
            """, [chatID], retry: .idempotent).map(Message.init)
    }

    // MARK: calls, faults

    /// Logs a call with how it ended (`arrived`: Unix seconds).
    static func logCall(_ db: some Queryable, arrived: Double, method: String, chatID: Int64?, status: Int, outcome: String,
                        description: String?, retryAfter: Int?, messages: Int) throws {
        try db.query("""
            INSERT INTO sim.tg_calls (at, method, chat_id, status, outcome, description, retry_after, messages)
            VALUES (to_timestamp($1::float8), $2, $3, $4, $5, $6, $7, $8)
            """, [arrived, method, chatID, status, outcome, description, retryAfter, messages])
    }

    /// Takes the oldest injected failure meant for this method (or for every send), if any.
    static func takeFault(_ db: some Queryable, method: String) throws -> JSON? {
        let sends = ["sendPhoto", "sendMediaGroup", "sendMessage"]
        guard let spec = try db.query("""
            DELETE FROM sim.tg_faults WHERE id = (
                SELECT id FROM sim.tg_faults WHERE method = $1 OR (method IS NULL AND $2::bool)
                ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
            RETURNING spec
            """, [method, sends.contains(method)]).first?.string("spec") else { return nil }
        return try? JSON.parse(spec)
    }

    /// The permanent fault set for a chat: `blocked`, `deactivated`, `kicked`, `notFound` or
    /// `migrated` (with the new id).
    static func chatFault(_ db: some Queryable, _ chatID: Int64) throws -> (fault: String, migrateTo: Int64?)? {
        guard let r = try db.query("SELECT fault, migrate_to FROM sim.tg_chat_faults WHERE chat_id = $1", [chatID], retry: .idempotent).first
        else { return nil }
        return (r.requiredString("fault"), r.int("migrate_to").map(Int64.init))
    }
}

/// A 429 from flood control: the seconds to wait and which limit said so.
struct FloodRefusal: Error {
    let retryAfter: Int
    let limit: String
}

/// Telegram's flood limits as a generic cell rate algorithm per key (one per chat, one for
/// the bot): each key keeps a theoretical arrival time `tat`; a call costing n messages is
/// admitted when `tat - (burst - 1) × interval ≤ now`, and moves `tat` on by n intervals.
/// An album is admitted whole when the chat is not behind, and then holds the chat's next
/// messages back by its size: "short bursts, but eventually 429" (docs/providers.md#telegram-limits).
enum FloodControl {
    static func admit(_ tx: some Queryable, chatID: Int64, cost: Int, _ s: TelegramSettings) throws -> FloodRefusal? {
        let chatKey = "chat:\(chatID)"
        try tx.query("INSERT INTO sim.tg_limits VALUES ('global', 0), ($1, 0) ON CONFLICT DO NOTHING", [chatKey])
        // Rows locked in key order ('chat:…' before 'global') by every worker: no deadlock.
        let rows = try tx.query("""
            SELECT key, tat, extract(epoch FROM clock_timestamp())::float8 AS now
            FROM sim.tg_limits WHERE key IN ('global', $1) ORDER BY key FOR UPDATE
            """, [chatKey])
        guard let now = rows.first?.double("now") else { return nil }
        let limits: [(key: String, interval: Double, burst: Int)] = [
            (chatKey, chatID < 0 ? 60 / s.groupPerMinute : 1 / s.chatPerSecond, s.chatBurst),
            ("global", 1 / s.globalPerSecond, s.globalBurst),
        ]
        var waits: [(Double, String)] = []
        var newTAT: [(String, Double)] = []
        for limit in limits {
            let tat = rows.first { $0.string("key") == limit.key }?.double("tat") ?? 0
            let allowedAt = tat - Double(limit.burst - 1) * limit.interval
            if allowedAt > now { waits.append((allowedAt - now, limit.key)) }
            newTAT.append((limit.key, max(tat, now) + Double(cost) * limit.interval))
        }
        if let worst = waits.max(by: { $0.0 < $1.0 }) {
            return FloodRefusal(retryAfter: max(1, Int(worst.0.rounded(.up))), limit: worst.1 == "global" ? "global" : "chat")
        }
        for (key, tat) in newTAT { try tx.query("UPDATE sim.tg_limits SET tat = $2 WHERE key = $1", [key, tat]) }
        return nil
    }
}

import HTTPClient
import HTTPCore
import Postgres
import JSON
import LibCrypto
import Platform

/// The Telegram Bot API part of the simulator (docs/providers.md#telegram-simulator), at
/// `/telegram/bot<token>/<method>` and at the root `/bot<token>/<method>`: `sendPhoto`,
/// `sendMediaGroup`, `sendMessage` and `getMe`, with parameters as JSON, form or multipart
/// (`BotRequest`). Photos come uploaded or by URL, which the simulator fetches as Telegram
/// does (`SimPhoto`). Every accepted message is stored (`TelegramStore`) and shown on the
/// inbox pages (`TelegramInbox`).
///
/// Refusals use Telegram's envelope and wording: 401 for a token other than
/// `TELEGRAM_BOT_TOKEN`, 400 for bad parameters, per-chat faults (403 blocked, 400 chat not
/// found, 400 migrated with `migrate_to_chat_id`), 429 from flood control
/// (`TelegramSettings`, `FloodControl`), and failures injected for the next calls
/// (`TelegramControl`): 429, 5xx, a dropped connection, no answer, a photo URL refused, and a
/// success whose answer is lost.
struct TelegramSim {
    let db: Connection
    let http: HTTPClient
    /// `TELEGRAM_BOT_TOKEN` of the simulator's environment; nil accepts any token.
    let botToken: String?

    static let methods = ["sendPhoto", "sendMediaGroup", "sendMessage", "getMe"] + botSettingMethods
    /// A status nginx turns into a closed connection without an answer (`nginx/local.conf.in`:
    /// `error_page 599 = @drop` → `return 444`).
    static let dropStatus = 599

    /// One call's result, before it is logged and answered.
    struct Outcome {
        var response: Response
        var outcome: String
        var chatID: Int64?
        var description: String?
        var retryAfter: Int?
        var messages = 0
    }

    /// `path`: the segments after the optional `telegram` prefix, `["bot<token>", "<method>"]`.
    func handle(_ request: Request, _ path: [String]) throws -> Response {
        let arrived = System.now()
        guard path.count == 2, path[0].hasPrefix("bot"),
              let method = Self.methods.first(where: { $0.lowercased() == path[1].lowercased() }) else {
            return Self.error(BotError(status: 404, description: "Not Found"))
        }
        let token = String(path[0].dropFirst(3))
        var result: Outcome
        if token.isEmpty || botToken.map({ !Crypto.constantTimeEqual(Array(token.utf8), Array($0.utf8)) }) == true {
            result = refused(BotError(status: 401, description: "Unauthorized"), chatID: nil)
        } else {
            let settings = try TelegramSettings(db)
            result = try call(method, request, settings)
            if settings.latencyMs > 0 && result.response.status != Self.dropStatus { System.sleep(seconds: settings.latencyMs / 1000) }
        }
        let status = result.response.status == Self.dropStatus ? 0 : result.response.status
        // Telegram answers whatever becomes of this call log: it lives in the PostgreSQL of the
        // system under test, which a test may stop while a call is in flight (the message
        // itself was stored before).
        do {
            try TelegramStore.logCall(db, arrived: arrived, method: method, chatID: result.chatID, status: status, outcome: result.outcome,
                                      description: result.description, retryAfter: result.retryAfter, messages: result.messages)
        } catch {
            writeLog("telegram: \(method) answered, its call log lost: \(error)")
        }
        return result.response
    }

    func call(_ method: String, _ request: Request, _ s: TelegramSettings) throws -> Outcome {
        let fault = try TelegramStore.takeFault(db, method: method)
        let kind = fault?["kind"]?.stringValue
        if let fault, kind != "lost" { return injected(fault) }
        var result: Outcome
        do {
            let params = try BotRequest(request)
            switch method {
            case "getMe": result = Outcome(response: Self.success(bot), outcome: "sent")
            case let m where Self.botSettingMethods.contains(m): result = try botSetting(m, params)
            case "sendMessage": result = try sendMessage(params, s)
            case "sendPhoto": result = try sendPhoto(params, s)
            default: result = try sendMediaGroup(params, s)
            }
        } catch let e as BotRequest.Unreadable {
            return refused(BotError(status: 400, description: e.description), chatID: nil)
        }
        if let fault, kind == "lost", result.outcome == "sent" {
            // Telegram did it, the answer never arrives: the caller cannot know.
            result.outcome = "lost"
            result.response = fault["answer"]?.stringValue == "drop" ? Self.dropped : Self.badGateway
        }
        return result
    }

    // MARK: methods

    func sendMessage(_ p: BotRequest, _ s: TelegramSettings) throws -> Outcome {
        let chat: Int64
        do { chat = try chatID(p) } catch { return refused(error, chatID: nil) }
        guard let text = p.string("text") else { return refused(.badRequest("message text is empty"), chatID: chat) }
        let formatted: TelegramHTML
        do { formatted = try Self.format(text, parseMode: p.string("parse_mode")) } catch { return refused(error, chatID: chat) }
        guard !formatted.plain.isEmpty else { return refused(.badRequest("message text is empty"), chatID: chat) }
        guard formatted.plain.utf16.count <= 4096 else { return refused(.badRequest("message is too long"), chatID: chat) }
        let markup: JSON?
        do { markup = try Self.replyMarkup(p, chat: chat) } catch { return refused(error, chatID: chat) }
        if let fault = try chatFault(chat) { return refused(fault, chatID: chat) }
        let message = TelegramStore.NewMessage(kind: "text", text: text, parseMode: p.string("parse_mode"), replyMarkup: markup?.serialized)
        return try store(chat, [message], group: nil, s) { stored in
            .object(self.message(chat, stored[0]) + [("text", .string(formatted.plain))] + entities("entities", formatted)
                    + (markup.map { [("reply_markup", $0)] } ?? []))
        }
    }

    func sendPhoto(_ p: BotRequest, _ s: TelegramSettings) throws -> Outcome {
        let chat: Int64
        do { chat = try chatID(p) } catch { return refused(error, chatID: nil) }
        let ref: SimPhoto.Reference
        if let file = p.files["photo"] { ref = .upload(file) } else if let text = p.string("photo") { ref = .text(text) } else {
            return refused(.badRequest("there is no photo in the request"), chatID: chat)
        }
        let caption: TelegramHTML?
        do { caption = try Self.caption(p.string("caption"), parseMode: p.string("parse_mode")) } catch { return refused(error, chatID: chat) }
        if let fault = try chatFault(chat) { return refused(fault, chatID: chat) }
        let item = PhotoItem(ref: ref, caption: p.string("caption"), parseMode: p.string("parse_mode"), formatted: caption)
        return try sendPhotos(chat, [item], files: p.files, album: false, s)
    }

    func sendMediaGroup(_ p: BotRequest, _ s: TelegramSettings) throws -> Outcome {
        let chat: Int64
        do { chat = try chatID(p) } catch { return refused(error, chatID: nil) }
        guard p.fields["media"] != nil else { return refused(.badRequest("parameter \"media\" is required"), chatID: chat) }
        guard let items = p.json("media")?.arrayValue else { return refused(.badRequest("can't parse media JSON object"), chatID: chat) }
        // Telegram's wording for a wrong count is UNCONFIRMED (docs/providers.md#telegram-files); the rule is documented.
        guard (2...10).contains(items.count) else { return refused(.badRequest("media must include 2-10 items"), chatID: chat) }
        var photos: [PhotoItem] = []
        for item in items {
            guard item.objectValue != nil, let media = item["media"]?.stringValue, !media.isEmpty else {
                return refused(.badRequest("can't parse InputMedia: media not found"), chatID: chat)
            }
            guard item["type"]?.stringValue == "photo" else {
                return refused(.badRequest("the simulator takes albums of photos only (type \"photo\")"), chatID: chat)
            }
            let text = item["caption"]?.scalarText, mode = item["parse_mode"]?.stringValue
            do {
                photos.append(PhotoItem(ref: .text(media), caption: text, parseMode: mode, formatted: try Self.caption(text, parseMode: mode)))
            } catch {
                return refused(error, chatID: chat)
            }
        }
        if let fault = try chatFault(chat) { return refused(fault, chatID: chat) }
        return try sendPhotos(chat, photos, files: p.files, album: true, s)
    }

    /// A photo of a call with its caption as received and as parsed.
    struct PhotoItem {
        var ref: SimPhoto.Reference
        var caption: String?
        var parseMode: String?
        var formatted: TelegramHTML?
    }

    /// Fetches or reads the photos, stores them and the messages, answers the Message (or,
    /// for an album, the array of Messages).
    func sendPhotos(_ chat: Int64, _ items: [PhotoItem],
                    files: [String: Multipart.Part], album: Bool, _ s: TelegramSettings) throws -> Outcome {
        let photos: [SimPhoto]
        do { photos = try SimPhoto.resolve(items.map(\.ref), files: files, db: db, http: http, settings: s) } catch {
            return refused(error, chatID: chat)
        }
        var messages: [TelegramStore.NewMessage] = []
        var ids: [Int] = []
        for (item, photo) in zip(items, photos) {
            let id = try TelegramStore.savePhoto(db, photo)
            ids.append(id)
            messages.append(.init(kind: "photo", text: item.caption, parseMode: item.parseMode, photoID: id, source: photo.source, sourceURL: photo.url))
        }
        let group = album ? String(Int.random(in: 10_000_000_000_000_000...99_999_999_999_999_999)) : nil
        return try store(chat, messages, group: group, s) { stored in
            let results: [JSON] = stored.indices.map { i in
                var fields = self.message(chat, stored[i])
                if let group { fields.append(("media_group_id", .string(group))) }
                fields.append(("photo", [Self.photoSize(ids[i], photos[i])]))
                if let caption = items[i].formatted, !caption.plain.isEmpty {
                    fields.append(("caption", .string(caption.plain)))
                    fields += entities("caption_entities", caption)
                }
                return .object(fields)
            }
            return album ? .array(results) : results[0]
        }
    }

    /// Stores under flood control; the success answer is built from the stored ids.
    func store(_ chat: Int64, _ messages: [TelegramStore.NewMessage], group: String?, _ s: TelegramSettings,
               result: ([TelegramStore.Stored]) -> JSON) throws -> Outcome {
        switch try TelegramStore.insert(db, chatID: chat, messages, mediaGroupID: group, s) {
        case .success(let stored):
            return Outcome(response: Self.success(result(stored)), outcome: "sent", chatID: chat, messages: messages.count)
        case .failure(let refusal):
            var o = refused(Self.tooManyRequests(refusal.retryAfter, withParameters: s.floodParameters), chatID: chat)
            o.retryAfter = refusal.retryAfter
            return o
        }
    }

    // MARK: parameters

    func chatID(_ p: BotRequest) throws(BotError) -> Int64 {
        guard let text = p.string("chat_id") else { throw .badRequest("chat_id is empty") }
        // Channel usernames (@name) and anything not numeric: no such chat here.
        guard let id = Int64(text), id != 0 else { throw .badRequest("chat not found") }
        return id
    }

    func chatFault(_ chat: Int64) throws -> BotError? {
        guard let set = try TelegramStore.chatFault(db, chat) else { return nil }
        let (fault, migrateTo) = set
        switch fault {
        case "blocked": return BotError(status: 403, description: "Forbidden: bot was blocked by the user")
        case "deactivated": return BotError(status: 403, description: "Forbidden: user is deactivated")
        case "kicked": return BotError(status: 403, description: "Forbidden: bot was kicked from the group chat")
        case "migrated":
            return BotError(status: 400, description: "Bad Request: group chat was upgraded to a supergroup chat",
                            parameters: ["migrate_to_chat_id": .int(Int(migrateTo ?? -1_000_000_000_000 + chat))])
        default: return .badRequest("chat not found")
        }
    }

    static func format(_ text: String, parseMode: String?) throws(BotError) -> TelegramHTML {
        switch parseMode?.lowercased() {
        case nil, "": return TelegramHTML(plain: text)
        case "html":
            do { return try TelegramHTML(text) } catch { throw BotError(status: 400, description: "\(error)") }
        case "markdown", "markdownv2": return TelegramHTML(plain: text)   // not interpreted here
        default: throw .badRequest("unsupported parse_mode")
        }
    }

    static func caption(_ text: String?, parseMode: String?) throws(BotError) -> TelegramHTML? {
        guard let text else { return nil }
        let formatted = try format(text, parseMode: parseMode)
        guard formatted.plain.utf16.count <= 1024 else { throw .badRequest("message caption is too long") }
        return formatted
    }

    // MARK: answers

    var botID: Int64 { botToken.flatMap { Int64($0.prefix { $0.isNumber }) } ?? 7_000_000_001 }

    var bot: JSON {
        ["id": .int(Int(botID)), "is_bot": true, "first_name": "PinGlass (simulated)", "username": "pinglass_sim_bot",
         "can_join_groups": true, "can_read_all_group_messages": false, "supports_inline_queries": false]
    }

    func message(_ chat: Int64, _ stored: TelegramStore.Stored) -> [(String, JSON)] {
        let type = chat > 0 ? "private" : (chat < -1_000_000_000_000 ? "supergroup" : "group")
        let chatJSON: JSON = chat > 0 ? ["id": .int(Int(chat)), "first_name": .string("Chat \(chat)"), "type": .string(type)]
            : ["id": .int(Int(chat)), "title": .string("Group \(chat)"), "type": .string(type)]
        return [("message_id", .int(stored.messageID)), ("from", bot), ("chat", chatJSON), ("date", .int(stored.date))]
    }

    func entities(_ name: String, _ formatted: TelegramHTML) -> [(String, JSON)] {
        guard !formatted.entities.isEmpty else { return [] }
        return [(name, .array(formatted.entities.map { e in
            var fields: [(String, JSON)] = [("offset", .int(e.offset)), ("length", .int(e.length)), ("type", .string(e.type))]
            if let url = e.url { fields.append(("url", .string(url))) }
            return .object(fields)
        }))]
    }

    static func photoSize(_ id: Int, _ p: SimPhoto) -> JSON {
        ["file_id": .string(SimPhoto.fileID(id)), "file_unique_id": .string("SIMU\(id)"), "file_size": .int(p.bytes.count),
         "width": .int(p.width), "height": .int(p.height)]
    }

    func refused(_ error: BotError, chatID: Int64?) -> Outcome {
        Outcome(response: Self.error(error), outcome: "refused", chatID: chatID, description: error.description)
    }

    func refused(_ error: any Error, chatID: Int64?) -> Outcome {
        refused(error as? BotError ?? .badRequest("\(error)"), chatID: chatID)
    }

    static func tooManyRequests(_ seconds: Int, withParameters: Bool) -> BotError {
        BotError(status: 429, description: "Too Many Requests: retry after \(seconds)",
                 parameters: withParameters ? ["retry_after": .int(seconds)] : nil)
    }

    /// A failure taken from the queue (`POST /sim/control/telegram/fail`): nothing is stored.
    func injected(_ fault: JSON) -> Outcome {
        var o: Outcome
        switch fault["kind"]?.stringValue ?? "" {
        case "429":
            let seconds = max(1, fault["retryAfter"]?.intValue ?? 5)
            o = refused(Self.tooManyRequests(seconds, withParameters: fault["parameters"]?.boolValue ?? true), chatID: nil)
            o.retryAfter = seconds
        case "5xx":
            let status = fault["status"]?.intValue ?? 500
            if fault["html"]?.boolValue == true {
                o = Outcome(response: Self.gatewayPage(status), outcome: "refused")
            } else {
                o = refused(BotError(status: status, description: fault["description"]?.stringValue ?? "Internal Server Error"), chatID: nil)
            }
        case "urlFetch":
            o = refused(BotError.urlContent, chatID: nil)
        case "drop":
            o = Outcome(response: Self.dropped, outcome: "refused")
        case "hang":
            System.sleep(seconds: min(max(0, fault["ms"]?.doubleValue ?? 35_000), 55_000) / 1000)
            o = Outcome(response: Self.dropped, outcome: "refused")
        default:   // "error": any envelope
            o = refused(BotError(status: fault["status"]?.intValue ?? 400, description: fault["description"]?.stringValue ?? "Bad Request",
                                 parameters: fault["parameters"]), chatID: nil)
        }
        o.outcome = "injected"
        o.description = o.description ?? fault["kind"]?.stringValue
        return o
    }

    static func success(_ result: JSON) -> Response { .json(["ok": true, "result": result]) }

    static func error(_ e: BotError) -> Response {
        var fields: [(String, JSON)] = [("ok", false), ("error_code", .int(e.status)), ("description", .string(e.description))]
        if let p = e.parameters { fields.append(("parameters", p)) }
        return .json(.object(fields), status: e.status)
    }

    static let dropped = Response(status: dropStatus, body: [])
    static var badGateway: Response { gatewayPage(502) }

    /// What a proxy in front of the Bot API answers when the backend fails: HTML, not JSON.
    static func gatewayPage(_ status: Int) -> Response {
        let title = "\(status) \(Response.reason(status))"
        return Response(status: status, contentType: "text/html",
                        body: "<html>\r\n<head><title>\(title)</title></head>\r\n<body>\r\n<center><h1>\(title)</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
    }
}

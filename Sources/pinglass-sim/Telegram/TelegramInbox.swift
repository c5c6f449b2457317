import HTTPCore
import Postgres
import ProviderWire

/// Pages for people watching a demo: what each simulated chat received, as a user would see
/// it. `GET /sim/telegram/chats` lists the chats; `GET /sim/telegram/chats/<chatId>` shows
/// one chat's messages in order (an album's photos side by side, captions, texts with their
/// links, inline keyboards, timestamps), refreshing itself every few seconds, with a form to
/// write to the bot as the chat's user (`/start`: `TelegramUpdates`); `GET
/// /sim/telegram/files/<id>` serves a stored photo. A button opening a page of the Mini App
/// (`PUBLIC_BASE_URL`) links through `/sim/telegram/open` as the chat's user, in the user's
/// Telegram language, as a Telegram client opens it signed in; other buttons link to their
/// address. `POST /sim/telegram/chats/<chatId>/language` (`lang`) sets that language.
struct TelegramInbox {
    let db: Connection
    /// `PUBLIC_BASE_URL`: buttons to pages under it open the Mini App through `/sim/telegram/open`.
    let miniApp: String?

    func handle(_ path: [String]) throws -> Response {
        switch (path.first, path.count) {
        case ("chats", 1): return try chats()
        case ("chats", 2):
            guard let chat = Int64(path[1]) else { return page("No such chat", "<p>Chat ids are numbers.</p>", status: 404) }
            return try chatPage(chat)
        case ("files", 2):
            guard let id = Int(path[1]), let photo = try TelegramStore.photo(db, id) else {
                return Response(status: 404, contentType: "text/plain; charset=utf-8", body: "Not Found")
            }
            return Response(status: 200, headers: [("Content-Type", photo.contentType), ("Cache-Control", "private, max-age=3600"),
                                                   ("X-Content-Type-Options", "nosniff")], body: photo.bytes)
        default:
            return page("Not found", "<p>No such page.</p>", status: 404)
        }
    }

    func chats() throws -> Response {
        let rows = try db.query("""
            SELECT chat_id, count(*)::int AS n, count(photo_id)::int AS photos,
                   to_char(max(at) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS last
            FROM sim.tg_messages GROUP BY chat_id ORDER BY max(at) DESC
            """, retry: .idempotent)
        let open = TelegramOpen.link(user: 100001, path: "/", languageCode: try TelegramStore.language(db, chatID: 100001))
        let list = "<p><a href=\"/sim/telegram/chats/100001\">Write to the bot as test user 100001</a> · "
            + "<a href=\"\(TelegramHTML.escape(open))\">open the Mini App as that user</a></p>" + (rows.isEmpty
            ? "<p>No messages yet. Point TELEGRAM_API_URL at this simulator and run <code>pinglass deliver</code>.</p>"
            : "<table><tr><th>Chat</th><th>Messages</th><th>Photos</th><th>Last (UTC)</th></tr>" + rows.map { r in
                let id = r.requiredString("chat_id")
                return "<tr><td><a href=\"/sim/telegram/chats/\(id)\">\(id)</a></td><td>\(r.requiredInt("n"))</td>"
                    + "<td>\(r.requiredInt("photos"))</td><td>\(r.requiredString("last"))</td></tr>"
            }.joined() + "</table>")
        return page("Simulated Telegram: chats", "<h1>Simulated Telegram</h1>" + list, refresh: true)
    }

    func chatPage(_ chat: Int64) throws -> Response {
        let messages = try TelegramStore.messages(db, chatID: chat)
        let language = try TelegramStore.language(db, chatID: chat)
        var html = "<p><a href=\"/sim/telegram/chats\">← all chats</a></p><h1>Chat \(chat)</h1>"
        if messages.isEmpty { html += "<p>Nothing received yet.</p>" }
        var i = 0
        while i < messages.count {
            // An album: the consecutive messages sharing a media_group_id.
            var group = [messages[i]]
            if let id = messages[i].mediaGroupID {
                while i + group.count < messages.count, messages[i + group.count].mediaGroupID == id { group.append(messages[i + group.count]) }
            }
            html += bubble(group, chat: chat, languageCode: language)
            i += group.count
        }
        if chat > 0 {
            // The user's language goes with what they send (the update's `from.language_code`);
            // the second form changes it without writing to the bot.
            let options = ["en", "ru"].map { "<option\(TelegramOpen.lang(language) == $0 ? " selected" : "")>\($0)</option>" }.joined()
            html += "<form class=\"send\" method=\"post\" action=\"/sim/telegram/chats/\(chat)/send\">"
                + "<input name=\"text\" value=\"/start\" aria-label=\"message\"><select name=\"lang\" aria-label=\"language\">"
                + options + "</select><button>Send as the user</button></form>"
                + "<form class=\"send\" method=\"post\" action=\"/sim/telegram/chats/\(chat)/language\">"
                + "<span>The user's Telegram language (buttons open the Mini App in it): <b class=\"lang\">"
                + TelegramHTML.escape(language ?? "not known: en") + "</b></span><select name=\"lang\" aria-label=\"user's language\">"
                + options + "</select><button>Set</button></form>"
        }
        return page("Simulated Telegram: chat \(chat)", html, refresh: true)
    }

    func bubble(_ group: [TelegramStore.Message], chat: Int64, languageCode: String?) -> String {
        let first = group[0]
        let ids = group.count == 1 ? "#\(first.messageID)" : "#\(first.messageID)–\(group.last!.messageID) (album of \(group.count))"
        var html = "<div class=\"msg\(first.fromUser ? " user" : "")\" id=\"m\(first.messageID)\"><div class=\"meta\">\(ids) · \(TelegramHTML.escape(first.atText))</div>"
        let photos = group.compactMap(\.photoID)
        if !photos.isEmpty {
            html += "<div class=\"photos n\(min(photos.count, 3))\">" + photos.map { id in
                "<a href=\"/sim/telegram/files/\(id)\" target=\"_blank\"><img src=\"/sim/telegram/files/\(id)\" alt=\"photo \(id)\" loading=\"lazy\"></a>"
            }.joined() + "</div>"
        }
        for m in group {
            guard let text = m.text, !text.isEmpty else { continue }
            let formatted = (try? TelegramSim.format(text, parseMode: m.parseMode)) ?? TelegramHTML(plain: text)
            html += "<div class=\"text\">\(formatted.safeHTML)</div>"
        }
        for row in group.compactMap({ InlineButton.rows($0.replyMarkup) }).joined() {
            html += "<div class=\"keys\">" + row.map { button(ButtonLink($0, miniApp: miniApp, chat: chat, languageCode: languageCode)) }.joined() + "</div>"
        }
        return html + "</div>"
    }

    func button(_ b: ButtonLink) -> String {
        "<a class=\"key\" href=\"\(TelegramHTML.escape(b.href))\"\(b.opensMiniApp ? "" : " rel=\"noopener noreferrer\" target=\"_blank\"")>"
            + TelegramHTML.escape(b.text) + (b.webApp ? " ⧉" : "") + "</a>"
    }

    func page(_ title: String, _ body: String, status: Int = 200, refresh: Bool = false) -> Response {
        let doc = """
            <!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
            \(refresh ? "<meta http-equiv=\"refresh\" content=\"3\">" : "")<title>\(TelegramHTML.escape(title))</title>
            <style>body{font:15px system-ui;max-width:40rem;margin:1.5rem auto;padding:0 1rem;background:#dfe7ee}
            h1{font-size:1.3rem}table{border-collapse:collapse;background:#fff}td,th{padding:.3rem .7rem;border:1px solid #ccd}
            .msg{background:#fff;border-radius:.8rem;padding:.5rem .6rem;margin:.7rem 0;box-shadow:0 1px 1px #0002}
            .meta{color:#789;font-size:.8rem;margin-bottom:.3rem}.text{white-space:pre-wrap;margin-top:.3rem}
            .photos{display:grid;gap:3px}.photos.n2{grid-template-columns:1fr 1fr}.photos.n3{grid-template-columns:1fr 1fr 1fr}
            .photos img{width:100%;display:block;border-radius:.3rem;background:#eee}.link{color:#27a;text-decoration:underline}
            .msg.user{background:#effdde;margin-left:4rem}.keys{display:flex;gap:4px;margin-top:.4rem}
            .key{flex:1;text-align:center;padding:.5rem;border-radius:.5rem;background:#5288c1;color:#fff;text-decoration:none}
            form.send{display:flex;gap:.4rem;margin:1rem 0}form.send input{flex:1;padding:.4rem}</style>
            </head><body>\(body)</body></html>
            """
        return Response(status: status, headers: [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")],
                        body: Array(doc.utf8))
    }
}

/// Where an inline keyboard button leads on the chat page: a page of the Mini App through
/// the simulator's open link (signed in as the chat's user, in the user's language), anything
/// else to its address.
struct ButtonLink: Equatable {
    let text: String
    let href: String
    let webApp: Bool
    let opensMiniApp: Bool

    init(_ button: InlineButton, miniApp: String?, chat: Int64, languageCode: String?) {
        text = button.text
        if case .webApp = button.action { webApp = true } else { webApp = false }
        let url = button.url
        if let base = miniApp, chat > 0, url == base || url.hasPrefix(base + "/") || url.hasPrefix(base + "?") {
            let rest = String(url.dropFirst(base.count))
            href = TelegramOpen.link(user: chat, path: rest.hasPrefix("/") ? rest : "/" + rest, languageCode: languageCode)
            opensMiniApp = true
        } else {
            href = url
            opensMiniApp = false
        }
    }
}

import HTTPCore
import Postgres

/// Pages for people watching a demo: what each simulated chat received, as a user would see
/// it. `GET /sim/telegram/chats` lists the chats; `GET /sim/telegram/chats/<chatId>` shows
/// one chat's messages in order (an album's photos side by side, captions, texts with their
/// links, timestamps), refreshing itself every few seconds; `GET /sim/telegram/files/<id>`
/// serves a stored photo.
struct TelegramInbox {
    let db: Connection

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
        let list = rows.isEmpty ? "<p>No messages yet. Point TELEGRAM_API_URL at this simulator and run <code>pinglass deliver</code>.</p>"
            : "<table><tr><th>Chat</th><th>Messages</th><th>Photos</th><th>Last (UTC)</th></tr>" + rows.map { r in
                let id = r.requiredString("chat_id")
                return "<tr><td><a href=\"/sim/telegram/chats/\(id)\">\(id)</a></td><td>\(r.requiredInt("n"))</td>"
                    + "<td>\(r.requiredInt("photos"))</td><td>\(r.requiredString("last"))</td></tr>"
            }.joined() + "</table>"
        return page("Simulated Telegram: chats", "<h1>Simulated Telegram</h1>" + list, refresh: true)
    }

    func chatPage(_ chat: Int64) throws -> Response {
        let messages = try TelegramStore.messages(db, chatID: chat)
        var html = "<p><a href=\"/sim/telegram/chats\">← all chats</a></p><h1>Chat \(chat)</h1>"
        if messages.isEmpty { html += "<p>Nothing received yet.</p>" }
        var i = 0
        while i < messages.count {
            // An album: the consecutive messages sharing a media_group_id.
            var group = [messages[i]]
            if let id = messages[i].mediaGroupID {
                while i + group.count < messages.count, messages[i + group.count].mediaGroupID == id { group.append(messages[i + group.count]) }
            }
            html += bubble(group)
            i += group.count
        }
        return page("Simulated Telegram: chat \(chat)", html, refresh: true)
    }

    func bubble(_ group: [TelegramStore.Message]) -> String {
        let first = group[0]
        let ids = group.count == 1 ? "#\(first.messageID)" : "#\(first.messageID)–\(group.last!.messageID) (album of \(group.count))"
        var html = "<div class=\"msg\" id=\"m\(first.messageID)\"><div class=\"meta\">\(ids) · \(TelegramHTML.escape(first.atText))</div>"
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
        return html + "</div>"
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
            .photos img{width:100%;display:block;border-radius:.3rem;background:#eee}.link{color:#27a;text-decoration:underline}</style>
            </head><body>\(body)</body></html>
            """
        return Response(status: status, headers: [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")],
                        body: Array(doc.utf8))
    }
}

import FastCGI
import HTTPCore
import HTTPClient
import Postgres
import JSON
import PinGlassConfig

/// Posts notification bodies for the simulated bank.
struct HTTPClientAdapter {
    let client = HTTPClient()
    func post(_ url: String, body: String) -> (Int, String) {
        guard let r = try? client.send(.json("POST", url, body: Array(body.utf8), timeout: 10)) else { return (0, "") }
        return (r.status, r.text)
    }
}

/// The simulator's HTTP surface: the bank API, the hosted payment page, Kie's API, the Bot
/// API with its inbox pages, and a control API the tests (and curious people) use.
final class SimApp {
    let database: Database
    let terminals: [TBankTerminal]
    let publicURL: String
    let kie: KieSimOptions
    /// `TELEGRAM_BOT_TOKEN`: the one token the simulated Bot API accepts (nil: any).
    let telegramToken: String?
    /// `PUBLIC_BASE_URL`: the Mini App (`/sim/telegram/open` sends the browser there).
    let publicBaseURL: String?
    let http = HTTPClientAdapter()
    /// Fetches photo URLs for the simulated Telegram.
    let fetcher = HTTPClient()

    init(database: Database, terminals: [TBankTerminal], publicURL: String, kie: KieSimOptions? = nil, telegramToken: String? = nil,
         publicBaseURL: String? = nil) {
        self.database = database
        self.terminals = terminals
        self.publicURL = publicURL
        self.kie = kie ?? KieSimOptions(apiKey: nil, resultsURL: publicURL + "/kie", webhookHmacKey: nil)
        self.telegramToken = telegramToken
        self.publicBaseURL = publicBaseURL
    }

    func handle(_ request: Request) -> Response {
        defer { database.finishRequest() }
        do {
            let db = try database.connection()
            let bank = Bank(db: db, terminals: terminals, publicURL: publicURL, http: http)
            let parts = request.path.split(separator: "/").map(String.init)
            switch (request.method, parts.first, parts.count) {
            case ("POST", "v2", 2):
                return try bank.handle(method: parts[1], body: request.body)
            case ("GET", "pay", 2):
                guard let id = Int(parts[1]), let p = try BankStore.payment(db, id) else { return page("Payment not found", status: 404) }
                return try payPage(p, db: db, lang: AcceptLanguage.pick(request.header("Accept-Language"), from: ["en", "ru"], fallback: "en"))
            case ("POST", "pay", 2):
                guard let id = Int(parts[1]), let p = try BankStore.payment(db, id) else { return page("Payment not found", status: 404) }
                let form = Request(method: "GET", path: "/", queryString: String(decoding: request.body, as: UTF8.self)).query
                let target = try bank.customer(p, action: form["action"] ?? "")
                _ = try bank.deliverDue(force: false)
                if let target { return Response(status: 303, headers: [("Location", target)], body: []) }
                return page("This payment is no longer open (\(p.status)).", status: 409)
            case (_, "kie", _):
                return try KieSim(db: db, options: kie).handle(request, Array(parts.dropFirst()))
            case (_, "api", _):                   // Kie's paths at the root, as on api.kie.ai
                return try KieSim(db: db, options: kie).handle(request, parts)
            case (_, "telegram", _):
                return try TelegramSim(db: db, http: fetcher, botToken: telegramToken).handle(request, Array(parts.dropFirst()))
            case (_, let first?, 2) where first.hasPrefix("bot"):   // the Bot API's paths at the root, as on api.telegram.org
                return try TelegramSim(db: db, http: fetcher, botToken: telegramToken).handle(request, parts)
            case ("GET", nil, _):
                return homePage()
            case ("GET", "favicon.ico", 1):       // browsers ask every site; no icon, and no error either
                return Response(status: 204, headers: [("Cache-Control", "public, max-age=86400")], body: [])
            case ("GET", "sim", 2) where parts[1] == "bank":
                return try bankPage(db)
            case (_, "sim", _):
                return try control(request, parts, db, bank)
            default:
                return .json(["error": "no such simulator endpoint"], status: 404)
            }
        } catch {
            writeLog("simulator error: \(error)")
            return .json(["error": .string("\(error)")], status: 500)
        }
    }

    func control(_ request: Request, _ parts: [String], _ db: Connection, _ bank: Bank) throws -> Response {
        let body = (try? JSON.parse(request.body)) ?? [:]
        switch (request.method, parts.dropFirst().joined(separator: "/")) {
        case (_, let path) where path.hasPrefix("control/kie/"):
            return try KieControl(db: db).handle(request, String(path.dropFirst("control/kie/".count)), body)
        case (_, let path) where path.hasPrefix("control/telegram/"):
            return try TelegramControl(db: db, http: fetcher, botToken: telegramToken)
                .handle(request, String(path.dropFirst("control/telegram/".count)), body)
        case ("GET", "telegram/open"):
            return TelegramOpen.handle(request.query, botToken: telegramToken, publicBaseURL: publicBaseURL)
        case ("GET", let path) where path.hasPrefix("telegram/"):
            return try TelegramInbox(db: db, miniApp: publicBaseURL).handle(Array(parts.dropFirst(2)))
        case ("POST", let path) where path.hasPrefix("telegram/chats/") && path.hasSuffix("/send"):
            // The chat page's form: the user writes to the bot, then the page again.
            guard parts.count == 5, let chat = Int64(parts[3]) else { return .json(["error": "no such chat"], status: 404) }
            let form = Request(method: "GET", path: "/", queryString: String(decoding: request.body, as: UTF8.self)).query
            do {
                _ = try TelegramUpdates(db: db, http: fetcher, botToken: telegramToken)
                    .send(chat: chat, text: form["text"] ?? "/start", lang: form["lang"] ?? "en")
            } catch let refusal as TelegramUpdates.Refusal {
                return page("<p>\(escape(refusal.description))</p><p><a href=\"/sim/telegram/chats/\(chat)\">back to the chat</a></p>", status: 409)
            }
            return Response(status: 303, headers: [("Location", "/sim/telegram/chats/\(chat)")], body: [])
        case ("POST", let path) where path.hasPrefix("telegram/chats/") && path.hasSuffix("/language"):
            // The chat page's language form: the user's Telegram language, without writing to the bot.
            guard parts.count == 5, let chat = Int64(parts[3]), chat > 0 else { return .json(["error": "no such chat"], status: 404) }
            let form = Request(method: "GET", path: "/", queryString: String(decoding: request.body, as: UTF8.self)).query
            guard let lang = form["lang"], ["en", "ru"].contains(lang) else { return .json(["error": "lang is en or ru"], status: 400) }
            try TelegramStore.setLanguage(db, chatID: chat, lang)
            return Response(status: 303, headers: [("Location", "/sim/telegram/chats/\(chat)")], body: [])
        case ("POST", "control/reset"):
            try db.execute("DELETE FROM sim.switches", retry: .idempotent)
            return .json(["ok": true])
        case ("POST", "control/switches"):
            for (k, v) in body.objectValue ?? [] {
                if v.isNull { try db.execute("DELETE FROM sim.switches WHERE name = $1", [k], retry: .idempotent); continue }
                try db.execute("INSERT INTO sim.switches VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = $2",
                               [k, v.scalarText ?? v.serialized], retry: .idempotent)
            }
            return .json(["ok": true])
        case ("POST", "control/customer"):
            guard let id = body["paymentId"]?.scalarText.flatMap({ Int($0) }), let p = try BankStore.payment(db, id) else {
                return .json(["error": "unknown paymentId"], status: 404)
            }
            let target = try bank.customer(p, action: body["action"]?.stringValue ?? "pay")
            let (delivered, failed) = try bank.deliverDue(force: false)
            return .json(["redirect": target.map { .string($0) } ?? .null, "delivered": .int(delivered), "failed": .int(failed)])
        case ("POST", "control/deliver"):
            let (delivered, failed) = try bank.deliverDue(force: body["force"]?.boolValue ?? true)
            return .json(["delivered": .int(delivered), "failed": .int(failed)])
        case ("POST", "control/notify"):
            // Queue any notification for a payment (replays, out-of-order, unused kinds), then deliver it.
            guard let id = body["paymentId"]?.scalarText.flatMap({ Int($0) }), let p = try BankStore.payment(db, id) else {
                return .json(["error": "unknown paymentId"], status: 404)
            }
            let extra = (body["extra"]?.objectValue ?? [])
            try db.withTransaction { tx in
                if body["badToken"]?.boolValue == true {
                    try tx.execute("INSERT INTO sim.switches VALUES ('notify_bad_token', 'true') ON CONFLICT (name) DO UPDATE SET value = 'true'")
                }
                try bank.queueNotification(tx, p, status: body["status"]?.stringValue ?? p.status,
                                           success: body["success"]?.boolValue ?? true,
                                           amount: body["amount"]?.intValue ?? p.amount, extra: extra)
                if body["badToken"]?.boolValue == true { try tx.execute("DELETE FROM sim.switches WHERE name = 'notify_bad_token'") }
            }
            let (delivered, failed) = try bank.deliverDue(force: true)
            return .json(["delivered": .int(delivered), "failed": .int(failed)])
        case ("GET", "control/notifications"):
            let rows = try db.query("""
                SELECT id, payment_id, attempts, delivered_at IS NOT NULL AS delivered, last_status, last_body, body
                FROM sim.notifications WHERE payment_id = $1 OR $1 IS NULL ORDER BY id
                """, [request.query["payment_id"].flatMap { Int($0) }], retry: .idempotent)
            return .json(["notifications": .array(rows.map { r in
                ["id": .int(r.requiredInt("id")), "attempts": .int(r.requiredInt("attempts")),
                 "delivered": .bool(r.bool("delivered") ?? false), "lastStatus": r.int("last_status").map { .int($0) } ?? .null,
                 "lastBody": r.string("last_body").map { .string($0) } ?? .null,
                 "body": (try? JSON.parse(r.requiredString("body"))) ?? .null]
            })])
        case ("GET", "control/requests"):
            let rows = try db.query("SELECT method, body FROM sim.requests WHERE method = $1 ORDER BY id", [request.query["method"] ?? ""], retry: .idempotent)
            return .json(["requests": .array(rows.map { (try? JSON.parse($0.requiredString("body"))) ?? .null })])
        case ("GET", let path) where path.hasPrefix("control/payments/"):
            guard let id = Int(path.dropFirst("control/payments/".count)), let p = try BankStore.payment(db, id) else {
                return .json(["error": "unknown payment"], status: 404)
            }
            let refunds = try BankStore.refunds(db, paymentID: p.id)
            return .json(["paymentId": .int(p.id), "status": .string(p.status), "route": .string(p.route), "amount": .int(p.amount),
                          "charged": .int(p.charged), "orderId": .string(p.orderID),
                          "refunded": .int(refunds.map { $0.requiredInt("amount") }.reduce(0, +)),
                          "cancels": .array(refunds.map { r in
                              ["externalRequestId": r.string("external_request_id").map { .string($0) } ?? .null,
                               "amount": .int(r.requiredInt("amount")), "status": .string(r.requiredString("status")),
                               "originalAmount": .int(r.requiredInt("original_amount")), "newAmount": .int(r.requiredInt("new_amount"))]
                          })])
        default:
            return .json(["error": "no such control endpoint"], status: 404)
        }
    }

    func homePage() -> Response {
        page("""
            <h1>PinGlass simulator</h1><p>T-Bank, Kie.ai and Telegram for local runs and tests. Never used in production.</p>
            <ul><li><a href="/sim/telegram/chats">Telegram: what each chat received</a> (photos, albums, texts)</li>
            <li>T-Bank: <code>/v2/Init</code>, <code>GetState</code>, <code>Confirm</code>, <code>Cancel</code>; payment pages at <code>/pay/&lt;id&gt;</code>;
            <a href="/sim/bank">every payment and what the bank refunded</a></li>
            <li>Kie.ai: <code>/kie/api/v1/jobs/createTask</code>, <code>recordInfo</code>; results at <code>/kie/results/&lt;task&gt;.png</code></li>
            <li>Telegram Bot API: <code>/telegram/bot&lt;token&gt;/sendPhoto</code>, <code>sendMediaGroup</code>, <code>sendMessage</code>, <code>getMe</code>, <code>setWebhook</code>, <code>getWebhookInfo</code>, <code>deleteWebhook</code>, <code>setChatMenuButton</code>, <code>getChatMenuButton</code> (also at <code>/bot&lt;token&gt;/…</code>)</li>
            <li>Telegram Mini App: <a href="/sim/telegram/open?user=100001">open it as test user 100001</a> (<code>/sim/telegram/open?user=&lt;id&gt;&amp;lang=ru|en&amp;theme=light|dark&amp;path=/</code>)</li>
            <li>Control API for tests: <code>/sim/control/*</code>, <code>/sim/control/kie/*</code>, <code>/sim/control/telegram/*</code> (<a href="/sim/control/telegram/settings">Telegram settings</a>, <a href="/sim/control/kie/settings">Kie settings</a>)</li></ul>
            """)
    }

    /// The payment page's words, in the language the browser's `Accept-Language` prefers.
    static let payWords: [String: [String: String]] = [
        "en": ["title": "T-Bank (simulated)", "pay": "Pay", "sbp": "Pay by SBP", "decline": "Decline (card refused)",
               "3ds": "Fail 3-D Secure", "order": "Order", "payment": "payment", "bySBP": "paid by SBP", "status": "Status"],
        "ru": ["title": "Т-Банк (симулятор)", "pay": "Оплатить", "sbp": "Оплатить через СБП", "decline": "Отказ (карта отклонена)",
               "3ds": "Ошибка 3-D Secure", "order": "Заказ", "payment": "платёж", "bySBP": "оплачен через СБП", "status": "Статус"],
    ]

    func payPage(_ p: BankStore.Payment, db: Connection, lang: String = "en") throws -> Response {
        let w = Self.payWords[lang] ?? Self.payWords["en"]!
        let open = ["NEW", "FORM_SHOWED"].contains(p.status)
        let amount = roubles(p.amount)
        let buttons = open ? """
            <form method="post"><button name="action" value="pay" class="pay">\(w["pay"]!) \(amount)</button>
            <button name="action" value="pay-sbp">\(w["sbp"]!)</button>
            <button name="action" value="decline">\(w["decline"]!)</button>
            <button name="action" value="3ds-fail">\(w["3ds"]!)</button></form>
            """ : "<p>\(w["status"]!): <b>\(escape(p.status))</b></p>"
        return page("""
            <h1>\(w["title"]!)</h1><p>\(escape(p.description))</p><p class="amount">\(amount)</p>
            <p>\(w["order"]!) \(escape(p.orderID)) · \(w["payment"]!) \(p.id)\(p.isSBP ? " · " + w["bySBP"]! : "")</p>\(buttons)\(try refundsHTML(p, db))
            """, negotiated: lang)
    }

    /// What the bank gave back for a payment: the total and each Cancel with its
    /// ExternalRequestId (what a person checks after a refund).
    func refundsHTML(_ p: BankStore.Payment, _ db: Connection) throws -> String {
        let refunds = try BankStore.refunds(db, paymentID: p.id)
        guard !refunds.isEmpty else { return "" }
        let total = roubles(refunds.map { $0.requiredInt("amount") }.reduce(0, +))
        let rows = refunds.map { r in
            "<tr><td>\(escape(r.string("at") ?? ""))</td><td>\(roubles(r.requiredInt("amount")))</td>"
                + "<td>\(escape(r.requiredString("status")))</td><td>\(roubles(r.requiredInt("new_amount")))</td>"
                + "<td><code>\(escape(r.string("external_request_id") ?? "—"))</code></td></tr>"
        }.joined()
        return """
            <h2>Refunded \(total)</h2><p class="charged">Still charged: \(roubles(p.charged))</p>
            <table><tr><th>When (UTC)</th><th>Amount</th><th>Status</th><th>Left</th><th>ExternalRequestId</th></tr>\(rows)</table>
            """
    }

    /// The simulated bank's latest payments, with what each has given back.
    func bankPage(_ db: Connection) throws -> Response {
        let rows = try db.query("""
            SELECT p.payment_id, p.order_id, p.amount, p.charged, p.status,
                   (SELECT coalesce(sum(r.amount), 0) FROM sim.refunds r WHERE r.payment_id = p.payment_id)::int AS refunded
            FROM sim.payments p ORDER BY p.created_at DESC, p.payment_id DESC LIMIT 100
            """, retry: .idempotent).map { r in
            "<tr><td><a href=\"/pay/\(r.requiredInt("payment_id"))\">\(r.requiredInt("payment_id"))</a></td>"
                + "<td>\(escape(r.requiredString("order_id")))</td><td>\(roubles(r.requiredInt("amount")))</td>"
                + "<td>\(escape(r.requiredString("status")))</td><td>\(roubles(r.requiredInt("refunded")))</td></tr>"
        }.joined()
        return page("""
            <h1>T-Bank (simulated): payments</h1>
            <table><tr><th>Payment</th><th>Order</th><th>Amount</th><th>Status</th><th>Refunded</th></tr>\(rows)</table>
            """)
    }

    /// A page; `negotiated`: the language `Accept-Language` chose (said in the headers).
    func page(_ html: String, status: Int = 200, negotiated: String? = nil) -> Response {
        let doc = """
            <!doctype html><html lang="\(negotiated ?? "en")"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
            <title>PinGlass simulator</title><style>body{font:16px system-ui;max-width:32rem;margin:2rem auto;padding:0 1rem}
            button{display:block;width:100%;margin:.5rem 0;padding:.8rem;font-size:1rem;border-radius:.5rem;border:1px solid #888;background:#fff}
            button.pay{background:#ffdd2d;border-color:#e5c100}.amount{font-size:2rem}
            table{border-collapse:collapse;font-size:.85rem}td,th{border-bottom:1px solid #ddd;padding:.3rem;text-align:left}</style></head><body>\(html)</body></html>
            """
        var headers = [("Content-Type", "text/html; charset=utf-8")]
        if let negotiated { headers += [("Content-Language", negotiated), ("Vary", "Accept-Language")] }
        return Response(status: status, headers: headers, body: Array(doc.utf8))
    }

    /// An amount as the payment page shows it: `192.00 RUB`.
    func roubles(_ kopecks: Int) -> String {
        "\(kopecks / 100).\(kopecks % 100 < 10 ? "0" : "")\(kopecks % 100) RUB"
    }

    func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}

extension String {
    func replacingOccurrences(of a: String, with b: String) -> String {
        split(separator: a, omittingEmptySubsequences: false).joined(separator: b)
    }
}

import XCTest
import Foundation
import HTTPClient
import PinGlassTesting
import JSON
import Platform
import ProviderWire
import WebURL
@testable import PinGlass
import Providers

/// The bot end to end (docs/http-api.md#telegram-webhook): the webhook through the local
/// nginx and a real pool, `pinglass telegram setup` against the simulated Telegram, a
/// simulated user's `/start` answered with the Mini App button, and the simulator's
/// `/sim/telegram/open` handing the Mini App init data the API accepts.
final class TelegramBotTests: DatabaseTestCase {
    var stack: Stack!
    let http = HTTPClient()
    let secret = "bot-tests_webhook-secret-0123"

    override func tearDown() {
        stack?.stop()
        super.tearDown()
    }

    func startStack(secret: String?) throws {
        let simPort = Subprocess.freePort()
        var env = Fixtures.env(simURL: "http://127.0.0.1:\(simPort)")
        if let secret { env["TELEGRAM_WEBHOOK_SECRET"] = secret }
        stack = try Stack(database: db, workers: 1, env: env, withSimulator: true, simPort: simPort)
    }

    func post(_ body: String, header: String? = nil) throws -> HTTPResponse {
        var headers = [("Content-Type", "application/json")]
        if let header { headers.append(("X-Telegram-Bot-Api-Secret-Token", header)) }
        return try http.send(HTTPRequest(method: "POST", url: stack.baseURL + "/api/telegram/webhook", headers: headers, body: Array(body.utf8)))
    }

    func start(from user: Int64, lang: String, text: String = "/start") -> String {
        #"{"update_id":1,"message":{"message_id":1,"date":1700000000,"text":"\#(text)","#
            + #""from":{"id":\#(user),"is_bot":false,"first_name":"Ann","username":"ann","language_code":"\#(lang)"},"#
            + #""chat":{"id":\#(user),"first_name":"Ann","type":"private"}}}"#
    }

    func cli(_ args: [String], env: [String: String] = [:]) throws -> (Int32, String, String) {
        try Subprocess.capture(TestEnvironment.binDir() + "/pinglass", args, environment: stack.environment.merging(env) { $1 })
    }

    /// Without TELEGRAM_WEBHOOK_SECRET the path does not exist; with it, a missing or wrong
    /// header is 401, a body that is not JSON 400, nginx refuses a large body itself, and
    /// `/start` is answered with the method (a `url` button on this http base), its sender
    /// stored; other updates get `{}`.
    func testTheWebhookThroughNginx() throws {
        try startStack(secret: nil)
        XCTAssertEqual(try post(start(from: 42, lang: "en"), header: secret).status, 404)
        stack.stopPool()
        stack.environment["TELEGRAM_WEBHOOK_SECRET"] = secret
        try stack.startPool()

        XCTAssertEqual(try post(start(from: 42, lang: "en")).status, 401)
        XCTAssertEqual(try post(start(from: 42, lang: "en"), header: secret + "x").status, 401)
        XCTAssertEqual(try post(start(from: 42, lang: "en"), header: String(secret.dropLast())).status, 401)
        XCTAssertEqual(try post("{not json", header: secret).status, 400)
        let big = #"{"update_id":1,"pad":""# + String(repeating: "x", count: 100_000) + #""}"#
        XCTAssertEqual(try post(big, header: secret).status, 413, "nginx's body limit for the webhook")
        XCTAssertEqual(try db.connect().query("SELECT count(*)::int AS n FROM users")[0].requiredInt("n"), 0, "nothing refused wrote")

        let answer = try post(start(from: 42, lang: "ru", text: "/start promo"), header: secret)
        XCTAssertEqual(answer.status, 200, answer.text)
        let method = try JSON.parse(answer.body)
        XCTAssertEqual(method["method"], "sendMessage")
        XCTAssertEqual(method["chat_id"]?.intValue, 42)
        XCTAssertTrue(method["text"]?.stringValue?.hasPrefix("Привет!") == true, answer.text)
        XCTAssertEqual(InlineButton.rows(method["reply_markup"]), [[InlineButton(text: "Открыть PinGlass", action: .url(stack.baseURL + "/"))]])
        let user = try db.connect().query("SELECT first_name, username, language_code FROM users WHERE telegram_user_id = 42")
        XCTAssertEqual(user.first?.string("language_code"), "ru")
        XCTAssertEqual(user.first?.string("username"), "ann")

        for other in [#"{"update_id":2,"message":{"message_id":2,"date":1,"text":"hello","chat":{"id":42,"type":"private"}}}"#,
                      #"{"update_id":3,"message":{"message_id":3,"date":1,"text":"/start","chat":{"id":-5,"type":"group"}}}"#,
                      #"{"update_id":4,"edited_message":{"text":"/start"}}"#] {
            let r = try post(other, header: secret)
            XCTAssertEqual(r.status, 200, other)
            XCTAssertEqual(r.text, "{}", other)
        }
    }

    /// `pinglass telegram setup` against the simulator: it refuses without the secret; the
    /// first run sets the webhook (the menu button stays Telegram's default on http), the
    /// second changes nothing; the simulated user's `/start` then reaches the API through
    /// nginx with the secret and the answer's message lands in the chat with its button. On an
    /// https base it sets the menu button to the Mini App, once.
    func testSetupIsIdempotentAndStartIsAnsweredInTheChat() throws {
        try startStack(secret: secret)
        let telegram = TelegramSimulator(simURL: stack.simURL)
        let (refusedStatus, _, refusal) = try cli(["telegram", "setup"], env: ["TELEGRAM_WEBHOOK_SECRET": ""])
        XCTAssertEqual(refusedStatus, 78, refusal)
        XCTAssertTrue(refusal.contains("TELEGRAM_WEBHOOK_SECRET is not set"), refusal)

        let (first, out1, err1) = try cli(["telegram", "setup"])
        XCTAssertEqual(first, 0, out1 + err1)
        XCTAssertTrue(out1.contains("webhook      set: \(stack.baseURL)/api/telegram/webhook"), out1)
        XCTAssertTrue(out1.contains("menu button  unchanged: Telegram's default"), out1)
        XCTAssertTrue(out1.contains("Changed 1 setting."), out1)
        let (second, out2, err2) = try cli(["telegram", "setup"])
        XCTAssertEqual(second, 0, out2 + err2)
        XCTAssertTrue(out2.contains("webhook      unchanged"), out2)
        XCTAssertTrue(out2.contains("Nothing to change."), out2)
        XCTAssertEqual(try telegram.calls(method: "setWebhook").count, 1, "the second run set nothing")
        let bot = try telegram.bot()
        XCTAssertEqual(bot["webhook"]?["url"]?.stringValue, stack.baseURL + "/api/telegram/webhook")
        XCTAssertEqual(bot["webhook"]?["secret_token"]?.stringValue, secret)
        XCTAssertEqual(bot["webhook"]?["allowed_updates"], ["message"])

        let sent = try telegram.send(chat: 100_001, lang: "en")
        XCTAssertEqual(sent["webhookStatus"]?.intValue, 200, "\(sent)")
        XCTAssertEqual(sent["method"], "sendMessage")
        let chat = try telegram.messages(chat: 100_001)
        XCTAssertEqual(chat.map { $0["from"]?.stringValue }, ["user", "bot"])
        XCTAssertEqual(chat.last?["replyMarkup"], InlineButton.markup([[.init(text: "Open PinGlass", action: .url(stack.baseURL + "/"))]]))
        let page = try http.send(HTTPRequest(url: telegram.inboxURL(chat: 100_001))).text
        XCTAssertTrue(page.contains("href=\"/sim/telegram/open?user=100001&amp;path=%2F&amp;lang=en\""), page)

        // A new secret for the workers: Telegram's next update gets 401, which getWebhookInfo
        // then shows with the update pending, so the next setup sends the secret again
        // without --force. A 401 that is only history (the workers' secret is back, the
        // next update was taken, nothing waits) changes nothing.
        func workers(secret value: String) throws {
            stack.stopPool()
            stack.environment["TELEGRAM_WEBHOOK_SECRET"] = value
            try stack.startPool()
        }
        try workers(secret: secret + "-rotated")
        XCTAssertEqual(try telegram.send(chat: 100_001)["webhookStatus"]?.intValue, 401)
        try workers(secret: secret)
        XCTAssertEqual(try telegram.send(chat: 100_001)["webhookStatus"]?.intValue, 200)
        let (stale, out5, err5) = try cli(["telegram", "setup"])
        XCTAssertEqual(stale, 0, out5 + err5)
        XCTAssertTrue(out5.contains("Nothing to change."), out5)
        try workers(secret: secret + "-rotated")
        XCTAssertEqual(try telegram.send(chat: 100_001)["webhookStatus"]?.intValue, 401)
        let (rotated, out4, err4) = try cli(["telegram", "setup"])
        XCTAssertEqual(rotated, 0, out4 + err4)
        XCTAssertTrue(out4.contains("webhook      set:") && out4.contains("401"), out4)
        XCTAssertEqual(try telegram.send(chat: 100_001)["webhookStatus"]?.intValue, 200)

        // The same install on https (a loopback https base: the simulator still runs beside it).
        let https = ["PUBLIC_BASE_URL": "https://127.0.0.1:\(stack.port)"]
        let (third, out3, err3) = try cli(["telegram", "setup"], env: https)
        XCTAssertEqual(third, 0, out3 + err3)
        XCTAssertTrue(out3.contains("menu button  set: \"PinGlass\" opening https://127.0.0.1:\(stack.port)/"), out3)
        XCTAssertTrue(out3.contains("Changed 2 settings."), out3)
        XCTAssertEqual(try telegram.bot()["menu_button"],
                       TelegramMenuButton.webApp(text: "PinGlass", url: "https://127.0.0.1:\(stack.port)/").json)
        XCTAssertTrue(try cli(["telegram", "setup"], env: https).1.contains("Nothing to change."))
    }

    /// The chat page opens the Mini App in the chat's user's language: the one their `/start`
    /// carried (`from.language_code`), or the one set on the page or through the control API;
    /// English while unknown. The link signs init data in that language.
    func testTheChatPageOpensTheMiniAppInTheUsersLanguage() throws {
        try startStack(secret: secret)
        let (status, out, err) = try cli(["telegram", "setup"])
        XCTAssertEqual(status, 0, out + err)
        let telegram = TelegramSimulator(simURL: stack.simURL)
        func links(_ chat: Int64) throws -> [String] {
            let page = try http.send(HTTPRequest(url: telegram.inboxURL(chat: chat))).text
            return page.components(separatedBy: "href=\"").dropFirst().map { String($0.prefix { $0 != "\"" }) }
                .filter { $0.hasPrefix("/sim/telegram/open?") }
        }
        func control(_ languages: JSON) throws -> JSON {
            let r = try http.send(.json("POST", stack.simURL + "/sim/control/telegram/languages", body: languages.bytes))
            XCTAssertEqual(r.status, 200, r.text)
            return try JSON.parse(r.body)
        }

        XCTAssertEqual(try telegram.send(chat: 100_004, lang: "ru")["webhookStatus"]?.intValue, 200)
        XCTAssertEqual(try links(100_004), ["/sim/telegram/open?user=100004&amp;path=%2F&amp;lang=ru"])
        let opened = try http.send(HTTPRequest(url: stack.simURL + links(100_004)[0].replacingOccurrences(of: "&amp;", with: "&")))
        XCTAssertEqual(opened.status, 302, opened.text)
        let fragment = try XCTUnwrap(opened.header("location")?.split(separator: "#", maxSplits: 1).last)
        let data = try XCTUnwrap(fragment.split(separator: "&").first { $0.hasPrefix("tgWebAppData=") })
        let initData = try XCTUnwrap(percentDecode(String(data.dropFirst("tgWebAppData=".count)), plusAsSpace: false))
        XCTAssertEqual(try TelegramInitData.validate(initData, botToken: Fixtures.botToken, now: System.now(), maxAge: 60).languageCode, "ru")

        // Set without writing to the bot: through the control API (any language_code) …
        XCTAssertEqual(try control(["100004": "ru-RU"])["languages"]?["100004"], "ru-RU")
        XCTAssertEqual(try links(100_004), ["/sim/telegram/open?user=100004&amp;path=%2F&amp;lang=ru"])
        XCTAssertEqual(try control(["100004": "de"])["languages"]?["100004"], "de")
        XCTAssertEqual(try links(100_004), ["/sim/telegram/open?user=100004&amp;path=%2F&amp;lang=en"], "one the Mini App lacks: English")
        XCTAssertEqual(try control(["100004": .null])["languages"]?["100004"], nil)
        XCTAssertEqual(try links(100_004), ["/sim/telegram/open?user=100004&amp;path=%2F&amp;lang=en"], "unknown: English")
        // … and with the chat page's form, which then shows it chosen.
        let form = try http.send(HTTPRequest(method: "POST", url: telegram.inboxURL(chat: 100_004) + "/language",
                                             headers: [("Content-Type", "application/x-www-form-urlencoded")], body: Array("lang=ru".utf8)))
        XCTAssertEqual(form.status, 303, form.text)
        XCTAssertEqual(try links(100_004), ["/sim/telegram/open?user=100004&amp;path=%2F&amp;lang=ru"])
        XCTAssertTrue(try http.send(HTTPRequest(url: telegram.inboxURL(chat: 100_004))).text.contains("<option selected>ru</option>"))
        let bad = try http.send(HTTPRequest(method: "POST", url: telegram.inboxURL(chat: 100_004) + "/language",
                                            headers: [("Content-Type", "application/x-www-form-urlencoded")], body: Array("lang=xx".utf8)))
        XCTAssertEqual(bad.status, 400)
        XCTAssertEqual(try http.send(.json("POST", stack.simURL + "/sim/control/telegram/languages", body: Array(#"{"abc":"ru"}"#.utf8))).status, 400)

        // A chat the bot wrote to before its user ever did (a gallery button): English, until set.
        let button: JSON = ["inline_keyboard": [[["text": "Gallery", "url": .string(stack.baseURL + "/?job=7")]]]]
        let sent = try http.send(.json("POST", telegram.apiURL + "/bot\(Fixtures.botToken)/sendMessage",
                                       body: JSON.object([("chat_id", 100_006), ("text", "Done"), ("reply_markup", button)]).bytes))
        XCTAssertEqual(sent.status, 200, sent.text)
        XCTAssertEqual(try links(100_006), ["/sim/telegram/open?user=100006&amp;path=%2F%3Fjob%3D7&amp;lang=en"])
        _ = try control(["100006": "ru"])
        XCTAssertEqual(try links(100_006), ["/sim/telegram/open?user=100006&amp;path=%2F%3Fjob%3D7&amp;lang=ru"])
    }

    /// `/sim/telegram/open` redirects to the Mini App with init data that the domain's
    /// validator accepts for that test user (and so does the API), the theme as JSON, and
    /// refuses a path that would leave the Mini App.
    func testTheSimulatorOpensTheMiniAppAsATestUser() throws {
        try startStack(secret: nil)
        let r = try http.send(HTTPRequest(url: stack.simURL + "/sim/telegram/open?user=100002&lang=ru&theme=dark&path=%2F%3Fjob%3D5"))
        XCTAssertEqual(r.status, 302, r.text)
        let location = try XCTUnwrap(r.header("location"))
        XCTAssertTrue(location.hasPrefix(stack.baseURL + "/?job=5#"), location)
        var params: [String: String] = [:]
        for pair in location.split(separator: "#", maxSplits: 1)[1].split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1)
            params[String(kv[0])] = percentDecode(String(kv[1]), plusAsSpace: false)
        }
        XCTAssertEqual(params["tgWebAppVersion"], "8.0")
        XCTAssertEqual(params["tgWebAppPlatform"], "sandbox")
        let theme = try JSON.parse(Array(try XCTUnwrap(params["tgWebAppThemeParams"]).utf8))
        XCTAssertEqual(theme.objectValue?.map { $0.0 }.sorted(),
                       ["bg_color", "button_color", "button_text_color", "hint_color", "link_color", "secondary_bg_color", "text_color"])
        XCTAssertEqual(theme["bg_color"], "#17212b", "dark")
        let initData = try XCTUnwrap(params["tgWebAppData"])
        let user = try TelegramInitData.validate(initData, botToken: Fixtures.botToken, now: System.now(), maxAge: 60)
        XCTAssertEqual(user, TelegramUser(id: 100_002, username: nil, firstName: "Test 100002", lastName: nil, languageCode: "ru"))
        XCTAssertThrowsError(try TelegramInitData.validate(initData, botToken: "1:another-token", now: System.now(), maxAge: 60))
        let api = try http.send(HTTPRequest(url: stack.baseURL + "/api/avatars", headers: [("Authorization", "tma " + initData)]))
        XCTAssertEqual(api.status, 200, api.text)

        let plain = try http.send(HTTPRequest(url: stack.simURL + "/sim/telegram/open?user=100003"))
        XCTAssertTrue(plain.header("location")?.hasPrefix(stack.baseURL + "/#tgWebAppData=") == true, "\(plain.headers)")
        // A path of the Mini App's own site only: never a way to another host, a header or a hash.
        for bad in ["user=abc", "user=1&path=%2F%2Fevil.example", "user=1&path=evil", "user=1&lang=de", "user=1&theme=pink",
                    "user=1&path=%2F%5Cevil.example", "user=1&path=%40evil.example", "user=1&path=.evil.example%2F",
                    "user=1&path=%2F%0D%0ASet-Cookie:%20a=b", "user=1&path=%2F%09%2Fevil.example", "user=1&path=%2F%23tgWebAppData=x",
                    "user=1&path=https:%2F%2Fevil.example", "user=0", "user=-5"] {
            XCTAssertEqual(try http.send(HTTPRequest(url: stack.simURL + "/sim/telegram/open?" + bad)).status, 400, bad)
        }
    }

    /// The simulated Telegram takes an update the way Telegram does: any 2xx answer delivers
    /// it (a method in a 200 answer is run), anything else is kept as the webhook's last error
    /// with its time, and the secret token goes in its header.
    func testTheSimulatorTakesAny2xxAnswer() throws {
        let simPort = Subprocess.freePort()
        stack = try Stack(database: db, workers: 1, env: Fixtures.env(simURL: "http://127.0.0.1:\(simPort)"),
                          withSimulator: true, simPort: simPort, withPool: false)
        let sim = TelegramSimulator(simURL: stack.simURL)
        let webhook = try LoopbackHTTPServer { req in
            switch req.path {
            case "/accepted": return .init(status: 204)
            case "/refused": return .init(status: 403, body: Array("no".utf8))
            default: return .init(status: 200, headers: [("Content-Type", "application/json")],
                                  body: Array(#"{"method":"sendMessage","chat_id":100004,"text":"hi"}"#.utf8))
            }
        }
        defer { webhook.stop() }
        let client = TelegramClient(apiURL: sim.apiURL, botToken: Fixtures.botToken, timeout: 10)
        for (path, delivered, answered) in [("/accepted", true, false), ("/answered", true, true), ("/refused", false, false)] {
            try client.setWebhook(url: webhook.url + path, secretToken: "s3cret", allowedUpdates: ["message"])
            let sent = try sim.send(chat: 100_004)
            XCTAssertEqual(sent["delivered"]?.boolValue, delivered, "\(path): \(sent)")
            XCTAssertEqual(sent["method"]?.stringValue, answered ? "sendMessage" : nil, "\(path): \(sent)")
            let info = try client.getWebhookInfo()
            XCTAssertEqual(info.lastErrorMessage, delivered ? nil : "Wrong response from the webhook: 403 Forbidden", path)
            XCTAssertEqual(info.lastErrorDate == nil, delivered, path)
        }
        XCTAssertEqual(webhook.received.map { $0.headers["x-telegram-bot-api-secret-token"] }, ["s3cret", "s3cret", "s3cret"])
        XCTAssertEqual(try sim.messages(chat: 100_004).filter { $0["from"]?.stringValue == "bot" }.count, 1, "only the answer's method")
    }

    /// The simulated Telegram holds the bot to Telegram's rules for buttons: web apps only
    /// over https (inline `web_app` buttons and the menu button) and `web_app` buttons only in
    /// private chats; a refused message is not stored. A `url` button on http is taken.
    func testTheSimulatorRefusesWebAppsTelegramWouldRefuse() throws {
        let simPort = Subprocess.freePort()
        stack = try Stack(database: db, workers: 1, env: Fixtures.env(simURL: "http://127.0.0.1:\(simPort)"),
                          withSimulator: true, simPort: simPort, withPool: false)
        let sim = TelegramSimulator(simURL: stack.simURL)
        try sim.set(["floodControl": false])
        let client = TelegramClient(apiURL: sim.apiURL, botToken: Fixtures.botToken, timeout: 10)
        func refusal(_ body: () throws -> Void) -> String? {
            do { try body(); return nil } catch let TelegramError.permanent(400, description) { return description } catch { return "\(error)" }
        }
        let http = refusal { _ = try client.sendMessage(chatID: 7, text: "x", html: false, keyboard: [[.init(text: "a", action: .webApp("http://127.0.0.1/"))]]) }
        XCTAssertTrue(http?.contains("Only HTTPS links are allowed") == true, http ?? "accepted")
        XCTAssertNotNil(refusal { _ = try client.sendMessage(chatID: -7, text: "x", html: false, keyboard: [[.init(text: "a", action: .webApp("https://x.example/"))]]) },
                        "web_app buttons only in private chats")
        XCTAssertNotNil(refusal { try client.setChatMenuButton(.webApp(text: "PinGlass", url: "http://127.0.0.1/")) })
        XCTAssertEqual(try sim.messages().count, 0, "nothing refused was stored")
        XCTAssertEqual(try client.sendMessage(chatID: 7, text: "x", html: false, keyboard: [[.init(text: "a", action: .url("http://127.0.0.1/"))]]), 1)
        try client.setChatMenuButton(.webApp(text: "PinGlass", url: "https://x.example/"))
        XCTAssertEqual(try client.getChatMenuButton(), .webApp(text: "PinGlass", url: "https://x.example/"))
        try client.setWebhook(url: "https://x.example/hook", secretToken: "s", allowedUpdates: ["message"])
        XCTAssertEqual(try client.getWebhookInfo(), TelegramWebhookInfo(url: "https://x.example/hook", allowedUpdates: ["message"]))
        try client.deleteWebhook()
        XCTAssertEqual(try client.getWebhookInfo().url, "")
    }
}

import Foundation
import HTTPCore
import PinGlassTesting
import Postgres
import XCTest
import JSON
import ProviderWire
@testable import PinGlass
@testable import PinGlassWeb

/// `POST /api/telegram/webhook` in-process (docs/http-api.md#telegram-webhook): the secret
/// token, `/start` answered with the method in the webhook's answer, the sender stored.
final class TelegramWebhookTests: DatabaseTestCase {
    static let secret = "unit-webhook-secret"

    func update(_ text: String, from: Int64 = 77, chatType: String = "private", lang: String = "en") -> String {
        #"{"update_id":9,"message":{"message_id":1,"date":1,"text":"\#(text)","#
            + #""from":{"id":\#(from),"is_bot":false,"first_name":"Bo","language_code":"\#(lang)"},"chat":{"id":\#(from),"type":"\#(chatType)"}}}"#
    }

    func post(_ app: InProcessApp, _ body: String, secret: String? = secret) throws -> TestClient.Response {
        try app.client.post("/api/telegram/webhook", body: body,
                            headers: [("Content-Type", "application/json")] + (secret.map { [(TelegramRoutes.secretHeader, $0)] } ?? []))
    }

    func testWithoutTheSecretTheEndpointDoesNotExist() throws {
        let app = try InProcessApp(database: db)
        XCTAssertEqual(try post(app, update("/start")).status, 404)
    }

    func testTheSecretTokenIsRequired() throws {
        let app = try InProcessApp(database: db, env: ["TELEGRAM_WEBHOOK_SECRET": Self.secret])
        XCTAssertEqual(try post(app, update("/start"), secret: nil).status, 401)
        XCTAssertEqual(try post(app, update("/start"), secret: "wrong").status, 401)
        XCTAssertEqual(try post(app, "[1,2]").status, 400)
        XCTAssertEqual(try post(app, "nope").status, 400)
        XCTAssertEqual(try db.connect().query("SELECT count(*)::int AS n FROM users")[0].requiredInt("n"), 0)
    }

    /// On an https base the button is a `web_app` button (English by the sender's language);
    /// the sender's row is created; a group's `/start` and other texts are ignored.
    func testStartIsAnsweredWithTheMiniAppButton() throws {
        let app = try InProcessApp(database: db, env: ["TELEGRAM_WEBHOOK_SECRET": Self.secret, "PUBLIC_BASE_URL": "https://pinglass.example"])
        let r = try post(app, update("/start@pinglass_bot", lang: "en-GB"))
        XCTAssertEqual(r.status, 200, r.text)
        let answer = try r.json()
        XCTAssertEqual(answer["method"], "sendMessage")
        XCTAssertEqual(answer["chat_id"]?.intValue, 77)
        XCTAssertTrue(answer["text"]?.stringValue?.hasPrefix("Hi! PinGlass") == true)
        XCTAssertEqual(answer["reply_markup"]?.serialized,
                       #"{"inline_keyboard":[[{"text":"Open PinGlass","web_app":{"url":"https://pinglass.example/"}}]]}"#)
        let row = try db.connect().query("SELECT first_name, language_code FROM users WHERE telegram_user_id = 77")
        XCTAssertEqual(row.first?.string("first_name"), "Bo")
        XCTAssertEqual(row.first?.string("language_code"), "en-GB")
        for ignored in [update("/start", from: -100, chatType: "group"), update("/started"), update("hello /start")] {
            XCTAssertEqual(try post(app, ignored).text, "{}", ignored)
        }
    }

    /// On a plain-http (local) base a button goes only to the simulator (Telegram on loopback): the real
    /// Telegram would refuse the whole message, so there the address is the text's last line.
    func testOnPlainHTTPTheRealTelegramGetsTheAddressAsALine() throws {
        let base = ["TELEGRAM_WEBHOOK_SECRET": Self.secret, "PUBLIC_BASE_URL": "http://127.0.0.1:8080"]
        let real = try InProcessApp(database: db, env: base.merging(["TELEGRAM_API_URL": "https://api.telegram.org"]) { $1 })
        let answer = try post(real, update("/start", lang: "ru")).json()
        XCTAssertNil(answer["reply_markup"], "\(answer)")
        XCTAssertTrue(answer["text"]?.stringValue?.hasSuffix("\nПриложение: http://127.0.0.1:8080/") == true, "\(answer)")

        let simulated = try InProcessApp(database: db, env: base.merging(["TELEGRAM_API_URL": "http://127.0.0.1:9/telegram"]) { $1 })
        let sim = try post(simulated, update("/start")).json()
        XCTAssertEqual(sim["reply_markup"]?.serialized,
                       #"{"inline_keyboard":[[{"text":"Open PinGlass","url":"http://127.0.0.1:8080/"}]]}"#)
        XCTAssertFalse(sim["text"]?.stringValue?.contains("http://") == true, "\(sim)")
    }

    /// An update with odd fields (a future shape of Telegram's) is answered, never a 500
    /// that Telegram would re-send for a day: fields of the wrong type are ignored, an id out
    /// of range or not positive stores no user, overlong fields are cut to the columns. A NUL
    /// in a string is refused by the JSON parser (400), before anything is stored.
    func testOddFieldsAreAnsweredNeverAServerError() throws {
        let app = try InProcessApp(database: db, env: ["TELEGRAM_WEBHOOK_SECRET": Self.secret])
        func start(from: String) -> String {
            #"{"update_id":10,"message":{"message_id":1,"date":1,"text":"/start","from":\#(from),"chat":{"id":81,"type":"private"}}}"#
        }
        let odd = [#""not an object""#, #"{"id":"81","first_name":5,"username":["x"],"is_bot":"no"}"#, #"{"id":1e400}"#,
                   #"{"id":-3}"#, #"{"id":9223372036854775808}"#, #"{"id":81.5}"#, #"{"id":84,"is_bot":true}"#,
                   #"{"id":81,"first_name":"\#(String(repeating: "й", count: 300))","language_code":"\#(String(repeating: "x", count: 300))"}"#]
        for from in odd {
            let r = try post(app, start(from: from))
            XCTAssertEqual(r.status, 200, "\(from): \(r.text)")
            XCTAssertEqual(try r.json()["method"], "sendMessage", from)
        }
        for other in [#"{"update_id":11,"message":[1]}"#, #"{"update_id":12,"message":{"text":"/start","chat":{"id":"x","type":"private"}}}"#,
                      #"{"update_id":13,"message":{"text":7,"chat":{"id":81,"type":"private"}}}"#, #"{"update_id":14}"#] {
            let r = try post(app, other)
            XCTAssertEqual(r.status, 200, other)
            XCTAssertEqual(r.text, "{}", other)
        }
        let c = try db.connect()
        let rows = try c.query("SELECT telegram_user_id, first_name, username, language_code FROM users ORDER BY id")
        XCTAssertEqual(rows.map { $0.int("telegram_user_id") }, [81], "only well-formed ids of people, once")
        XCTAssertEqual(rows.first?.string("first_name"), String(repeating: "й", count: 256))
        XCTAssertEqual(rows.first?.string("language_code"), String(repeating: "x", count: 16))

        let nul = try post(app, start(from: #"{"id":83,"first_name":"A\u0000nn"}"#))
        XCTAssertEqual(nul.status, 400, nul.text)
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM users WHERE telegram_user_id = 83")[0].requiredInt("n"), 0)
    }

    func testStartCommandForms() {
        XCTAssertTrue(BotWebhook.Start.isStart("/start"))
        XCTAssertTrue(BotWebhook.Start.isStart("/start job_5"))
        XCTAssertTrue(BotWebhook.Start.isStart("/start@pinglass_bot"))
        XCTAssertFalse(BotWebhook.Start.isStart("/startx"))
        XCTAssertFalse(BotWebhook.Start.isStart("start"))
    }
}

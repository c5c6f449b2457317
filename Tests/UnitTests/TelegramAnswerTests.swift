import XCTest
import HTTPClient
import PinGlassTesting
import JSON
import PinGlassConfig
import Postgres
import ProviderWire
@testable import PinGlass
@testable import Providers

/// The Bot API envelope and the error classes of docs/providers.md#telegram-envelope and docs/providers.md#telegram-errors, on real-shaped answers; and the
/// client's promise that the bot token never shows in an error.
final class TelegramAnswerTests: XCTestCase {
    func classify(_ status: Int, _ body: String) -> TelegramError? {
        do { _ = try TelegramAnswer.result(status: status, body: Array(body.utf8)); return nil } catch { return error }
    }

    func testSuccessReturnsTheResult() throws {
        let result = try TelegramAnswer.result(status: 200, body: Array(#"{"ok":true,"result":{"message_id":17,"date":1}}"#.utf8))
        XCTAssertEqual(TelegramAnswer.messageID(result), 17)
        let album = try TelegramAnswer.result(status: 200, body: Array(#"{"ok":true,"result":[{"message_id":3},{"message_id":4}]}"#.utf8))
        XCTAssertEqual(album.arrayValue?.map(TelegramAnswer.messageID), [3, 4])
        // ok:true without an id: sent all the same (re-sending would show it twice).
        XCTAssertEqual(TelegramAnswer.messageID(try TelegramAnswer.result(status: 200, body: Array(#"{"ok":true,"result":{}}"#.utf8))), 0)
    }

    func testFloodControlWaitsFromParametersElseDescriptionElseDefault() {
        XCTAssertEqual(classify(429, #"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 5","parameters":{"retry_after":5}}"#),
                       .retryAfter(seconds: 5))
        XCTAssertEqual(classify(429, #"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 12"}"#), .retryAfter(seconds: 12))
        XCTAssertEqual(classify(429, #"{"ok":false,"error_code":429,"description":"Too Many Requests"}"#),
                       .retryAfter(seconds: TelegramAnswer.defaultRetryAfter))
        XCTAssertEqual(classify(429, "<html>slow down</html>"), .retryAfter(seconds: TelegramAnswer.defaultRetryAfter))
        // retry_after wins whatever the code says.
        XCTAssertEqual(classify(400, #"{"ok":false,"error_code":400,"description":"x","parameters":{"retry_after":3}}"#), .retryAfter(seconds: 3))
    }

    func testPermanentRefusals() {
        XCTAssertEqual(classify(403, #"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#),
                       .permanent(code: 403, description: "Forbidden: bot was blocked by the user"))
        XCTAssertEqual(classify(403, #"{"ok":false,"error_code":403,"description":"Forbidden: user is deactivated"}"#),
                       .permanent(code: 403, description: "Forbidden: user is deactivated"))
        XCTAssertEqual(classify(400, #"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#),
                       .permanent(code: 400, description: "Bad Request: chat not found"))
        XCTAssertEqual(classify(400, #"{"ok":false,"error_code":400,"description":"Bad Request: message caption is too long"}"#),
                       .permanent(code: 400, description: "Bad Request: message caption is too long"))
    }

    func testPhotoURLRefusalsMeanSendTheBytes() {
        for d in ["Bad Request: failed to get HTTP URL content", "Bad Request: wrong type of the web page content",
                  "Bad Request: wrong file identifier/HTTP URL specified", "Bad Request: WEBPAGE_CURL_FAILED",
                  "Bad Request: failed to send message #1 with the error message \"WEBPAGE_MEDIA_EMPTY\""] {
            let body: JSON = ["ok": false, "error_code": 400, "description": .string(d)]
            XCTAssertEqual(classify(400, body.serialized), .mediaURLRejected(d), d)
        }
    }

    func testMigratedUnauthorizedAndTransient() {
        XCTAssertEqual(classify(400, #"{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1001234567890}}"#),
                       .migrated(toChatID: -1_001_234_567_890))
        XCTAssertEqual(classify(401, #"{"ok":false,"error_code":401,"description":"Unauthorized"}"#), .unauthorized("Unauthorized"))
        XCTAssertEqual(classify(500, #"{"ok":false,"error_code":500,"description":"Internal Server Error"}"#), .transient("500 Internal Server Error"))
        XCTAssertEqual(classify(502, "<html><center><h1>502 Bad Gateway</h1></center></html>"), .transient("HTTP 502 without a Bot API answer"))
        // A 200 that is not an answer, or says ok:false without a code: nothing to act on but retrying.
        XCTAssertEqual(classify(200, "<html>captive portal</html>"), .transient("HTTP 200 without a Bot API answer"))
        XCTAssertEqual(classify(200, #"{"ok":false}"#), .transient("error_code 200: HTTP 200"))
        // A 404 page that is not Telegram's (a wrong TELEGRAM_API_URL) never fails a user's delivery for good.
        XCTAssertEqual(classify(404, "<html>404 Not Found</html>"), .transient("HTTP 404 without a Bot API answer"))
    }

    func testRetryAfterNumberInDescription() {
        XCTAssertEqual(TelegramAnswer.retryAfter(in: "Too Many Requests: retry after 35"), 35)
        XCTAssertEqual(TelegramAnswer.retryAfter(in: "Too Many Requests: retry after 0"), 1)
        XCTAssertNil(TelegramAnswer.retryAfter(in: "Too Many Requests"))
    }

    /// Nothing listens on the port: the transport error names the URL redacted, and the
    /// client scrubs the token besides, even one that does not look like Telegram's.
    func testTokenNeverInTransportErrors() throws {
        for token in ["7000000001:AAE-secret_part-0123456789abcdef", "plain-secret-token-without-digits"] {
            let client = TelegramClient(apiURL: "http://127.0.0.1:\(Subprocess.freePort())", botToken: token, timeout: 2)
            do {
                _ = try client.sendMessage(chatID: 42, text: "hi", html: false)
                XCTFail("nothing listens there")
            } catch {
                guard case .transient = error else { return XCTFail("\(error)") }
                for text in ["\(error)", String(reflecting: error), error.description] {
                    XCTAssertFalse(text.contains(token), text)
                    XCTAssertFalse(text.contains("secret"), text)
                }
            }
        }
    }

    func testAlbumSizeCheckedBeforeAnyCall() {
        let client = TelegramClient(apiURL: "http://127.0.0.1:9", botToken: "1:x")
        for n in [0, 1, 11] {
            XCTAssertThrowsError(try client.sendMediaGroup(chatID: 1, photos: Array(repeating: .url("https://x/p.png"), count: n), caption: nil)) {
                guard case .permanent(400, _)? = $0 as? TelegramError else { return XCTFail("\($0)") }
            }
        }
    }

    func testDependenciesBuildTheClientFromConfig() throws {
        let config = try Config(variables: ["DATABASE_URL": "dbname=x", "TELEGRAM_BOT_TOKEN": "1:abc",
                                            "TELEGRAM_API_URL": "http://127.0.0.1:8081/telegram"])
        let deps = Dependencies.live(config: config, database: Database(url: config.databaseURL, applicationName: "test"), migrationsDirectory: "/tmp")
        let client = try XCTUnwrap(deps.providers.telegram as? TelegramClient)
        XCTAssertEqual(client.apiURL, "http://127.0.0.1:8081/telegram")
        XCTAssertEqual(client.timeout, TelegramClient.defaultTimeout)
        let none = try Config(variables: ["DATABASE_URL": "dbname=x"])
        XCTAssertNil(Dependencies.live(config: none, database: Database(url: none.databaseURL, applicationName: "test"), migrationsDirectory: "/tmp").telegram)
        XCTAssertEqual(none.telegramAPIURL, "https://api.telegram.org")
    }
}

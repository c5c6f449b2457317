import XCTest
import Foundation
import HTTPClient
import PinGlassTesting
import JSON
import LibCrypto
import Platform
import ProviderWire
@testable import PinGlass
@testable import Providers

/// `TelegramClient` against the simulated Telegram, a real HTTP service behind nginx (docs/providers.md#telegram-simulator):
/// uploads (multipart) and URLs (fetched by the simulator from a loopback file server),
/// albums, the inbox pages, validation, per-chat faults, flood control, injected failures and
/// answers lost after success; every error class of `TelegramError`, and the token never in
/// an error's text.
final class TelegramSimulatorTests: DatabaseTestCase {
    var stack: Stack!
    var sim: TelegramSimulator!
    var telegram: TelegramClient!
    var files: StaticFileServer?
    let http = HTTPClient()

    override func setUpWithError() throws {
        try super.setUpWithError()
        let simPort = Subprocess.freePort()
        stack = try Stack(database: db, workers: 1, env: Fixtures.env(simURL: "http://127.0.0.1:\(simPort)"),
                          withSimulator: true, simPort: simPort, withPool: false)
        sim = TelegramSimulator(simURL: stack.simURL)
        XCTAssertEqual(stack.environment["TELEGRAM_API_URL"], sim.apiURL)
        telegram = TelegramClient(apiURL: sim.apiURL, botToken: Fixtures.botToken, timeout: 10)
        // Flood control has its own tests; the others send at their own pace.
        try sim.set(["floodControl": false])
    }

    override func tearDown() {
        files?.stop()
        stack?.stop()
        super.tearDown()
    }

    func error(_ body: () throws -> Void) -> TelegramError? {
        do { try body(); return nil } catch let e as TelegramError { return e } catch { XCTFail("\(error)"); return nil }
    }

    func upload(_ seed: Int) -> TelegramMedia { .upload(filename: "p\(seed).png", contentType: "image/png", bytes: TestImages.png(seed: seed)) }

    func sha(_ bytes: [UInt8]) -> String { Crypto.hex(Crypto.sha256(bytes)) }

    /// A raw Bot API call (for what the client never sends); status and parsed body.
    func raw(_ method: String, contentType: String, body: [UInt8], token: String = Fixtures.botToken) throws -> (Int, JSON) {
        let r = try http.send(HTTPRequest(method: "POST", url: sim.apiURL + "/bot\(token)/\(method)",
                                          headers: [("Content-Type", contentType)], body: body))
        return (r.status, try JSON.parse(r.body))
    }

    func rawJSON(_ method: String, _ body: JSON) throws -> (Int, JSON) {
        try raw(method, contentType: "application/json", body: body.bytes)
    }

    // MARK: sending

    func testUploadedPhotoIsStoredAndShownOnTheInboxPage() throws {
        let bytes = TestImages.png(seed: 1)
        let id = try telegram.sendPhoto(chatID: 1001, photo: .upload(filename: "a.png", contentType: "image/png", bytes: bytes), caption: "Твой портрет")
        XCTAssertEqual(id, 1)
        let stored = try sim.messages(chat: 1001)
        XCTAssertEqual(stored.count, 1)
        XCTAssertEqual(stored[0]["kind"], "photo")
        XCTAssertEqual(stored[0]["text"], "Твой портрет")
        XCTAssertEqual(stored[0]["source"], "upload")
        XCTAssertEqual(stored[0]["photoSha256"]?.stringValue, sha(bytes))

        let list = try http.send(HTTPRequest(url: stack.simURL + "/sim/telegram/chats"))
        XCTAssertTrue(list.text.contains("href=\"/sim/telegram/chats/1001\""), list.text)
        let page = try http.send(HTTPRequest(url: sim.inboxURL(chat: 1001)))
        XCTAssertEqual(page.status, 200)
        XCTAssertTrue(page.text.contains("Твой портрет"))
        let src = try XCTUnwrap(page.text.firstRange(of: "<img src=\"").map { page.text[$0.upperBound...].prefix { $0 != "\"" } })
        let image = try http.send(HTTPRequest(url: stack.simURL + src))
        XCTAssertEqual(image.status, 200)
        XCTAssertEqual(image.header("content-type"), "image/png")
        XCTAssertEqual(Array(image.body.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        XCTAssertEqual(image.body, bytes)
        XCTAssertEqual(try PNGCheck(image.body).width, 24)
    }

    func testAlbumOfUploadsGetsIncreasingIdsOneGroupAndTheCaptionOnTheFirst() throws {
        let ids = try telegram.sendMediaGroup(chatID: 1002, photos: [upload(1), upload(2), upload(3)], caption: "Ваши портреты")
        XCTAssertEqual(ids, [1, 2, 3])
        XCTAssertEqual(try telegram.sendMessage(chatID: 1002, text: "Галерея", html: false), 4)
        XCTAssertEqual(try telegram.sendMessage(chatID: 1003, text: "another chat", html: false), 1, "ids count per chat")
        let stored = try sim.messages(chat: 1002)
        XCTAssertEqual(stored.map { $0["messageId"]?.intValue }, [1, 2, 3, 4])
        let group = try XCTUnwrap(stored[0]["mediaGroupId"]?.stringValue)
        XCTAssertEqual(stored.prefix(3).map { $0["mediaGroupId"]?.stringValue }, [group, group, group])
        XCTAssertEqual(stored.map { $0["text"]?.stringValue }, ["Ваши портреты", nil, nil, "Галерея"])
        XCTAssertEqual(stored.prefix(3).map { $0["photoSha256"]?.stringValue }, (1...3).map { sha(TestImages.png(seed: $0)) })
        // The same photo sent again is stored once.
        _ = try telegram.sendPhoto(chatID: 1002, photo: upload(1), caption: nil)
        XCTAssertEqual(try sim.counters()["photos"], 3)
        let page = try http.send(HTTPRequest(url: sim.inboxURL(chat: 1002))).text
        XCTAssertTrue(page.contains("album of 3"), page)
    }

    func testPhotosByURLAreFetchedByTheSimulator() throws {
        let server = try StaticFileServer()
        files = server
        let a = try server.put("m/a.png", bytes: TestImages.png(seed: 7))
        let b = try server.put("m/b.png", bytes: TestImages.png(seed: 8))
        XCTAssertEqual(try telegram.sendPhoto(chatID: 1004, photo: .url(a), caption: nil), 1)
        // Mixed: one by URL, one uploaded in the same request (attach://).
        XCTAssertEqual(try telegram.sendMediaGroup(chatID: 1004, photos: [.url(b), upload(9)], caption: "mixed"), [2, 3])
        let stored = try sim.messages(chat: 1004)
        XCTAssertEqual(stored.map { $0["source"]?.stringValue }, ["url", "url", "upload"])
        XCTAssertEqual(stored.map { $0["photoSha256"]?.stringValue }, [7, 8, 9].map { sha(TestImages.png(seed: $0)) })
    }

    /// docs/providers.md#telegram-files: the photo must be reachable, at most 5 MB, and an image by type and bytes; else
    /// 400, which the client reports as "send the bytes instead".
    func testPhotoURLsTelegramCannotUse() throws {
        let server = try StaticFileServer()
        files = server
        let missing = server.baseURL + "/nothing.png"
        let text = try server.put("t/readme.txt", bytes: Array("not an image".utf8))
        let pngAsText = try server.put("t/photo.txt", bytes: TestImages.png(seed: 1))
        let fakePNG = try server.put("t/fake.png", bytes: Array("GIF89a, not a png".utf8))
        let big = try server.put("t/big.png", bytes: TestImages.png(seed: 2) + [UInt8](repeating: 0, count: 5 << 20))
        let cases: [(String, String)] = [
            (missing, "Bad Request: failed to get HTTP URL content"), (big, "Bad Request: failed to get HTTP URL content"),
            (text, "Bad Request: wrong type of the web page content"), (pngAsText, "Bad Request: wrong type of the web page content"),
            (fakePNG, "Bad Request: wrong type of the web page content"),
            ("http://127.0.0.1:\(Subprocess.freePort())/x.png", "Bad Request: failed to get HTTP URL content"),
        ]
        for (url, description) in cases {
            XCTAssertEqual(error { _ = try telegram.sendPhoto(chatID: 1005, photo: .url(url), caption: nil) }, .mediaURLRejected(description), url)
        }
        XCTAssertEqual(error { _ = try telegram.sendMediaGroup(chatID: 1005, photos: [upload(1), .url(missing)], caption: nil) },
                       .mediaURLRejected("Bad Request: failed to get HTTP URL content"), "one bad item refuses the album")
        // Over 5 MB by URL, but an upload up to 10 MB is fine: the fallback works.
        let bigBytes = TestImages.png(seed: 2) + [UInt8](repeating: 0, count: 5 << 20)
        XCTAssertEqual(try telegram.sendPhoto(chatID: 1005, photo: .upload(filename: "big.png", contentType: "image/png", bytes: bigBytes), caption: nil), 1)
        // Like Telegram, which cannot reach loopback addresses.
        try sim.set(["rejectLoopbackURLs": true])
        let good = try server.put("t/good.png", bytes: TestImages.png(seed: 3))
        XCTAssertEqual(error { _ = try telegram.sendPhoto(chatID: 1005, photo: .url(good), caption: nil) },
                       .mediaURLRejected("Bad Request: failed to get HTTP URL content"))
        XCTAssertEqual(try sim.messages(chat: 1005).count, 1, "refused calls store nothing")
    }

    func testTextMessagesWithHTMLAndEveryBodyForm() throws {
        let id = try telegram.sendMessage(chatID: 1006, text: #"Готово: <b>23</b> фото. <a href="https://pinglass.example/g/1?a=1&amp;b=2">Галерея</a>"#, html: true)
        XCTAssertEqual(id, 1)
        let (status, body) = try rawJSON("sendMessage", ["chat_id": 1006, "text": "<i>x</i> &lt;3", "parse_mode": "HTML"])
        XCTAssertEqual(status, 200)
        XCTAssertEqual(body["result"]?["text"], "x <3")
        XCTAssertEqual(body["result"]?["entities"], [["offset": 0, "length": 1, "type": "italic"]])
        // An unescaped "<" is what breaks at Telegram.
        XCTAssertEqual(error { _ = try telegram.sendMessage(chatID: 1006, text: "I <3 you", html: true) },
                       .permanent(code: 400, description: "Bad Request: can't parse entities: Unclosed start tag at byte offset 2"))
        XCTAssertEqual(error { _ = try telegram.sendMessage(chatID: 1006, text: "Anna <anna@x.org>", html: true) },
                       .permanent(code: 400, description: #"Bad Request: can't parse entities: Unsupported start tag "anna@x.org" at byte offset 5"#))
        XCTAssertEqual(error { _ = try telegram.sendMessage(chatID: 1006, text: "<b>open", html: true) },
                       .permanent(code: 400, description: #"Bad Request: can't parse entities: Can't find end tag corresponding to start tag "b""#))
        // Form-encoded and query parameters, as other clients send them.
        let (formStatus, form) = try raw("sendMessage", contentType: "application/x-www-form-urlencoded",
                                         body: Array("chat_id=1006&text=%D0%BF%D1%80%D0%B8%D0%B2%D0%B5%D1%82+there".utf8))
        XCTAssertEqual(formStatus, 200)
        XCTAssertEqual(form["result"]?["text"], "привет there")
        let query = try http.send(HTTPRequest(url: sim.apiURL + "/bot\(Fixtures.botToken)/sendMessage?chat_id=1006&text=q"))
        XCTAssertEqual(query.status, 200, query.text)
        let page = try http.send(HTTPRequest(url: sim.inboxURL(chat: 1006))).text
        XCTAssertTrue(page.contains(#"<a href="https://pinglass.example/g/1?a=1&amp;b=2" rel="noopener noreferrer" target="_blank">Галерея</a>"#), page)
        XCTAssertTrue(page.contains("<b>23</b>"))
        XCTAssertEqual(try sim.messages(chat: 1006).count, 4)
    }

    func testGetMeAndTheRootPath() throws {
        XCTAssertEqual(try telegram.getMe().id, 7_000_000_001)
        XCTAssertEqual(try telegram.getMe().username, "pinglass_sim_bot")
        // TELEGRAM_API_URL may be the simulator's root, as with api.telegram.org.
        let root = TelegramClient(apiURL: stack.simURL, botToken: Fixtures.botToken)
        XCTAssertEqual(try root.sendMessage(chatID: 1007, text: "root", html: false), 1)
        let unknown = try http.send(HTTPRequest(method: "POST", url: sim.apiURL + "/bot\(Fixtures.botToken)/sendSticker"))
        XCTAssertEqual(unknown.status, 404)
        XCTAssertEqual(try JSON.parse(unknown.body), ["ok": false, "error_code": 404, "description": "Not Found"])
    }

    /// `pinglass doctor` asks `getMe`: the bot answers, or the token is refused (never printed).
    func testDoctorAsksTheBotAPI() throws {
        func doctor(_ env: [String: String]) throws -> (Int32, String) {
            var e = stack.environment
            e.merge(env) { $1 }
            let (status, out, err) = try Subprocess.capture(TestEnvironment.binDir() + "/pinglass", ["doctor"], environment: e)
            return (status, out + err)
        }
        let (status, out) = try doctor([:])
        XCTAssertTrue(out.contains("ok    Telegram at \(sim.apiURL): bot @pinglass_sim_bot (id 7000000001) answers"), out)
        XCTAssertEqual(status, 0, out)
        let wrong = "7000000001:AAdoctor-wrong-token"
        let (s2, o2) = try doctor(["TELEGRAM_BOT_TOKEN": wrong])
        XCTAssertEqual(s2, 1, o2)
        XCTAssertTrue(o2.contains("FAIL  Telegram at \(sim.apiURL) refuses TELEGRAM_BOT_TOKEN (401): nothing can be delivered"), o2)
        XCTAssertFalse(o2.contains("doctor-wrong-token"), o2)
    }

    // MARK: validation

    func testValidationRefusesAndStoresNothing() throws {
        func photo(_ i: Int) -> JSON { ["type": "photo", "media": .string("attach://p\(i)")] }
        func multipart(_ media: JSON, parts: [HTTPRequest.Part], chat: String? = "1008") throws -> (Int, JSON) {
            var fields = [HTTPRequest.Part(name: "media", data: Array(media.serialized.utf8))] + parts
            if let chat { fields.insert(HTTPRequest.Part(name: "chat_id", data: Array(chat.utf8)), at: 0) }
            let req = HTTPRequest.multipart(sim.apiURL + "/bot\(Fixtures.botToken)/sendMediaGroup", parts: fields)
            let r = try http.send(req)
            return (r.status, try JSON.parse(r.body))
        }
        func file(_ name: String, _ bytes: [UInt8] = TestImages.png(seed: 1)) -> HTTPRequest.Part {
            HTTPRequest.Part(name: name, filename: name + ".png", contentType: "image/png", data: bytes)
        }
        let cases: [((Int, JSON), String)] = [
            (try multipart([photo(0)], parts: [file("p0")]), "Bad Request: media must include 2-10 items"),
            (try multipart(.array((0..<11).map(photo)), parts: (0..<11).map { file("p\($0)") }), "Bad Request: media must include 2-10 items"),
            (try multipart([photo(0), photo(1)], parts: [file("p0")]), #"Bad Request: media "p1" is not attached: no uploaded part of that name"#),
            (try multipart([photo(0), photo(1)], parts: [file("p0"), file("p1")], chat: nil), "Bad Request: chat_id is empty"),
            (try multipart([photo(0), photo(1)], parts: [file("p0"), file("p1", Array("text".utf8))]), "Bad Request: IMAGE_PROCESS_FAILED"),
            (try multipart([photo(0), ["type": "photo", "media": "attach://p1", "caption": .string(String(repeating: "я", count: 1025))]],
                           parts: [file("p0"), file("p1")]), "Bad Request: message caption is too long"),
            (try multipart([photo(0), photo(1)], parts: [file("p0"), file("p1", TestImages.png(seed: 1, width: 2, height: 64))]),
             "Bad Request: PHOTO_INVALID_DIMENSIONS"),
            (try rawJSON("sendPhoto", ["chat_id": 1008]), "Bad Request: there is no photo in the request"),
            (try rawJSON("sendPhoto", ["chat_id": 1008, "photo": "no-such-file-id"]), "Bad Request: wrong file identifier/HTTP URL specified"),
            (try rawJSON("sendMessage", ["chat_id": "@somechannel", "text": "x"]), "Bad Request: chat not found"),
            (try rawJSON("sendMessage", ["chat_id": 1008, "text": .string(String(repeating: "a", count: 4097))]), "Bad Request: message is too long"),
            (try rawJSON("sendMediaGroup", ["chat_id": 1008, "media": "not json"]), "Bad Request: can't parse media JSON object"),
        ]
        for ((status, body), description) in cases {
            XCTAssertEqual(status, 400, description)
            XCTAssertEqual(body, ["ok": false, "error_code": 400, "description": .string(description)])
        }
        XCTAssertEqual(try sim.messages().count, 0)
        // 1024 characters is fine; two to ten items are.
        let fine = try multipart([photo(0), ["type": "photo", "media": "attach://p1", "caption": .string(String(repeating: "я", count: 1024))]],
                                 parts: [file("p0"), file("p1")])
        XCTAssertEqual(fine.0, 200)
        XCTAssertEqual(fine.1["result"]?.arrayValue?.count, 2)
        XCTAssertEqual(try telegram.sendMediaGroup(chatID: 1009, photos: (0..<10).map(upload), caption: nil), Array(1...10))
    }

    /// The multipart reader against bodies HTTPClient would never write: a preamble and an
    /// epilogue, a quoted boundary, a part without Content-Type, and photo bytes holding
    /// CRLF and the boundary's start.
    func testMultipartEdgeCases() throws {
        let boundary = "----weird boundary=1"
        let trap = Array("\r\n------weird boundary=\r\n--".utf8)
        let bytes = TestImages.png(seed: 4) + trap
        var body = Array("preamble to ignore\r\n--\(boundary)\r\nContent-Disposition: form-data; name=\"chat_id\"\r\n\r\n1010\r\n".utf8)
        body += Array("--\(boundary)\r\ncontent-disposition: form-data; name=\"caption\"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nline 1\r\nline 2\r\n".utf8)
        body += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"a \\\"b\\\".png\"\r\n\r\n".utf8) + bytes
        body += Array("\r\n--\(boundary)--\r\nepilogue\r\n".utf8)
        let (status, answer) = try raw("sendPhoto", contentType: "multipart/form-data; boundary=\"\(boundary)\"", body: body)
        XCTAssertEqual(status, 200, "\(answer)")
        let stored = try sim.messages(chat: 1010)
        XCTAssertEqual(stored.first?["photoSha256"]?.stringValue, sha(bytes))
        XCTAssertEqual(stored.first?["text"], "line 1\r\nline 2")
        let (bad, refusal) = try raw("sendPhoto", contentType: "multipart/form-data; boundary=\"\(boundary)\"", body: Array(body.dropLast(20)))
        XCTAssertEqual(bad, 400)
        XCTAssertEqual(refusal["ok"], false)
    }

    // MARK: error classes

    func testChatFaultsAreClassified() throws {
        try sim.chatFault(2001, "blocked")
        try sim.chatFault(2002, "notFound")
        try sim.chatFault(2003, "deactivated")
        try sim.chatFault(-2004, ["migrateTo": -1_002_004])
        XCTAssertEqual(error { _ = try telegram.sendMediaGroup(chatID: 2001, photos: [upload(1), upload(2)], caption: nil) },
                       .permanent(code: 403, description: "Forbidden: bot was blocked by the user"))
        XCTAssertEqual(error { _ = try telegram.sendPhoto(chatID: 2002, photo: upload(1), caption: nil) },
                       .permanent(code: 400, description: "Bad Request: chat not found"))
        XCTAssertEqual(error { _ = try telegram.sendMessage(chatID: 2003, text: "x", html: false) },
                       .permanent(code: 403, description: "Forbidden: user is deactivated"))
        XCTAssertEqual(error { _ = try telegram.sendMessage(chatID: -2004, text: "x", html: false) }, .migrated(toChatID: -1_002_004))
        XCTAssertEqual(try telegram.sendMessage(chatID: -1_002_004, text: "x", html: false), 1, "the new chat takes messages")
        try sim.chatFault(2001, .null)
        XCTAssertEqual(try telegram.sendMessage(chatID: 2001, text: "unblocked", html: false), 1)
        XCTAssertEqual(try sim.messages().count, 2)
    }

    func testWrongTokenIsUnauthorizedAndNeverInTheError() throws {
        let token = "7000000001:AAwrong-secret-token-xyz"
        let wrong = TelegramClient(apiURL: sim.apiURL, botToken: token)
        let e = try XCTUnwrap(error { _ = try wrong.sendPhoto(chatID: 1, photo: upload(1), caption: nil) })
        XCTAssertEqual(e, .unauthorized("Unauthorized"))
        let (status, body) = try raw("sendMessage", contentType: "application/json", body: Array(#"{"chat_id":1,"text":"x"}"#.utf8), token: token)
        XCTAssertEqual(status, 401)
        XCTAssertEqual(body, ["ok": false, "error_code": 401, "description": "Unauthorized"])
        XCTAssertEqual(try sim.messages().count, 0)
    }

    func testInjectedFailuresAreClassifiedAndStoreNothing() throws {
        try sim.fail(["kind": "429", "retryAfter": 7])
        XCTAssertEqual(error { _ = try telegram.sendMessage(chatID: 3001, text: "x", html: false) }, .retryAfter(seconds: 7))
        try sim.fail(["kind": "429", "retryAfter": 9, "parameters": false])
        XCTAssertEqual(error { _ = try telegram.sendMessage(chatID: 3001, text: "x", html: false) }, .retryAfter(seconds: 9), "number from the description")
        try sim.fail(["kind": "5xx", "status": 502, "description": "Bad Gateway"])
        XCTAssertEqual(error { _ = try telegram.sendMessage(chatID: 3001, text: "x", html: false) }, .transient("502 Bad Gateway"))
        try sim.fail(["kind": "5xx", "status": 503, "html": true])
        XCTAssertEqual(error { _ = try telegram.sendMessage(chatID: 3001, text: "x", html: false) }, .transient("HTTP 503 without a Bot API answer"))
        try sim.fail(["kind": "urlFetch", "method": "sendMediaGroup"])
        XCTAssertEqual(try telegram.sendMessage(chatID: 3001, text: "not the album's failure", html: false), 1)
        XCTAssertEqual(error { _ = try telegram.sendMediaGroup(chatID: 3001, photos: [upload(1), upload(2)], caption: nil) },
                       .mediaURLRejected("Bad Request: failed to get HTTP URL content"))
        try sim.fail(["kind": "error", "status": 403, "description": "Forbidden: bot was kicked from the group chat"])
        XCTAssertEqual(error { _ = try telegram.sendMessage(chatID: 3001, text: "x", html: false) },
                       .permanent(code: 403, description: "Forbidden: bot was kicked from the group chat"))
        try sim.fail(["kind": "drop"])
        guard case .transient(let why)? = error({ _ = try telegram.sendPhoto(chatID: 3001, photo: upload(1), caption: nil) }) else {
            return XCTFail("a dropped connection is transient")
        }
        XCTAssertTrue(why.contains("transport error"), why)
        // No answer at all: the client's timeout ends the wait.
        try sim.fail(["kind": "hang", "ms": 3000])
        let impatient = TelegramClient(apiURL: sim.apiURL, botToken: Fixtures.botToken, timeout: 1)
        guard case .transient(let timeout)? = error({ _ = try impatient.sendMessage(chatID: 3001, text: "x", html: false) }) else {
            return XCTFail("no answer is transient")
        }
        XCTAssertTrue(timeout.contains("timed out"), timeout)
        XCTAssertFalse(timeout.contains(Fixtures.botToken), timeout)
        XCTAssertEqual(try sim.messages().count, 1, "only the one message sent between the failures")
        try Subprocess.waitUntil(timeout: 10, "the hung call to end") { try sim.calls().count == 9 }
        let calls = try sim.calls()
        XCTAssertEqual(calls.map { $0["status"]?.intValue }, [429, 429, 502, 503, 200, 400, 403, 0, 0])
        XCTAssertEqual(calls.filter { $0["outcome"] == "injected" }.count, 8)
        XCTAssertEqual(try sim.counters()["sendMessage.429"], 2)
    }

    /// The send happens, the answer is lost (a 502 from a proxy, or a dropped connection): the
    /// caller cannot know, and one retry shows the photo twice. That is the window callers
    /// keep to one call.
    func testAnswerLostAfterSuccessMeansAtMostOneRepeat() throws {
        try sim.fail(["kind": "lost"])
        XCTAssertEqual(error { _ = try telegram.sendPhoto(chatID: 4001, photo: upload(1), caption: "one") },
                       .transient("HTTP 502 without a Bot API answer"))
        XCTAssertEqual(try sim.messages(chat: 4001).count, 1, "Telegram did send it")
        XCTAssertEqual(try telegram.sendPhoto(chatID: 4001, photo: upload(1), caption: "one"), 2, "the retry")
        try sim.fail(["kind": "lost", "answer": "drop", "method": "sendMediaGroup"])
        XCTAssertNotNil(error { _ = try telegram.sendMediaGroup(chatID: 4001, photos: [upload(2), upload(3)], caption: nil) })
        XCTAssertEqual(try telegram.sendMediaGroup(chatID: 4001, photos: [upload(2), upload(3)], caption: nil), [5, 6])
        let stored = try sim.messages(chat: 4001)
        XCTAssertEqual(stored.count, 6, "each lost answer repeated once: twice the photo, twice the album")
        let counters = try sim.counters()
        XCTAssertEqual(counters["sendPhoto.lost"], 1)
        XCTAssertEqual(counters["sendMediaGroup.lost"], 1)
        // A slow answer past the caller's timeout is the same: sent, unknown to the caller.
        try sim.set(["latencyMs": 2000])
        let impatient = TelegramClient(apiURL: sim.apiURL, botToken: Fixtures.botToken, timeout: 0.5)
        guard case .transient? = error({ _ = try impatient.sendMessage(chatID: 4002, text: "slow", html: false) }) else {
            return XCTFail("a timeout is transient")
        }
        try Subprocess.waitUntil(timeout: 5, "the slow send to be stored") { try sim.messages(chat: 4002).count == 1 }
    }

    // MARK: flood control

    func testFloodControlPerChatWithRetryAfter() throws {
        try sim.set(["floodControl": true, "chatBurst": 3, "chatPerSecond": 1])
        for i in 1...3 { XCTAssertEqual(try telegram.sendMessage(chatID: 5001, text: "m\(i)", html: false), i) }
        guard case .retryAfter(let seconds)? = error({ _ = try telegram.sendMessage(chatID: 5001, text: "m4", html: false) }) else {
            return XCTFail("the fourth message at once is over the chat's burst")
        }
        XCTAssertEqual(seconds, 1)
        XCTAssertEqual(try telegram.sendMessage(chatID: 5002, text: "other chat", html: false), 1, "the limit is per chat")
        let (status, body) = try rawJSON("sendMessage", ["chat_id": 5001, "text": "m4"])
        XCTAssertEqual(status, 429)
        XCTAssertEqual(body, ["ok": false, "error_code": 429, "description": "Too Many Requests: retry after 1", "parameters": ["retry_after": 1]])
        try sim.set(["floodParameters": false])
        XCTAssertEqual(try rawJSON("sendMessage", ["chat_id": 5001, "text": "m4"]).1,
                       ["ok": false, "error_code": 429, "description": "Too Many Requests: retry after 1"])
        // Waiting as told is enough: the simulator's flood control is moved that long on.
        try sim.advance(seconds: Double(seconds))
        XCTAssertEqual(try telegram.sendMessage(chatID: 5001, text: "m4", html: false), 4)
        let refused = try sim.calls().filter { $0["status"] == 429 }
        XCTAssertEqual(refused.count, 3)
        XCTAssertEqual(refused.map { $0["retryAfter"]?.intValue }, [1, 1, 1])
        XCTAssertEqual(try sim.messages(chat: 5001).map { $0["text"]?.stringValue }, ["m1", "m2", "m3", "m4"])
    }

    /// An album counts as one message per photo (docs/providers.md#telegram-limits, the cautious reading): it goes through
    /// whole when the chat is not behind, and then holds the chat back by its size.
    func testAlbumCountsAsItsPhotosAndTheGlobalLimit() throws {
        try sim.set(["floodControl": true, "chatBurst": 3])
        XCTAssertEqual(try telegram.sendMediaGroup(chatID: 5003, photos: (1...10).map(upload), caption: nil).count, 10)
        guard case .retryAfter(let wait)? = error({ _ = try telegram.sendMessage(chatID: 5003, text: "gallery", html: false) }) else {
            return XCTFail("ten photos at once put the chat ten seconds behind")
        }
        XCTAssertTrue((7...8).contains(wait), "about 10 s minus the burst, got \(wait)")
        try sim.reset()          // forgets the limiter and the settings
        try sim.set(["floodControl": true, "chatBurst": 3, "globalPerSecond": 2, "globalBurst": 4])
        for chat in Int64(5010)..<5014 { XCTAssertEqual(try telegram.sendMessage(chatID: chat, text: "hi", html: false), 1) }
        XCTAssertEqual(error { _ = try telegram.sendMessage(chatID: 5014, text: "hi", html: false) }, .retryAfter(seconds: 1),
                       "the fifth chat at once is over the bot's global burst")
    }
}

import XCTest
import Logging
import HTTPClient
import JSON
import PinGlassTesting
import PinGlassConfig
import Platform
@testable import PinGlass
import WebURL

final class LoggingTests: XCTestCase {
    func event(_ message: Logger.Message, _ metadata: Logger.Metadata = [:], level: Logger.Level = .info) -> LogEvent {
        LogEvent(level: level, message: message, metadata: metadata, source: "t", file: #fileID, function: #function, line: #line)
    }

    func testJSONLineCarriesFieldsAndMasksSecrets() throws {
        let handler = PinGlassLogHandler(component: "payments", json: true, level: .info)
        let e = event("bank said no", [
            "request_id": "abc123", "tbank_password": "hunter2", "Authorization": "tma xyz", "order_id": "o-1",
        ], level: .warning)
        let line = handler.jsonLine(e, e.metadata!)
        let v = try JSON.parse(Array(line.utf8.dropLast()))
        XCTAssertEqual(v["level"]?.stringValue, "warning")
        XCTAssertEqual(v["message"]?.stringValue, "bank said no")
        XCTAssertEqual(v["component"]?.stringValue, "payments")
        XCTAssertEqual(v["request_id"]?.stringValue, "abc123")
        XCTAssertEqual(v["order_id"]?.stringValue, "o-1")
        XCTAssertEqual(v["pid"]?.intValue, Int(getpid()))
        XCTAssertFalse(line.contains("hunter2"))
        XCTAssertFalse(line.contains("tma xyz"))
        XCTAssertTrue(line.hasSuffix("\n"))
    }

    /// RFC 3339 in UTC with exactly three fractional digits, and it is the current time.
    func testTimestampIsRFC3339WithMillisecondsInUTC() throws {
        let before = Date()
        let jsonLine = PinGlassLogHandler(component: "t", json: true, level: .info).jsonLine(event("x"), [:])
        let textLine = PinGlassLogHandler(component: "t", json: false, level: .info).textLine(event("x"), [:])
        let after = Date()
        let fromJSON = try XCTUnwrap(JSON.parse(Array(jsonLine.utf8))["time"]?.stringValue)
        let fromText = String(textLine.prefix { $0 != " " })
        let parser = ISO8601DateFormatter()
        parser.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        for stamp in [fromJSON, fromText] {
            XCTAssertNotNil(stamp.wholeMatch(of: #/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z/#), stamp)
            let t = try XCTUnwrap(parser.date(from: stamp), stamp)
            XCTAssertTrue(t.timeIntervalSince(before) > -0.002 && t <= after, "\(stamp) not between \(before) and \(after)")
        }
        XCTAssertEqual(System.iso8601(1662771648.25), "2022-09-10T01:00:48.250Z")
        XCTAssertEqual(System.iso8601(1662771648.9999), "2022-09-10T01:00:48.999Z")
    }

    func testTextFormat() {
        let handler = PinGlassLogHandler(component: "http", json: false, level: .info)
        let e = event("hello", ["api_key": "k", "order_id": "o-1", "reason": "two words"])
        let line = handler.textLine(e, e.metadata!)
        XCTAssertTrue(line.contains(" INFO [http:\(getpid())] hello "), line)
        XCTAssertTrue(line.contains(" api_key=[redacted]"))
        XCTAssertTrue(line.contains(" order_id=o-1"))
        XCTAssertTrue(line.contains(#" reason="two words""#), line)
    }

    /// Input carrying a newline (or another line break or control character) cannot start a
    /// forged line, nor pose as another field, in either format.
    func testNoInputCanForgeALine() throws {
        let forged = "x\n2026-01-01T00:00:00.000Z ERROR [payments:1] refund sent amount=999"
        let e = event("note: \(forged)", ["reason": "\(forged)", "detail": "a\r\u{85}b\u{2028}c\u{1b}[31m\u{7f}"])
        for json in [false, true] {
            let handler = PinGlassLogHandler(component: "http", json: json, level: .info)
            let line = json ? handler.jsonLine(e, e.metadata!) : handler.textLine(e, e.metadata!)
            XCTAssertEqual(line.filter { $0.unicodeScalars.contains { $0.value < 0x20 || (0x7f...0x9f).contains($0.value) || $0.value == 0x2028 } },
                           ["\n"], "json=\(json): \(line)")
            XCTAssertTrue(line.hasSuffix("\n"))
            if json {
                let v = try JSON.parse(Array(line.utf8.dropLast()))
                XCTAssertEqual(v["message"]?.stringValue, "note: \(forged)")
                XCTAssertEqual(v["reason"]?.stringValue, forged)
                XCTAssertEqual(v["detail"]?.stringValue, "a\r\u{85}b\u{2028}c\u{1b}[31m\u{7f}")
            } else {
                XCTAssertTrue(line.contains(#"note: x\n2026-01-01T00:00:00.000Z ERROR"#), line)
                // Quoted whole: its `amount=999` cannot pose as a field of this line.
                XCTAssertTrue(line.hasSuffix(#" reason="x\n2026-01-01T00:00:00.000Z ERROR [payments:1] refund sent amount=999""# + "\n"), line)
            }
        }
    }

    func testURLRedaction() {
        XCTAssertEqual(HTTPURL.redact("https://api.telegram.org/bot123456:ABC-DEF/sendMessage?chat_id=1"), "https://api.telegram.org/…")
        XCTAssertEqual(HTTPURL.redact("https://api.telegram.org/file/bot123456:ABC-DEF/photos/1.jpg"), "https://api.telegram.org/file/…")
        XCTAssertEqual(HTTPURL.redact("HTTPS://user:pw@Pay.Example:8443/v2/Init?Token=x#frag"), "https://pay.example:8443/v2/Init")
        XCTAssertEqual(HTTPURL.redact("http://[::1]:9000/v2/GetState"), "http://[::1]:9000/v2/GetState")
        XCTAssertEqual(HTTPURL.redact("https://r2.example/media/3f9a0c1d2e4b5a6978c0d1e2f3a4b5c6.jpg"), "https://r2.example/media/…")
        XCTAssertEqual(HTTPURL.redact("https://h.example/a%3Ab/c"), "https://h.example/…")
        XCTAssertEqual(HTTPURL.redact("https://h.example"), "https://h.example")
        XCTAssertEqual(HTTPURL.redact("not a url bot123:SECRET"), "[unparsable URL]")
        XCTAssertEqual(HTTPURL.redactingURLs(in: "POST https://api.telegram.org/bot1:S/sendPhoto failed; retry http://x.example/a?k=v."),
                       "POST https://api.telegram.org/… failed; retry http://x.example/a")
    }

    /// Whatever a caller passes (an error description, a `url` field), no log line shows a
    /// bot token or a query string.
    func testLogLinesRedactURLs() {
        let url = "https://api.telegram.org/bot123456:ABC-DEF/sendMessage?chat_id=1"
        let e = event("send failed: POST \(url)", ["url": "\(url)", "error": "request to \(url) timed out"])
        for json in [false, true] {
            let handler = PinGlassLogHandler(component: "deliver", json: json, level: .info)
            let line = json ? handler.jsonLine(e, e.metadata!) : handler.textLine(e, e.metadata!)
            XCTAssertFalse(line.contains("ABC-DEF"), line)
            XCTAssertFalse(line.contains("123456"), line)
            XCTAssertFalse(line.contains("chat_id"), line)
            XCTAssertTrue(line.contains("https://api.telegram.org/…"), line)
        }
    }

    /// A timed-out request's error (which ends up in logs via `TBankError` and friends)
    /// names the host and the path before the token, nothing more.
    func testHTTPClientErrorsShowOnlyTheRedactedURL() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        try withUnsafeMutablePointer(to: &addr) { p in
            try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                guard bind(fd, sa, len) == 0, listen(fd, 4) == 0, getsockname(fd, sa, &len) == 0 else {
                    struct NoLoopback: Error {}
                    XCTFail("cannot listen on loopback (errno \(errno))")
                    throw NoLoopback()
                }
            }
        }
        let port = Int(UInt16(bigEndian: addr.sin_port))
        // The socket listens but never answers: the request times out.
        let url = "http://127.0.0.1:\(port)/bot123456:ABC-DEF/sendMessage?chat_id=1"
        XCTAssertThrowsError(try HTTPClient().send(HTTPRequest(url: url, timeout: 0.3, connectTimeout: 0.3))) { error in
            XCTAssertEqual("\(error)", "request to http://127.0.0.1:\(port)/… timed out")
        }
        let refused = "http://127.0.0.1:1/bot123456:ABC-DEF/getMe?x=1"
        XCTAssertThrowsError(try HTTPClient().send(HTTPRequest(url: refused, timeout: 2, connectTimeout: 2))) { error in
            XCTAssertTrue("\(error)".contains("(http://127.0.0.1:1/…)"), "\(error)")
            XCTAssertFalse("\(error)".contains("ABC-DEF"), "\(error)")
        }
    }

    /// The promise of App.handle: every log line of a request carries its request id, also
    /// the lines a handler writes through `ctx.log`.
    func testHandlerLogLinesCarryTheRequestID() throws {
        let capture = LogCapture()
        // No TELEGRAM_BOT_TOKEN: the auth step logs an error and answers 503, before any database work.
        let config = try Config(variables: ["DATABASE_URL": "host=/nonexistent dbname=x connect_timeout=1"])
        let app = try InProcessApp(config: config, log: capture.logger(level: .info))
        let response = try app.client.get("/api/payment/status", headers: [("Authorization", "tma query_id=1")])
        XCTAssertEqual(response.status, 503)
        let requestID = try XCTUnwrap(response.header("X-Request-Id"))
        XCTAssertFalse(requestID.isEmpty)
        let lines = try capture.lines.map { try JSON.parse(Array($0.utf8)) }
        let handlerLine = try XCTUnwrap(lines.first { $0["message"]?.stringValue?.hasPrefix("TELEGRAM_BOT_TOKEN is not set") == true },
                                        "\(capture.lines)")
        XCTAssertEqual(handlerLine["request_id"]?.stringValue, requestID)
        XCTAssertEqual(handlerLine["component"]?.stringValue, "http")
        XCTAssertTrue(lines.allSatisfy { $0["request_id"]?.stringValue == requestID })
    }
}

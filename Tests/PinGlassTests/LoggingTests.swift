import XCTest
import Logging
@testable import PinGlass

final class LoggingTests: XCTestCase {
    func testJSONLineCarriesFieldsAndMasksSecrets() throws {
        let handler = PinGlassLogHandler(component: "payments", json: true, level: .info)
        let event = LogEvent(level: .warning, message: "bank said no", metadata: [
            "request_id": "abc123", "tbank_password": "hunter2", "Authorization": "tma xyz", "order_id": "o-1",
        ], source: "t", file: #fileID, function: #function, line: #line)
        let line = handler.jsonLine(event, event.metadata!)
        let v = try JSON.parse(Array(line.utf8.dropLast()))
        XCTAssertEqual(v["level"]?.stringValue, "warning")
        XCTAssertEqual(v["message"]?.stringValue, "bank said no")
        XCTAssertEqual(v["component"]?.stringValue, "payments")
        XCTAssertEqual(v["request_id"]?.stringValue, "abc123")
        XCTAssertEqual(v["order_id"]?.stringValue, "o-1")
        XCTAssertEqual(v["pid"]?.intValue, Int(getpid()))
        XCTAssertNotNil(v["time"]?.stringValue?.hasSuffix("Z"))
        XCTAssertFalse(line.contains("hunter2"))
        XCTAssertFalse(line.contains("tma xyz"))
        XCTAssertTrue(line.hasSuffix("\n"))
    }

    func testTextFormat() {
        let handler = PinGlassLogHandler(component: "http", json: false, level: .info)
        let event = LogEvent(level: .info, message: "hello", metadata: ["api_key": "k"], source: "t",
                             file: #fileID, function: #function, line: #line)
        let line = handler.textLine(event, event.metadata!)
        XCTAssertTrue(line.contains("INFO [http:"))
        XCTAssertTrue(line.contains("api_key=[redacted]"))
    }

    func testISO8601() {
        XCTAssertEqual(System.iso8601(1662771648.25), "2022-09-10T01:00:48.250Z")
    }
}

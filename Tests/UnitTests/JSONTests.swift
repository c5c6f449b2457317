import XCTest
import JSON
@testable import PinGlass

final class JSONTests: XCTestCase {
    func testParsesAndKeepsNumberTextAndKeyOrder() throws {
        let v = try JSON.parse(#"{"b":1.50,"a":[true,null,"x\u00e9\n"],"c":-0.0e1}"#)
        XCTAssertEqual(v["b"], .number("1.50"))
        XCTAssertEqual(v["b"]?.scalarText, "1.50")
        XCTAssertEqual(v["a"]?.arrayValue?.count, 3)
        XCTAssertEqual(v["a"]?.arrayValue?[2].stringValue, "xé\n")
        XCTAssertEqual(v.objectValue?.map(\.0), ["b", "a", "c"])
        XCTAssertEqual(v.serialized, #"{"b":1.50,"a":[true,null,"xé\n"],"c":-0.0e1}"#)
    }

    func testRejectsMalformedInputWithOffset() {
        for bad in ["", "{", #"{"a":}"#, "[1,]", #"{"a" 1}"#, "01", "1.", "tru", #""\x""#, "[1] 2", #""\ud800""#] {
            XCTAssertThrowsError(try JSON.parse(bad), bad) { error in
                XCTAssertTrue(error is JSONParseError, "\(bad): \(error)")
            }
        }
        XCTAssertThrowsError(try JSON.parse("{\"a\":1,}")) { error in
            XCTAssertEqual((error as? JSONParseError)?.offset, 7)
        }
    }

    func testDepthLimit() {
        let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        XCTAssertThrowsError(try JSON.parse(deep))
        XCTAssertNoThrow(try JSON.parse(String(repeating: "[", count: 10) + String(repeating: "]", count: 10)))
    }

    func testEscapesControlCharactersWhenWriting() {
        let s = JSON.string("a\"b\\c\u{01}\u{2028}").serialized
        XCTAssertEqual(s, #""a\"b\\c\u0001\u2028""#)
        XCTAssertEqual(try JSON.parse(s).stringValue, "a\"b\\c\u{01}\u{2028}")
    }

    func testSurrogatePairs() throws {
        XCTAssertEqual(try JSON.parse(#""\ud83d\ude00""#).stringValue, "😀")
    }

    func testIntValueAcceptsWholeFloatsOnly() {
        XCTAssertEqual(JSON.number("100000").intValue, 100000)
        XCTAssertEqual(JSON.number("1e3").intValue, 1000)
        XCTAssertNil(JSON.number("1.5").intValue)
        XCTAssertNil(JSON.string("1").intValue)
    }

    func testDuplicateKeysKeepFirst() throws {
        XCTAssertEqual(try JSON.parse(#"{"a":1,"a":2}"#)["a"], .number("1"))
    }
}

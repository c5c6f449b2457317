import XCTest
import HTTPCore

/// `Accept-Language` negotiation (the return pages: docs/http-api.md#return-pages).
final class AcceptLanguageTests: XCTestCase {
    func pick(_ header: String?) -> String { AcceptLanguage.pick(header, from: ["en", "ru"], fallback: "en") }

    func testWeightsDecide() {
        XCTAssertEqual(pick("ru"), "ru")
        XCTAssertEqual(pick("ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7"), "ru", "Chromium in Russian")
        XCTAssertEqual(pick("en-US,en;q=0.9,ru;q=0.8"), "en")
        XCTAssertEqual(pick("en;q=0.3, ru;q=0.6"), "ru", "the weight, not the order")
        XCTAssertEqual(pick("RU-ru"), "ru", "case-insensitive, a region asks for its language")
        XCTAssertEqual(pick("de-DE,de;q=0.9,ru;q=0.5"), "ru", "a language the page has, after one it has not")
        XCTAssertEqual(pick("ru;q=0.5,en;q=0.5"), "ru", "a tie: the one listed first")
        XCTAssertEqual(pick("en;q=0.5,ru;q=0.5"), "en")
        XCTAssertEqual(pick(" ru ; q=1.0 "), "ru", "spaces around the parts")
    }

    func testRefusalsWildcardsAndNonsenseFallBackToEnglish() {
        XCTAssertEqual(pick(nil), "en")
        XCTAssertEqual(pick(""), "en")
        XCTAssertEqual(pick("de, fr"), "en", "none of ours")
        XCTAssertEqual(pick("ru;q=0"), "en", "q=0 refuses Russian")
        XCTAssertEqual(pick("ru;q=0,en;q=0"), "en", "nothing acceptable")
        XCTAssertEqual(pick("*"), "en", "anything: English")
        XCTAssertEqual(pick("*, ru;q=0"), "en")
        XCTAssertEqual(pick("en;q=0, *"), "ru", "anything but English")
        XCTAssertEqual(pick("*;q=0.5, ru"), "ru", "a named range beats the wildcard")
        XCTAssertEqual(pick("ru;q=abc"), "en", "a malformed weight ignores its range")
        XCTAssertEqual(pick("ru;q=2"), "en", "a weight above 1 is malformed")
        XCTAssertEqual(pick("ru;q=abc, ru;q=0.2, en;q=0.1"), "ru")
        XCTAssertEqual(pick(",,;q=1,ru"), "ru", "empty parts are skipped")
        XCTAssertEqual(AcceptLanguage.pick("fr", from: ["en", "ru"], fallback: "ru"), "ru", "the fallback is the caller's")
    }
}

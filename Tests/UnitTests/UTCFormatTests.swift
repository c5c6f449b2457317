import Foundation
import XCTest
@testable import PinGlass
import Platform
@testable import Providers

/// `System.utc`, the one UTC formatter, in every form the code writes (logs, T-Bank's
/// RedirectDueDate, SigV4's date and scope), checked against Foundation's formatter on times
/// around month, leap-day and year boundaries, and against `System.parseISO8601`.
final class UTCFormatTests: XCTestCase {
    /// 2026-11-29 10:00:00.125 UTC (a fraction a Double holds exactly; `.123` is `.12299…`,
    /// which the formatter cuts to `.122` as the logs always did).
    let example = 1_795_946_400.125

    func testEachFormatOnTheDocumentedExample() {
        XCTAssertEqual(System.utc(example, .iso8601), "2026-11-29T10:00:00.125Z")
        XCTAssertEqual(System.utc(example, .iso8601Offset), "2026-11-29T10:00:00+00:00")
        XCTAssertEqual(System.utc(example, .basic), "20261129T100000Z")
        XCTAssertEqual(System.utc(example, .basicDay), "20261129")
        XCTAssertEqual(System.iso8601(example), System.utc(example, .iso8601))
    }

    /// The callers' forms come from the one formatter: T-Bank's date and SigV4's pair.
    func testCallersUseTheSharedForms() {
        XCTAssertEqual(PaymentCreation.bankDate(example), "2026-11-29T10:00:00+00:00")
        let (amzDate, day) = SigV4Presigner.timestamps(example)
        XCTAssertEqual(amzDate, "20261129T100000Z")
        XCTAssertEqual(day, "20261129")
    }

    func testAgreesWithFoundationAcrossBoundaries() throws {
        func formatter(_ pattern: String) -> DateFormatter {
            let f = DateFormatter()
            f.locale = Locale(identifier: "en_US_POSIX")
            f.timeZone = TimeZone(identifier: "UTC")
            f.dateFormat = pattern
            return f
        }
        let forms: [(System.UTCFormat, DateFormatter)] = [
            (.iso8601Offset, formatter("yyyy-MM-dd'T'HH:mm:ss'+00:00'")),
            (.basic, formatter("yyyyMMdd'T'HHmmss'Z'")),
            (.basicDay, formatter("yyyyMMdd")),
        ]
        let boundaries: [Double] = [
            0, 951_782_400, 1_709_164_800, 1_735_689_599, 1_735_689_600, 1_798_761_599, 4_107_542_399,
        ]
        let offsets: [Double] = [-86_400, -1, 0, 1, 0.5, 59.999]
        var times: [Double] = []
        for b in boundaries { for o in offsets where b + o >= 0 { times.append(b + o) } }
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        for _ in 0..<500 {   // spread over 1970…2100, fixed seed so a failure repeats
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let whole = Double(seed >> 32)
            let fraction = Double(seed & 0xFFFF) / 65_536
            times.append(whole + fraction)
        }
        let millis = formatter("yyyy-MM-dd'T'HH:mm:ss")
        for t in times {
            let second: Double = t.rounded(.down)
            let date = Date(timeIntervalSince1970: second)
            for (format, reference) in forms {
                XCTAssertEqual(System.utc(t, format), reference.string(from: date), "\(t) \(format)")
            }
            let iso = System.utc(t, .iso8601)
            let ms = Int((t - second) * 1000)
            let expected: String = millis.string(from: date) + String(format: ".%03dZ", ms)
            XCTAssertEqual(iso, expected, "\(t)")
            let parsed = try XCTUnwrap(System.parseISO8601(iso), iso)
            XCTAssertEqual(parsed, second + Double(ms) / 1000, accuracy: 1e-6, iso)
        }
    }
}

import XCTest
import Logging
import Postgres
@testable import PinGlass

/// `KnownOutcome`: a write retried while the database is unreachable, until the lease's
/// end, and never for any other error. The clock and the sleep are the test's.
final class KnownOutcomeTests: XCTestCase {
    var now = 100.0
    var slept: [Double] = []
    let log = Logger(label: "test")

    func holder() -> KnownOutcome {
        var k = KnownOutcome()
        k.clock = { self.now }
        k.sleep = { self.slept.append($0); self.now += $0 }
        return k
    }

    func testAnOutageIsRiddenOutAndTheWriteRunsOnceItIsBack() throws {
        var tries = 0
        let value = try holder().record(heldUntil: 120, what: "x", log: log) { () throws -> Int in
            tries += 1
            if tries == 1 { throw PostgresError.connectionLost("terminating connection due to administrator command") }
            if tries < 4 { throw PostgresError.connectionFailed("no such file or directory") }
            return 42
        }
        XCTAssertEqual(value, 42)
        XCTAssertEqual(tries, 4)
        XCTAssertEqual(slept, [0.5, 0.5, 0.5])
    }

    func testTheHoldEndsWithTheLease() {
        var tries = 0
        XCTAssertThrowsError(try holder().record(heldUntil: 105, what: "x", log: log) { () throws -> Void in
            tries += 1
            throw PostgresError.commitOutcomeUnknown("server closed the connection")
        }) { XCTAssertEqual($0 as? PostgresError, .commitOutcomeUnknown("server closed the connection")) }
        XCTAssertEqual(tries, 10, "every half second until the lease's end, then the error")
        XCTAssertLessThanOrEqual(now, 105)
    }

    func testAnyOtherErrorIsThrownAtOnce() {
        var tries = 0
        XCTAssertThrowsError(try holder().record(heldUntil: 200, what: "x", log: log) { () throws -> Void in
            tries += 1
            throw PostgresError.server(sqlState: "23514", message: "check violation")
        })
        XCTAssertEqual(tries, 1)
        XCTAssertEqual(slept, [])
    }
}

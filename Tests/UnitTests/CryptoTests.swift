import XCTest
import LibCrypto
@testable import PinGlass

final class CryptoTests: XCTestCase {
    func testSHA256AndHMACVectors() {
        XCTAssertEqual(Crypto.hex(Crypto.sha256(Array("abc".utf8))),
                       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(Crypto.hex(Crypto.hmacSHA256(key: Array("key".utf8),
                                                    message: Array("The quick brown fox jumps over the lazy dog".utf8))),
                       "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8")
    }

    func testConstantTimeEqual() {
        XCTAssertTrue(Crypto.constantTimeEqual([1, 2, 3], [1, 2, 3]))
        XCTAssertFalse(Crypto.constantTimeEqual([1, 2, 3], [1, 2, 4]))
        XCTAssertFalse(Crypto.constantTimeEqual([1, 2, 3], [1, 2]))
    }

    func testHexRoundTripAndUUIDShape() {
        let bytes = Crypto.randomBytes(32)
        XCTAssertEqual(Crypto.unhex(Crypto.hex(bytes)), bytes)
        XCTAssertNil(Crypto.unhex("zz"))
        let u = Crypto.uuid()
        XCTAssertEqual(u.count, 36)
        XCTAssertEqual(Array(u)[14], "4")
        XCTAssertNotEqual(Crypto.uuid(), u)
    }
}

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

/// PBKDF2-HMAC-SHA256 and the stored password strings (docs/admin.md#accounts).
final class PasswordHashTests: XCTestCase {
    /// RFC 7914 §11's PBKDF2-HMAC-SHA256 vector: libcrypto is called the right way.
    func testPBKDF2MatchesThePublishedVector() {
        let out = PasswordHash.pbkdf2SHA256(password: Array("passwd".utf8), salt: Array("salt".utf8), iterations: 1, length: 64)
        XCTAssertEqual(out.map(Crypto.hex), "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783")
    }

    func testAStoredHashVerifiesItsPasswordOnly() {
        let stored = PasswordHash.make("correct horse battery")
        let parts = stored.split(separator: "$")
        XCTAssertEqual(parts.count, 4)
        XCTAssertEqual(parts[0], "pbkdf2-sha256")
        XCTAssertEqual(parts[1], "600000")
        XCTAssertTrue(PasswordHash.verify("correct horse battery", against: stored))
        XCTAssertFalse(PasswordHash.verify("correct horse batterY", against: stored))
        XCTAssertFalse(PasswordHash.verify("", against: stored))
        XCTAssertNotEqual(PasswordHash.make("correct horse battery"), stored, "a fresh salt each time")
        // Malformed or weakened strings never verify.
        let weak = "pbkdf2-sha256$1$" + parts[2] + "$" + parts[3]
        for bad in ["", "x", weak, "pbkdf2-sha1$600000$" + parts[2] + "$" + parts[3], stored + "$", "pbkdf2-sha256$600000$$" + parts[3]] {
            XCTAssertFalse(PasswordHash.verify("correct horse battery", against: bad), bad)
        }
    }
}

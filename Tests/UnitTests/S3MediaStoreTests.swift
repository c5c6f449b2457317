import XCTest
import HTTPClient
import PinGlass
import PinGlassTesting
import LibCrypto
import Platform
import Providers

/// The S3 backend against a real S3-compatible server (moto, started by scripts/test.sh),
/// with moto checking every request's signature. Without the server these tests fail.
final class S3MediaStoreTests: XCTestCase {
    let jpeg: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0] + Array("not much of a photo".utf8)
    let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + Array("a different one".utf8)

    /// The server with signature checks on. Called in each test (not setUp) so a missing
    /// server is a plain failure of every test.
    func server() throws -> MotoS3 {
        let moto = try MotoS3.shared()
        try moto.requireSignatures(true)
        return moto
    }

    func testPutGetOverwriteDelete() throws {
        let moto = try server()
        let store = moto.store()
        let key = MediaKeys.reference(contentType: "image/jpeg")
        try store.put(key: key, bytes: jpeg, contentType: "image/jpeg")
        XCTAssertEqual(try store.get(key: key), jpeg)
        try store.put(key: key, bytes: png, contentType: "image/png")
        XCTAssertEqual(try store.get(key: key), png, "a retried upload overwrites")
        try store.delete(key: key)
        XCTAssertThrowsError(try store.get(key: key)) { XCTAssertEqual($0 as? MediaStoreError, .notFound(key: key)) }
        XCTAssertNoThrow(try store.delete(key: key), "deleting a missing object is not an error")
    }

    /// A reference photo at the 10 MB limit (curl sends it after `Expect: 100-continue`).
    func testLargeObject() throws {
        let store = try server().store()
        let key = MediaKeys.reference(contentType: "image/jpeg")
        let big = jpeg + (0..<(10 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try store.put(key: key, bytes: big, contentType: "image/jpeg")
        XCTAssertEqual(try store.get(key: key), big)
        try store.delete(key: key)
    }

    func testContentTypeIsStored() throws {
        let moto = try server()
        let store = moto.store()
        let key = MediaKeys.result(jobID: 7, taskID: 3, contentType: "image/png", secret: "0123456789abcdef0123")
        try store.put(key: key, bytes: png, contentType: "image/png")
        let response = try moto.signed("GET", "/\(moto.bucket)/\(key)")
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.header("content-type"), "image/png")
        XCTAssertEqual(response.body, png)
    }

    func testMissingKeyIsNotFound() throws {
        let moto = try server()
        XCTAssertThrowsError(try moto.store().get(key: "references/never-stored.jpg")) {
            XCTAssertEqual($0 as? MediaStoreError, .notFound(key: "references/never-stored.jpg"))
        }
    }

    func testKeysLeavingTheBucketAreRefused() throws {
        let moto = try server()
        for key in ["", "/etc/passwd", "references/../x.jpg", "a//b.jpg", "./a.jpg"] {
            XCTAssertThrowsError(try moto.store().put(key: key, bytes: jpeg, contentType: "image/jpeg"), key)
        }
    }

    /// Moto verifies the SigV4 signature against the key pair: a wrong secret or an unknown
    /// key id is refused with 403, and the error names neither the secret nor the URL's query.
    func testWrongCredentialsAreRefusedWithoutShowingThem() throws {
        let moto = try server()
        let key = MediaKeys.reference(contentType: "image/jpeg")
        let wrongSecret = moto.store(secretAccessKey: "wrong-secret-wrong-secret")
        XCTAssertThrowsError(try wrongSecret.put(key: key, bytes: jpeg, contentType: "image/jpeg")) { error in
            XCTAssertEqual("\(error)", "media storage unavailable: S3 PUT answered 403 SignatureDoesNotMatch")
        }
        XCTAssertThrowsError(try wrongSecret.get(key: key)) { XCTAssertFalse("\($0)".contains("wrong-secret")) }
        let unknownKey = moto.store(accessKeyID: "AKIAUNKNOWNUNKNOWN00", secretAccessKey: "whatever-whatever")
        XCTAssertThrowsError(try unknownKey.put(key: key, bytes: jpeg, contentType: "image/jpeg")) { error in
            XCTAssertEqual("\(error)", "media storage unavailable: S3 PUT answered 403 InvalidAccessKeyId")
        }
        XCTAssertThrowsError(try moto.store().get(key: key), "nothing was stored") {
            XCTAssertEqual($0 as? MediaStoreError, .notFound(key: key))
        }
    }

    /// The presigned GET link serves the bytes with their type to a client without
    /// credentials (curl). Moto cannot check query-string signatures (with authentication on
    /// it answers such a request 500; off, it serves any signature, even a forged one), so
    /// the signature itself is proven by the pinned vectors of SigV4Tests.
    func testPresignedURLServesTheObject() throws {
        let moto = try server()
        let store = moto.store()
        let key = MediaKeys.reference(contentType: "image/jpeg")
        try store.put(key: key, bytes: jpeg, contentType: "image/jpeg")
        let url = store.signedURL(key: key, expiresIn: MediaLinks.apiTTL, now: System.now())
        XCTAssertTrue(url.hasPrefix("\(moto.url)/\(moto.bucket)/\(key)?X-Amz-Algorithm=AWS4-HMAC-SHA256&"), url)
        XCTAssertTrue(url.contains("&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature="), url)
        try moto.requireSignatures(false)
        defer { try? moto.requireSignatures(true) }
        let dir = try TestEnvironment.makeTempDir("presigned")
        let (status, out, err) = try Subprocess.capture("/usr/bin/curl", ["-s", "-o", dir + "/body", "-w", "%{http_code} %{content_type}", url])
        XCTAssertEqual(status, 0, err)
        XCTAssertEqual(out, "200 image/jpeg")
        XCTAssertEqual(Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/body"))), jpeg)
    }

    /// No answer, a refused connection or a 5xx: `unavailable` (the caller retries).
    func testUnreachableOrFailingStoreIsUnavailable() throws {
        func assertUnavailable(_ endpoint: String, timeout: Double = 5, _ contains: String, line: UInt = #line) {
            let store = S3MediaStore(endpoint: endpoint, bucket: "b", accessKeyID: "AKID", secretAccessKey: "sec-ret-sec-ret", timeout: timeout)
            XCTAssertThrowsError(try store.put(key: "references/a.jpg", bytes: jpeg, contentType: "image/jpeg"), line: line) { error in
                guard case .unavailable(let why)? = error as? MediaStoreError else { return XCTFail("\(error)", line: line) }
                XCTAssertTrue(why.contains(contains), why, line: line)
                XCTAssertFalse(why.contains("sec-ret"), why, line: line)
            }
        }
        let silent = try LoopbackServer(answer: nil)
        defer { silent.stop() }
        assertUnavailable(silent.url, timeout: 0.5, "timed out")
        assertUnavailable("http://127.0.0.1:1", "transport error")
        for status in ["500 Internal Server Error", "503 Slow Down"] {
            let failing = try LoopbackServer(answer: "HTTP/1.1 \(status)\r\nContent-Length: 0\r\n\r\n")
            defer { failing.stop() }
            assertUnavailable(failing.url, "answered \(status.prefix(3))")
            XCTAssertTrue(failing.requests.first?.contains("x-amz-content-sha256: \(Crypto.hex(Crypto.sha256(jpeg)))") == true)
        }
    }

    /// GET and DELETE carry the hash of an empty body; PUT the hash of its body and its type.
    func testEveryRequestCarriesThePayloadHash() throws {
        let server = try LoopbackServer(answer: "HTTP/1.1 204 No Content\r\n\r\n")
        defer { server.stop() }
        let store = S3MediaStore(endpoint: server.url, bucket: "b", accessKeyID: "AKID", secretAccessKey: "secret-secret")
        try store.put(key: "k.jpg", bytes: jpeg, contentType: "image/jpeg")
        _ = try store.get(key: "k.jpg")
        try store.delete(key: "k.jpg")
        let sent = server.requests
        XCTAssertEqual(sent.count, 3)
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        XCTAssertTrue(sent[0].hasPrefix("PUT /b/k.jpg "), sent[0])
        XCTAssertTrue(sent[0].contains("Content-Type: image/jpeg\r\n"), sent[0])
        XCTAssertTrue(sent[0].contains("x-amz-content-sha256: \(Crypto.hex(Crypto.sha256(jpeg)))\r\n"), sent[0])
        XCTAssertTrue(sent[0].contains("SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date,"), sent[0])
        XCTAssertTrue(sent[1].hasPrefix("GET /b/k.jpg "), sent[1])
        XCTAssertTrue(sent[2].hasPrefix("DELETE /b/k.jpg "), sent[2])
        for request in sent[1...] {
            XCTAssertTrue(request.contains("x-amz-content-sha256: \(empty)\r\n"), request)
            XCTAssertTrue(request.contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date,"), request)
        }
    }
}

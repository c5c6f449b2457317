import XCTest
import PinGlass
import Providers

/// Presigned GET links (SigV4 in the query string), computed by us with libcrypto's HMAC and
/// pinned to signatures computed elsewhere (AWS's documentation, botocore).
final class SigV4Tests: XCTestCase {
    /// AWS's documented presign example ("Authenticating Requests: Using Query Parameters",
    /// GET examplebucket/test.txt, 2013-05-24, 86400 s): signature aeeed9bb…
    func testPresignedURLMatchesAWSDocumentedExample() {
        let signer = SigV4Presigner(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                                    region: "us-east-1")
        XCTAssertEqual(signer.presignedGET("https://examplebucket.s3.amazonaws.com/test.txt", expiresIn: 86400, now: 1369353600),
                       "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                       + "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
                       + "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
                       + "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
    }

    /// Path-style links as S3MediaStore makes them (a port in the host, R2's region `auto`, a
    /// key with `~`), pinned to botocore 1.43 `S3SigV4QueryAuth` at 2026-11-29T11:45:02Z.
    func testPresignedURLsMatchBotocore() {
        let local = S3MediaStore(endpoint: "http://127.0.0.1:9000/", bucket: "pinglass-media", region: "auto",
                                 accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
        XCTAssertEqual(local.signedURL(key: "references/0123456789abcdef0123456789abcdef.jpg", expiresIn: 3600, now: 1795952702.9),
                       "http://127.0.0.1:9000/pinglass-media/references/0123456789abcdef0123456789abcdef.jpg"
                       + "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20261129%2Fauto%2Fs3%2Faws4_request"
                       + "&X-Amz-Date=20261129T114502Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host"
                       + "&X-Amz-Signature=f15299e3311f309f979e78cc13074683e7ba34b9b7d29baf4362d5fbe6aca8e8")
        let r2 = S3MediaStore(endpoint: "https://acct.r2.cloudflarestorage.com", bucket: "pinglass", region: "auto",
                              accessKeyID: "AKID", secretAccessKey: "SECRET")
        XCTAssertTrue(r2.signedURL(key: "generated/a~b_c-d.png", expiresIn: 86400, now: 1795952702).hasSuffix(
            "&X-Amz-Signature=3ef30b327548fb5bae8d96c13b974bc2e70069d867c020df37a32d0e99b1acc1"))
    }

    func testPresignedURLValidityIsClampedToSevenDays() {
        let signer = SigV4Presigner(accessKeyID: "AKID", secretAccessKey: "SECRET", region: "auto")
        XCTAssertTrue(signer.presignedGET("https://h/b/k", expiresIn: 30 * 86400, now: 0).contains("X-Amz-Expires=604800&"))
        XCTAssertTrue(signer.presignedGET("https://h/b/k", expiresIn: 0, now: 0).contains("X-Amz-Expires=1&"))
        XCTAssertFalse(signer.presignedGET("https://h/b/k", expiresIn: 60, now: 0).contains("SECRET"))
    }

    func testURIEncoding() {
        XCTAssertEqual(SigV4Presigner.encode("a b/c~d_e-f.g+h=é"), "a%20b%2Fc~d_e-f.g%2Bh%3D%C3%A9")
        XCTAssertEqual(SigV4Presigner.encode("generated/x y.jpg", keepSlash: true), "generated/x%20y.jpg")
    }
}

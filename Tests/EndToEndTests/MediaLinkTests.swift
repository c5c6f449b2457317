import XCTest
import Foundation
import HTTPClient
import PinGlass
import PinGlassTesting
import Platform
import Providers

/// Stored photos through real nginx (nginx/local.conf.in, the secret rendered in as for
/// `make run`): a link from FileMediaStore opens until it expires; anything else is 403.
final class MediaLinkTests: DatabaseTestCase {
    var stack: Stack!
    let jpeg: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0] + Array("a face, in theory".utf8)
    let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + Array("another face".utf8)

    override func setUpWithError() throws {
        try super.setUpWithError()
        stack = try Stack(database: db, workers: 1)
    }

    override func tearDown() {
        stack?.stop()
        super.tearDown()
    }

    /// Status and body of a GET sent as written (`--path-as-is`: no client-side `..` folding).
    func fetch(_ url: String) throws -> (Int, [UInt8], String) {
        let dir = try TestEnvironment.makeTempDir("fetch")
        let (rc, out, err) = try Subprocess.capture("/usr/bin/curl", ["-s", "--path-as-is", "-o", dir + "/body",
                                                                     "-w", "%{http_code} %{content_type}", url])
        XCTAssertEqual(rc, 0, err)
        let parts = out.split(separator: " ", maxSplits: 1).map(String.init)
        let body = (try? Data(contentsOf: URL(fileURLWithPath: dir + "/body"))).map { Array($0) } ?? []
        return (Int(parts.first ?? "") ?? 0, body, parts.count > 1 ? parts[1] : "")
    }

    func testSignedLinkServesTheBytesWithTheirType() throws {
        let media = stack.media
        for (bytes, type) in [(jpeg, "image/jpeg"), (png, "image/png")] {
            let key = MediaKeys.reference(contentType: type)
            try media.put(key: key, bytes: bytes, contentType: type)
            let (status, body, contentType) = try fetch(media.signedURL(key: key, expiresIn: MediaLinks.apiTTL, now: System.now()))
            XCTAssertEqual(status, 200, type)
            XCTAssertEqual(body, bytes, type)
            XCTAssertEqual(contentType, type)
        }
    }

    func testMissingForgedOrExpiredLinksAre403() throws {
        let media = stack.media
        let key = MediaKeys.reference(contentType: "image/jpeg")
        let other = MediaKeys.reference(contentType: "image/jpeg")
        try media.put(key: key, bytes: jpeg, contentType: "image/jpeg")
        try media.put(key: other, bytes: jpeg, contentType: "image/jpeg")
        let link = media.signedURL(key: key, expiresIn: 600, now: System.now())
        let query = String(link[link.firstIndex(of: "?")!...])
        let md5 = String(query.dropFirst("?md5=".count).prefix { $0 != "&" })
        let tampered = link.replacingOccurrences(of: md5, with: (md5.first == "A" ? "B" : "A") + md5.dropFirst())
        let wrongSecret = FileMediaStore(directory: media.directory, publicURL: media.publicURL, secret: "not-the-secret-of-this-nginx")
        let cases: [(String, String)] = [
            ("no query", "\(stack.baseURL)/media/\(key)"),
            ("tampered md5", tampered),
            ("signed with another secret", wrongSecret.signedURL(key: key, expiresIn: 600, now: System.now())),
            ("expired", media.signedURL(key: key, expiresIn: 60, now: System.now() - 3600)),
            ("expires moved later", link.replacingOccurrences(of: "expires=", with: "expires=1")),
            ("md5 only", "\(stack.baseURL)/media/\(key)?md5=\(md5)"),
            ("expires only", "\(stack.baseURL)/media/\(key)?expires=9999999999"),
            ("another object's signature", "\(stack.baseURL)/media/\(other)\(query)"),
        ]
        for (what, url) in cases {
            XCTAssertEqual(try fetch(url).0, 403, what)
        }
        XCTAssertEqual(try fetch(link).0, 200, "the untouched link still opens")
    }

    /// Nothing outside STORAGE_DIR is reachable through /media/, not even with a link signed
    /// by the real secret for a path that climbs out; nor is the folder listed.
    func testPathTraversalReachesNothing() throws {
        let media = stack.media
        let key = MediaKeys.reference(contentType: "image/jpeg")
        try media.put(key: key, bytes: jpeg, contentType: "image/jpeg")
        let link = media.signedURL(key: key, expiresIn: 600, now: System.now())
        let query = String(link[link.firstIndex(of: "?")!...])
        // nginx.conf sits beside the media folder (Stack's layout): <dir>/nginx/nginx.conf.
        let attempts = [
            "\(stack.baseURL)/media/../nginx/nginx.conf\(query)",
            "\(stack.baseURL)/media/..%2fnginx%2fnginx.conf\(query)",
            "\(stack.baseURL)/media/%2e%2e/nginx/nginx.conf\(query)",
            "\(stack.baseURL)/media/references/../../nginx/nginx.conf\(query)",
            media.signedURL(key: "../nginx/nginx.conf", expiresIn: 600, now: System.now()),
            media.signedURL(key: "references/../../nginx/nginx.conf", expiresIn: 600, now: System.now()),
            media.signedURL(key: "references", expiresIn: 600, now: System.now()),
            media.signedURL(key: "references/", expiresIn: 600, now: System.now()),
        ]
        for url in attempts {
            let (status, body, _) = try fetch(url)
            XCTAssertTrue([301, 400, 403, 404].contains(status), "\(status) for \(url)")
            let text = String(decoding: body, as: UTF8.self)
            XCTAssertFalse(text.contains("worker_processes") || text.contains(key.dropFirst("references/".count)), url)
        }
    }
}

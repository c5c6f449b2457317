import Foundation
import HTTPClient
import PinGlassTesting
import Postgres
import XCTest
@testable import PinGlass
@testable import Providers

/// The orphan pass of `pinglass prune` over what a real bucket may hold: keys that are not
/// media keys (a `references/` folder marker, empty or `..` segments) and an object the store
/// will not delete are skipped and logged, and the pass goes on; an S3 listing larger than
/// S3's 1000 keys per answer is made of several requests.
final class PruneKeysTests: PipelineTestCase {
    func testKeysThatAreNotMediaKeysAndFailedDeletesAreSkipped() throws {
        let orphans = (0..<3).map { _ in MediaKeys.reference(contentType: "image/jpeg") }.sorted()
        for key in orphans { try deps.media.put(key: key, bytes: GenerationFixtures.jpeg(1), contentType: "image/jpeg") }
        let store = BucketLike(deps.media, extraKeys: ["references/", "references//x.jpg", "references/a/../b.jpg"],
                               undeletable: orphans[1])
        deps.media = store

        // Two days on: every object is past the grace period.
        let report = try Pruner(deps: deps).runOnce(now: deps.clock() + 2 * 86_400 + 7200, deadline: deps.clock() + 55)
        XCTAssertEqual(report.orphanedObjects, 2)
        XCTAssertEqual(report.objectsSkipped, 4, "three keys that are not media keys, one failed delete")
        XCTAssertFalse(store.deleteAsked.contains { !MediaKeys.isValid($0) }, "\(store.deleteAsked)")
        XCTAssertEqual(try store.list(prefix: "references/", after: nil, limit: 100).map(\.key).filter(MediaKeys.isValid), [orphans[1]])
    }

    /// S3 answers at most 1000 keys whatever `max-keys` asks (a server here that behaves so,
    /// with `IsTruncated`): a page of 1200 is two requests, none asking for more than 1000.
    func testS3ListingsLargerThanOneAnswerArePaged() throws {
        let keys = (0..<1500).map { String(format: "references/k%05d.jpg", $0) }
        let server = try LoopbackHTTPServer { req in
            let query = Dictionary(uniqueKeysWithValues: (req.path.split(separator: "?").last ?? "").split(separator: "&").map {
                let kv = $0.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? String($0) }
                return (kv[0], kv.count > 1 ? kv[1] : "")
            })
            let asked = Int(query["max-keys"] ?? "1000") ?? 1000
            let rest = keys.filter { $0.hasPrefix(query["prefix"] ?? "") && $0 > (query["start-after"] ?? "") }
            let page = rest.prefix(min(asked, 1000))
            let contents = page.map { "<Contents><Key>\($0)</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified></Contents>" }
            let xml = "<ListBucketResult><IsTruncated>\(rest.count > page.count)</IsTruncated>\(contents.joined())</ListBucketResult>"
            return .init(status: 200, body: Array(xml.utf8))
        }
        defer { server.stop() }
        let store = S3MediaStore(endpoint: server.url, bucket: "b", accessKeyID: "AKIDEXAMPLE", secretAccessKey: "secret")
        let first = try store.list(prefix: "references/", after: nil, limit: 1200).map(\.key)
        XCTAssertEqual(first.count, 1200)
        XCTAssertTrue(first == Array(keys.prefix(1200)), "the first 1200 keys in order")
        let rest = try store.list(prefix: "references/", after: keys[1199], limit: 1200).map(\.key)
        XCTAssertEqual(rest.count, 300, "a short page is the last")
        XCTAssertTrue(rest == Array(keys.suffix(300)))
        let asked = server.received.compactMap { $0.path.split(separator: "max-keys=").last.flatMap { Int($0.prefix { $0.isNumber }) } }
        XCTAssertEqual(asked, [1000, 200, 1000], "never more than S3 answers at once")
    }
}

/// A real store that also lists keys a shared bucket may hold but `MediaKeys` never makes,
/// and refuses to delete one object (a permission the bucket lacks).
final class BucketLike: MediaStore, @unchecked Sendable {
    let inner: any MediaStore
    let extraKeys: [String]
    let undeletable: String
    private(set) var deleteAsked: [String] = []
    init(_ inner: any MediaStore, extraKeys: [String], undeletable: String) {
        self.inner = inner; self.extraKeys = extraKeys; self.undeletable = undeletable
    }
    func put(key: String, bytes: [UInt8], contentType: String) throws { try inner.put(key: key, bytes: bytes, contentType: contentType) }
    func get(key: String) throws -> [UInt8] { try inner.get(key: key) }
    func delete(key: String) throws {
        deleteAsked.append(key)
        if key == undeletable { throw MediaStoreError.unavailable("S3 DELETE answered 403 AccessDenied") }
        try inner.delete(key: key)
    }
    func signedURL(key: String, expiresIn: Int, now: Double) -> String { inner.signedURL(key: key, expiresIn: expiresIn, now: now) }
    func list(prefix: String, after: String?, limit: Int) throws -> [StoredObject] {
        let extra = extraKeys.filter { key in key.hasPrefix(prefix) && (after.map { key > $0 } ?? true) }
            .map { StoredObject(key: $0, modifiedAt: 0) }
        return Array((try inner.list(prefix: prefix, after: after, limit: limit) + extra).sorted { $0.key < $1.key }.prefix(limit))
    }
}

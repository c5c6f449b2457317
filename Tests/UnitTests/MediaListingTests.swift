import Foundation
import PinGlassTesting
import XCTest
import Platform
@testable import PinGlass
@testable import Providers

/// `MediaStore.list`, what `pinglass prune` pages through to find objects without rows: a
/// folder's objects in key order, after a key, at most a page, each with when it was written.
/// The S3 store against moto (signatures checked), the file store on a real folder.
final class MediaListingTests: XCTestCase {
    let jpeg: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0] + Array("listed".utf8)

    func checkListing(_ store: any MediaStore) throws {
        let before = System.now() - 5
        let refs = (0..<5).map { _ in MediaKeys.reference(contentType: "image/jpeg") }.sorted()
        for key in refs { try store.put(key: key, bytes: jpeg, contentType: "image/jpeg") }
        let result = MediaKeys.result(jobID: 1, taskID: 2, contentType: "image/png", secret: "0123456789abcdef0123")
        try store.put(key: result, bytes: jpeg, contentType: "image/png")

        let all = try store.list(prefix: "references/", after: nil, limit: 100)
        XCTAssertEqual(all.map(\.key), refs, "the folder's objects only, in key order")
        for object in all { XCTAssertTrue(object.modifiedAt >= before && object.modifiedAt <= System.now() + 5, "\(object)") }
        let first = try store.list(prefix: "references/", after: nil, limit: 2)
        XCTAssertEqual(first.map(\.key), Array(refs.prefix(2)))
        let next = try store.list(prefix: "references/", after: first.last?.key, limit: 2)
        XCTAssertEqual(next.map(\.key), Array(refs[2..<4]))
        XCTAssertEqual(try store.list(prefix: "references/", after: refs[3], limit: 2).map(\.key), [refs[4]], "a short page is the last")
        XCTAssertEqual(try store.list(prefix: "generated/", after: nil, limit: 100).map(\.key), [result])
        try store.delete(key: refs[0])
        XCTAssertEqual(try store.list(prefix: "references/", after: nil, limit: 100).map(\.key), Array(refs.dropFirst()))
    }

    func testS3ListsPagesInKeyOrder() throws {
        let moto = try MotoS3.shared()
        try moto.requireSignatures(true)
        let bucket = "pinglass-list-" + UUID().uuidString.prefix(8).lowercased()
        XCTAssertEqual(try moto.signed("PUT", "/" + bucket).status, 200)
        try MotoS3.withoutListSignatures(moto) {
            try checkListing(S3MediaStore(endpoint: moto.url, bucket: bucket, region: moto.region, accessKeyID: moto.accessKeyID,
                                          secretAccessKey: moto.secretAccessKey))
        }
    }

    func testFilesListPagesInKeyOrderWithTheirModificationTimes() throws {
        let dir = try TestEnvironment.makeTempDir("list-media")
        let store = FileMediaStore(directory: dir, publicURL: "http://127.0.0.1/media", secret: "s")
        try checkListing(store)
        // The time is the file's: an old file lists as old.
        let key = try XCTUnwrap(try store.list(prefix: "generated/", after: nil, limit: 1).first?.key)
        let old = Date(timeIntervalSinceNow: -2 * 86_400)
        try FileManager.default.setAttributes([.modificationDate: old], ofItemAtPath: dir + "/" + key)
        let listed = try XCTUnwrap(try store.list(prefix: "generated/", after: nil, limit: 1).first)
        XCTAssertEqual(listed.modifiedAt, old.timeIntervalSince1970, accuracy: 1)
        XCTAssertEqual(try FileMediaStore(directory: dir + "/none", publicURL: "http://127.0.0.1/media", secret: "s")
            .list(prefix: "references/", after: nil, limit: 10), [], "a folder not made yet holds nothing")
    }

    /// A pass pages through a folder from one walk (not a walk of the whole tree per page):
    /// an object deleted meanwhile is left out of its page, which fills up with the next
    /// ones; an object written after the walk waits for the next pass.
    func testFilePagesOfAPassComeFromOneWalk() throws {
        let dir = try TestEnvironment.makeTempDir("list-once")
        let store = FileMediaStore(directory: dir, publicURL: "http://127.0.0.1/media", secret: "s")
        let refs = (0..<5).map { _ in MediaKeys.reference(contentType: "image/jpeg") }.sorted()
        for key in refs { try store.put(key: key, bytes: jpeg, contentType: "image/jpeg") }

        let first = try store.list(prefix: "references/", after: nil, limit: 2)
        XCTAssertEqual(first.map(\.key), Array(refs.prefix(2)))
        let late = "references/zzzz.jpg"
        try store.put(key: late, bytes: jpeg, contentType: "image/jpeg")
        try store.delete(key: refs[3])
        let second = try store.list(prefix: "references/", after: first.last?.key, limit: 2)
        XCTAssertEqual(second.map(\.key), [refs[2], refs[4]], "the deleted one is left out, the page filled")
        XCTAssertEqual(try store.list(prefix: "references/", after: refs[4], limit: 2).map(\.key), [],
                       "written after the walk: the next pass finds it")
        XCTAssertEqual(store.walks, 1, "one walk for the whole pass")

        XCTAssertEqual(try store.list(prefix: "references/", after: nil, limit: 10).map(\.key), [refs[0], refs[1], refs[2], refs[4], late])
        XCTAssertEqual(store.walks, 2)
        XCTAssertEqual(try store.list(prefix: "references/", after: refs[1], limit: 10).map(\.key), [refs[2], refs[4], late],
                       "an `after` that is not where the last page ended walks afresh")
        XCTAssertEqual(store.walks, 3)
    }

    func testS3TimesAreRead() {
        XCTAssertEqual(System.parseISO8601("2026-11-29T10:00:00.000Z"), 1_795_946_400)
        XCTAssertEqual(System.parseISO8601("2026-11-29T10:00:00.5Z"), 1_795_946_400.5)
        XCTAssertEqual(System.parseISO8601("2026-11-29T10:00:00Z"), 1_795_946_400)
        XCTAssertNil(System.parseISO8601("2026-11-29 10:00:00Z"))
        XCTAssertNil(System.parseISO8601("yesterday"))
    }
}

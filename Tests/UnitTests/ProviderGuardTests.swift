import JSON
import PinGlassTesting
import Postgres
import ProviderWire
import XCTest
@testable import PinGlass

/// No provider call goes out while the process holds a database transaction open
/// (docs/reliability.md#R1): each provider `Dependencies` hands out refuses it with
/// `ProviderCallInTransaction` before anything reaches the provider, and the same call
/// outside the transaction goes through.
final class ProviderGuardTests: PipelineTestCase {
    /// Runs `call` inside a transaction and checks it was refused with the guard's error.
    func assertRefusedInTransaction(_ what: String, _ call: () throws -> Void, line: UInt = #line) throws {
        XCTAssertThrowsError(try deps.db().withTransaction { _ in try call() }, what, line: line) {
            XCTAssertTrue($0 is ProviderCallInTransaction, "\(what): \($0)", line: line)
        }
        XCTAssertFalse(deps.database.hasOpenTransaction, "the refusal rolled the transaction back", line: line)
    }

    func testTheBank() throws {
        let bank = FakeBank(state: "CONFIRMED")
        deps.bankFactory = bank.factory
        try assertRefusedInTransaction("Init") {
            _ = try deps.bank(Fixtures.testTerminal, 1).initPayment([("OrderId", .string("o-1")), ("Amount", .number("100"))])
        }
        try assertRefusedInTransaction("GetState") { _ = try deps.bank(Fixtures.testTerminal, 1).getState(paymentID: "1") }
        try assertRefusedInTransaction("Cancel") {
            _ = try deps.bank(Fixtures.testTerminal, 1).cancel(paymentID: "1", amount: nil, externalRequestID: "r-1")
        }
        XCTAssertEqual(bank.calls.count, 0)
        XCTAssertEqual(try deps.bank(Fixtures.testTerminal, 1).getState(paymentID: "1").status, "CONFIRMED", "outside: allowed")
        XCTAssertEqual(bank.calls.map(\.method), ["GetState"])
    }

    func testKie() throws {
        let kie = FakeKie()
        deps.kie = kie
        let request = KieTaskRequest(model: "m", prompt: "p", imageURLs: ["https://media.example/r.jpg"])
        let guarded = try XCTUnwrap(deps.kie)
        try assertRefusedInTransaction("createTask") { _ = try guarded.createTask(request) }
        try assertRefusedInTransaction("recordInfo") { _ = try guarded.recordInfo(taskID: "fake-1") }
        try assertRefusedInTransaction("recordInfo, a batch") {
            try guarded.recordInfo(taskIDs: ["fake-1"], maxPerSecond: 10) { _, _ in XCTFail("no answer may come") }
        }
        XCTAssertEqual(kie.created.count, 0)
        XCTAssertEqual(kie.polled.count, 0)
        XCTAssertEqual(try guarded.createTask(request), "fake-1", "outside: allowed")
        XCTAssertEqual(try guarded.recordInfo(taskID: "fake-1").state, .generating)
    }

    func testTelegram() throws {
        let telegram = FakeTelegram()
        deps.telegram = telegram
        let guarded = try XCTUnwrap(deps.telegram)
        try assertRefusedInTransaction("sendMessage") { _ = try guarded.sendMessage(chatID: 42, text: "hi", html: false) }
        try assertRefusedInTransaction("sendPhoto") { _ = try guarded.sendPhoto(chatID: 42, photo: .url("https://m.example/1.jpg"), caption: nil) }
        try assertRefusedInTransaction("sendMediaGroup") {
            _ = try guarded.sendMediaGroup(chatID: 42, photos: [.url("https://m.example/1.jpg"), .url("https://m.example/2.jpg")], caption: nil)
        }
        XCTAssertEqual(telegram.calls.count, 0)
        _ = try guarded.sendMessage(chatID: 42, text: "hi", html: false)
        XCTAssertEqual(telegram.sent.map(\.method), [.message], "outside: allowed")
    }

    /// The live store of these tests (files under a temporary STORAGE_DIR): nothing written,
    /// read, listed or deleted inside a transaction.
    func testStorage() throws {
        let key = MediaKeys.reference(contentType: "image/jpeg")
        let bytes = GenerationFixtures.jpeg(7)
        try assertRefusedInTransaction("put") { try deps.media.put(key: key, bytes: bytes, contentType: "image/jpeg") }
        XCTAssertThrowsError(try deps.media.get(key: key), "the refused put stored nothing") {
            XCTAssertEqual($0 as? MediaStoreError, .notFound(key: key))
        }
        try deps.media.put(key: key, bytes: bytes, contentType: "image/jpeg")
        try assertRefusedInTransaction("get") { _ = try deps.media.get(key: key) }
        try assertRefusedInTransaction("list") { _ = try deps.media.list(prefix: "references/", after: nil, limit: 10) }
        try assertRefusedInTransaction("delete") { try deps.media.delete(key: key) }
        XCTAssertEqual(try deps.media.get(key: key), bytes, "the refused delete removed nothing")
        XCTAssertEqual(try deps.media.list(prefix: "references/", after: nil, limit: 10).map(\.key), [key])
        try deps.media.delete(key: key)
        XCTAssertThrowsError(try deps.media.get(key: key))
    }

    /// Result downloads, against a real loopback server that must see no request while the
    /// transaction is open.
    func testResultDownloads() throws {
        let png = GenerationFixtures.png(3)
        let server = try LoopbackHTTPServer { _ in .init(status: 200, body: png) }
        defer { server.stop() }
        let download = ResultDownload(allowedHosts: ["127.0.0.1"], maxBytes: 1 << 20, timeout: 5, allowInternalAddresses: true)
        let url = server.url + "/results/1.png"
        try assertRefusedInTransaction("fetch") { _ = try download.fetch(url, via: deps.resultDownloader) }
        try assertRefusedInTransaction("fetchAll") {
            try download.fetchAll([url, url], via: deps.resultDownloader, maxConcurrent: 2) { _, _ in XCTFail("no result may come") }
        }
        XCTAssertEqual(server.received.count, 0)
        let image = try download.fetch(url, via: deps.resultDownloader).get()
        XCTAssertEqual(image.contentType, "image/png", "outside: allowed")
        XCTAssertEqual(image.bytes, png)
        XCTAssertEqual(server.received.map(\.path), ["/results/1.png"])
    }

    /// Only an open transaction refuses a call: after the connection broke (its backend
    /// terminated and reconnecting refused), a cleanup's provider call still goes through.
    func testABrokenConnectionDoesNotBlockProviderCalls() throws {
        let key = MediaKeys.reference(contentType: "image/jpeg")
        try deps.media.put(key: key, bytes: GenerationFixtures.jpeg(5), contentType: "image/jpeg")
        let pid = try deps.db().query("SELECT pg_backend_pid() AS pid")[0].requiredInt("pid")
        let admin = try Connection(TestEnvironment.adminURL())
        try admin.query("ALTER DATABASE \"\(db.name)\" ALLOW_CONNECTIONS false")
        defer { _ = try? admin.query("ALTER DATABASE \"\(db.name)\" ALLOW_CONNECTIONS true") }
        XCTAssertEqual(try admin.query("SELECT pg_terminate_backend($1::int, 5000) AS done", [pid])[0].bool("done"), true,
                       "the backend is gone")
        XCTAssertThrowsError(try deps.db().query("SELECT 1"), "the session is gone and cannot be re-opened")
        XCTAssertFalse(deps.database.isConnected, "libpq knows the connection is broken")
        XCTAssertFalse(deps.database.hasOpenTransaction)
        try deps.media.delete(key: key)
        XCTAssertThrowsError(try deps.media.get(key: key), "the delete went through") {
            XCTAssertEqual($0 as? MediaStoreError, .notFound(key: key))
        }
    }
}

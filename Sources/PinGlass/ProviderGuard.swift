import JSON
import Postgres
import ProviderWire

/// A provider called while a transaction was open: a programming error, refused.
public struct ProviderCallInTransaction: Error, CustomStringConvertible {
    public let call: String
    public var description: String { "\(call) called while a database transaction is open" }
}

/// The one check every provider call passes (docs/reliability.md#R1: never a provider call
/// inside a database transaction; a slow or hung provider would hold the transaction's locks
/// for as long): refused while this process's connection has a transaction open. Only an
/// open transaction counts: a broken connection holds nothing on the server, so the calls
/// after it (a cleanup after a lost connection) go through.
/// `Dependencies` hands out each provider wrapped in one of the forwarders below, which run
/// this check before every call and add nothing else.
struct ProviderGuard {
    let database: Database

    func callable(_ call: String) throws {
        if database.hasOpenTransaction { throw ProviderCallInTransaction(call: call) }
    }
}

struct GuardedBank: BankAPI {
    let inner: any BankAPI
    let check: ProviderGuard

    func initPayment(_ fields: [(String, JSON)]) throws -> BankInit {
        try check.callable("T-Bank Init")
        return try inner.initPayment(fields)
    }
    func getState(paymentID: String) throws -> BankState {
        try check.callable("T-Bank GetState")
        return try inner.getState(paymentID: paymentID)
    }
    func cancel(paymentID: String, amount: Int?, externalRequestID: String, receipt: JSON?) throws -> BankCancel {
        try check.callable("T-Bank Cancel")
        return try inner.cancel(paymentID: paymentID, amount: amount, externalRequestID: externalRequestID, receipt: receipt)
    }
}

final class GuardedKie: KieAPI {
    let inner: any KieAPI
    let check: ProviderGuard
    init(inner: any KieAPI, check: ProviderGuard) { self.inner = inner; self.check = check }

    func createTask(_ request: KieTaskRequest) throws -> String {
        try check.callable("Kie createTask")
        return try inner.createTask(request)
    }
    func recordInfo(taskID: String) throws -> KieTaskInfo {
        try check.callable("Kie recordInfo")
        return try inner.recordInfo(taskID: taskID)
    }
    /// Checked once, at entry, which is enough: the batch runs within this one call on this
    /// thread, and a transaction `each` opens to record an answer is a `withTransaction` scope
    /// closed before `each` returns, so none is open when the batch's next request goes out.
    func recordInfo(taskIDs: [String], maxPerSecond: Int, each: (String, Result<KieTaskInfo, KieError>) -> Void) throws {
        try check.callable("Kie recordInfo")
        try inner.recordInfo(taskIDs: taskIDs, maxPerSecond: maxPerSecond, each: each)
    }
}

final class GuardedTelegram: TelegramAPI {
    let inner: any TelegramAPI
    let check: ProviderGuard
    init(inner: any TelegramAPI, check: ProviderGuard) { self.inner = inner; self.check = check }

    func sendPhoto(chatID: Int64, photo: TelegramMedia, caption: String?) throws -> Int {
        try check.callable("Telegram sendPhoto")
        return try inner.sendPhoto(chatID: chatID, photo: photo, caption: caption)
    }
    func sendMediaGroup(chatID: Int64, photos: [TelegramMedia], caption: String?) throws -> [Int] {
        try check.callable("Telegram sendMediaGroup")
        return try inner.sendMediaGroup(chatID: chatID, photos: photos, caption: caption)
    }
    func sendMessage(chatID: Int64, text: String, html: Bool, keyboard: [[InlineButton]]) throws -> Int {
        try check.callable("Telegram sendMessage")
        return try inner.sendMessage(chatID: chatID, text: text, html: html, keyboard: keyboard)
    }
}

/// `signedURL` is not guarded: it is computed in this process, nothing goes out.
final class GuardedMediaStore: MediaStore {
    let inner: any MediaStore
    let check: ProviderGuard
    init(inner: any MediaStore, check: ProviderGuard) { self.inner = inner; self.check = check }

    func put(key: String, bytes: [UInt8], contentType: String) throws {
        try check.callable("media put")
        try inner.put(key: key, bytes: bytes, contentType: contentType)
    }
    func get(key: String) throws -> [UInt8] {
        try check.callable("media get")
        return try inner.get(key: key)
    }
    func delete(key: String) throws {
        try check.callable("media delete")
        try inner.delete(key: key)
    }
    func signedURL(key: String, expiresIn: Int, now: Double) -> String {
        inner.signedURL(key: key, expiresIn: expiresIn, now: now)
    }
    func list(prefix: String, after: String?, limit: Int) throws -> [StoredObject] {
        try check.callable("media list")
        return try inner.list(prefix: prefix, after: after, limit: limit)
    }
}

final class GuardedResultDownloader: ResultDownloader {
    let inner: any ResultDownloader
    let check: ProviderGuard
    init(inner: any ResultDownloader, check: ProviderGuard) { self.inner = inner; self.check = check }

    /// Checked once, at entry, which is enough: the downloads run within this one call on this
    /// thread, and a transaction `each` opens to store a result is a `withTransaction` scope
    /// closed before `each` returns, so none is open while a transfer is on the wire.
    func download(_ transfers: [ResultTransfer], maxConcurrent: Int,
                  each: (Int, Result<[UInt8], ResultDownloadError>) -> Void) throws {
        try check.callable("result download")
        try inner.download(transfers, maxConcurrent: maxConcurrent, each: each)
    }
}

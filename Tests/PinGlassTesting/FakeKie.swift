import Foundation
import PinGlass
import ProviderWire

/// An in-process `KieAPI` for unit tests of the dispatch and poll duties: records calls
/// (thread-safe), answers createTask with ids `fake-<n>` or a scripted error, and recordInfo
/// from a table the test fills. End-to-end tests use the simulator instead.
///
/// ```swift
/// let kie = FakeKie()
/// deps.kie = kie
/// kie.createErrors = [.rateLimited]          // the next createTask answers 429
/// kie.states["fake-1"] = KieTaskInfo(taskID: "fake-1", state: .success, resultURLs: [url])
/// ```
public final class FakeKie: KieAPI, @unchecked Sendable {
    private let lock = NSLock()
    private var _created: [KieTaskRequest] = []
    private var _polled: [String] = []
    /// Errors the next createTask calls throw, in order.
    public var createErrors: [KieError] = []
    /// Runs inside each createTask before it answers (a test's chance to act in between).
    public var onCreate: ((KieTaskRequest) -> Void)?
    /// recordInfo answers by task id; a missing id answers `generating`.
    public var states: [String: Result<KieTaskInfo, KieError>] = [:]

    public init() {}

    public var created: [KieTaskRequest] { lock.lock(); defer { lock.unlock() }; return _created }
    public var polled: [String] { lock.lock(); defer { lock.unlock() }; return _polled }

    public func createTask(_ request: KieTaskRequest) throws(KieError) -> String {
        onCreate?(request)
        lock.lock()
        defer { lock.unlock() }
        if !createErrors.isEmpty { throw createErrors.removeFirst() }
        _created.append(request)
        return "fake-\(_created.count)"
    }

    public func recordInfo(taskID: String) throws(KieError) -> KieTaskInfo {
        lock.lock()
        _polled.append(taskID)
        let answer = states[taskID]
        lock.unlock()
        switch answer {
        case .success(let info)?: return info
        case .failure(let e)?: throw e
        case nil: return KieTaskInfo(taskID: taskID, state: .generating)
        }
    }

    public func recordInfo(taskIDs: [String], maxPerSecond: Int, each: (String, Result<KieTaskInfo, KieError>) -> Void) {
        for id in taskIDs {
            do { each(id, .success(try recordInfo(taskID: id))) } catch { each(id, .failure(error)) }
        }
    }
}

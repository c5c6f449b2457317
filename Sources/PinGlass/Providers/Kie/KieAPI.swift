import ProviderWire

/// The Kie.ai Market API calls the generation pipeline makes (docs/providers.md#kie-market):
/// `createTask` and `recordInfo`. `KieClient` (the Providers target) talks to Kie (or the
/// simulator); tests of duties may pass an in-process fake through `Dependencies.kie`.
/// Calls fail with `KieError`, or with `ProviderCallInTransaction` when made while this
/// process holds a database transaction open (`Dependencies` refuses them).
///
/// ```swift
/// let taskID = try deps.kie.createTask(KieTaskRequest(model: config.kieModel, prompt: p,
///                                                   imageURLs: refs, aspectRatio: "3:4", callbackURL: cb))
/// deps.kie.recordInfo(taskIDs: ids, maxPerSecond: config.kiePollRPS) { id, result in … }
/// ```
public protocol KieAPI: AnyObject {
    /// Creates a generation task; its id. HTTP 200 means created, not done.
    func createTask(_ request: KieTaskRequest) throws -> String
    /// The state of one task (authoritative; a callback is only a hint).
    func recordInfo(taskID: String) throws -> KieTaskInfo
    /// Many tasks at once (concurrent transfers, at most `maxPerSecond` started per second);
    /// `each` is called as each answer arrives, not when the batch ends.
    func recordInfo(taskIDs: [String], maxPerSecond: Int, each: (String, Result<KieTaskInfo, KieError>) -> Void) throws
}

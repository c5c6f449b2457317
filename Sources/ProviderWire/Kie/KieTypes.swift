// What a Kie.ai Market task is made of and how a call to Kie failed (the values `KieAPI`
// passes and returns).

public struct KieTaskRequest: Equatable, Sendable {
    public var model: String
    public var prompt: String
    /// Reference photos as URLs Kie can fetch (signed, long enough for a queued task).
    public var imageURLs: [String]
    public var aspectRatio: String
    public var callbackURL: String?

    public init(model: String, prompt: String, imageURLs: [String], aspectRatio: String = "3:4", callbackURL: String? = nil) {
        self.model = model
        self.prompt = prompt
        self.imageURLs = imageURLs
        self.aspectRatio = aspectRatio
        self.callbackURL = callbackURL
    }
}

/// Kie's task states (`data.state` of recordInfo).
public enum KieTaskState: String, Sendable, CaseIterable {
    case waiting, queuing, generating, success, fail

    public var isFinished: Bool { self == .success || self == .fail }
}

public struct KieTaskInfo: Equatable, Sendable {
    public let taskID: String
    public let state: KieTaskState
    /// From `resultJson` (a JSON string) `.resultUrls`; empty unless `success`.
    public let resultURLs: [String]
    public let failCode: String?
    public let failMessage: String?

    public init(taskID: String, state: KieTaskState, resultURLs: [String] = [], failCode: String? = nil, failMessage: String? = nil) {
        self.taskID = taskID
        self.state = state
        self.resultURLs = resultURLs
        self.failCode = failCode
        self.failMessage = failMessage
    }
}

/// How a Kie call failed, classified for what to do next (docs/providers.md#kie-errors). Errors arrive in the HTTP
/// status or in the body's `code`; both are read.
public enum KieError: Error, Equatable, CustomStringConvertible {
    /// 429: the request was dropped, not queued; wait a full 10-second window.
    case rateLimited
    /// 455, 500, other 5xx, timeouts, network: retry with backoff.
    case transient(String)
    /// 402: out of credits. Permanent until someone tops up; alert-worthy.
    case outOfCredits
    /// 401, 422, 505, 404 and other refusals: retrying will not help.
    case permanent(code: Int, message: String)

    public var description: String {
        switch self {
        case .rateLimited: return "Kie rate limit (429)"
        case .transient(let why): return "Kie unavailable: \(why)"
        case .outOfCredits: return "Kie: insufficient credits (402)"
        case .permanent(let code, let message): return "Kie refused (\(code)): \(message)"
        }
    }
}

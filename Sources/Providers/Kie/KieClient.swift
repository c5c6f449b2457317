import HTTPClient
import JSON
import PinGlass
import ProviderWire
import WebURL

/// Kie.ai's Market API over libcurl: `POST /api/v1/jobs/createTask` and
/// `GET /api/v1/jobs/recordInfo?taskId=` with `Authorization: Bearer <KIE_API_KEY>`
/// (docs/providers.md#kie-market). Every call has a timeout; errors are classified
/// by `KieAnswer` into `KieError`. The key lives only in the request header: errors carry
/// redacted URLs and Kie's own messages, never headers or bodies, so it never reaches a log.
///
/// createTask has no idempotency key at Kie: a timeout after the request left may have
/// created a task, and retrying it creates another (it costs credits; the earlier one's
/// result is never fetched). That risk is confined to the one call; callers record their
/// intent before it and the taskId right after (docs/reliability.md#R9).
///
/// ```swift
/// let kie = KieClient(apiURL: config.kieAPIURL, apiKey: config.kieAPIKey ?? "")
/// let id = try kie.createTask(KieTaskRequest(model: config.kieModel, prompt: p, imageURLs: refs))
/// kie.recordInfo(taskIDs: due, maxPerSecond: config.kiePollRPS) { id, result in … }
/// ```
public final class KieClient: KieAPI {
    public let apiURL: String
    private let apiKey: String
    /// Whole-call limit in seconds, per request.
    public var timeout: Double
    /// Concurrent recordInfo transfers per batch (answers are slow, the pace is the limit).
    public var maxConcurrentPolls = 32
    let http: HTTPClient
    /// Kept across batches, so polling loops are paced as one stream per process.
    private var pollPacer: HTTPPacer?

    /// Kie allows 10 recordInfo calls per second per key (docs/providers.md#kie-limits). Starts are spaced a little
    /// wider than 1/N so transit jitter never puts N + 1 into one of Kie's seconds.
    static let pollPaceMargin = 0.97

    public init(apiURL: String, apiKey: String, timeout: Double = 15, http: HTTPClient = HTTPClient()) {
        self.apiURL = apiURL.hasSuffix("/") ? String(apiURL.dropLast()) : apiURL
        self.apiKey = apiKey
        self.timeout = timeout
        self.http = http
    }

    public func createTask(_ request: KieTaskRequest) throws(KieError) -> String {
        var fields: [(String, JSON)] = [("model", .string(request.model))]
        if let callback = request.callbackURL { fields.append(("callBackUrl", .string(callback))) }
        fields.append(("input", .object([
            ("prompt", .string(request.prompt)),
            ("image_urls", .array(request.imageURLs.map(JSON.string))),
            ("aspect_ratio", .string(request.aspectRatio)),
        ])))
        let http = HTTPRequest(method: "POST", url: apiURL + "/api/v1/jobs/createTask",
                               headers: headers + [("Content-Type", "application/json")],
                               body: JSON.object(fields).bytes, timeout: timeout, maxResponseBytes: 1 << 20)
        let answer = try send(http)
        let data = try KieAnswer.data(status: answer.status, body: answer.body)
        guard let id = data["taskId"]?.scalarText, !id.isEmpty else { throw .transient("createTask answer without taskId") }
        return id
    }

    public func recordInfo(taskID: String) throws(KieError) -> KieTaskInfo {
        try Self.taskInfo(.success(send(recordInfoRequest(taskID))), taskID: taskID)
    }

    public func recordInfo(taskIDs: [String], maxPerSecond: Int, each: (String, Result<KieTaskInfo, KieError>) -> Void) {
        let rate = Double(max(1, maxPerSecond)) * Self.pollPaceMargin
        if pollPacer?.perSecond != rate { pollPacer = HTTPPacer(perSecond: rate) }
        http.stream(taskIDs.map(recordInfoRequest), maxConcurrent: maxConcurrentPolls, pacer: pollPacer) { i, result in
            each(taskIDs[i], Result { () throws(KieError) in try Self.taskInfo(result, taskID: taskIDs[i]) })
        }
    }

    func recordInfoRequest(_ taskID: String) -> HTTPRequest {
        HTTPRequest(url: apiURL + "/api/v1/jobs/recordInfo?taskId=" + percentEncode(taskID),
                    headers: headers, timeout: timeout, maxResponseBytes: 1 << 20)
    }

    var headers: [(String, String)] { [("Authorization", "Bearer " + apiKey), ("Accept", "application/json")] }

    static func taskInfo(_ result: Result<HTTPResponse, HTTPClientError>, taskID: String) throws(KieError) -> KieTaskInfo {
        switch result {
        case .failure(let e): throw Self.transport(e)
        case .success(let r): return try KieAnswer.taskInfo(KieAnswer.data(status: r.status, body: r.body), taskID: taskID)
        }
    }

    /// A transport failure (no answer): always transient. `HTTPClientError` carries only the
    /// redacted URL, so the key (a header) and signed links (queries) never reach a log.
    static func transport(_ error: HTTPClientError) -> KieError {
        .transient("\(error)")
    }

    private func send(_ request: HTTPRequest) throws(KieError) -> HTTPResponse {
        do { return try http.send(request) } catch let e as HTTPClientError { throw Self.transport(e) } catch {
            throw .transient("\(error)")
        }
    }
}

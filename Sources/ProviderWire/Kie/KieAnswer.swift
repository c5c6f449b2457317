import JSON
import WebURL

/// Reading Kie's answers (docs/providers.md#kie-market): the envelope
/// `{code, msg|message, data}`, errors in the HTTP status **or** the body `code` (Kie says
/// which only for 429, so both are read), and recordInfo's `data` with `resultJson` as a JSON
/// **string**. Pure functions, so the unit tests feed them real-shaped answers.
public enum KieAnswer {
    /// The `data` of a successful answer, or the error class. A body `code` other than 200
    /// wins over the HTTP status (it is the more specific); an HTTP error with a body that
    /// says 200 (or no body: a proxy's 502 page) is classified by the status.
    public static func data(status: Int, body: [UInt8]) throws(KieError) -> JSON {
        let answer = try? JSON.parse(body)
        let bodyCode = answer?["code"]?.intValue
        let message = answer?["msg"]?.stringValue ?? answer?["message"]?.stringValue ?? ""
        let code = bodyCode.flatMap { $0 == 200 ? nil : $0 } ?? ((200..<300).contains(status) ? 200 : status)
        // A body that says "success" beside an HTTP error explains nothing.
        guard code == 200 else { throw classify(code: code, message: bodyCode == 200 ? "" : message) }
        guard let answer, answer.objectValue != nil else { throw .transient("HTTP \(status): answer is not a JSON object") }
        return answer["data"] ?? .null
    }

    /// docs/providers.md#kie-errors: 429 → the request was dropped (wait the window); 402 → out of credits;
    /// 408, 455 (maintenance), 500 and other 5xx → transient. 501 ("generation failed") is
    /// transient too: it comes without a taskId, so nothing was created and a retry cannot
    /// duplicate a task, and the dispatcher's attempt limit turns a persistent 501 into a
    /// failed task (hence a refund) instead of spinning. 505 (feature disabled), 401, 404,
    /// 422 and any other 4xx → permanent: retrying the same request will not help.
    public static func classify(code: Int, message: String) -> KieError {
        let why = message.isEmpty ? "code \(code)" : "code \(code): \(clean(message))"
        switch code {
        case 429: return .rateLimited
        case 402: return .outOfCredits
        case 408, 455: return .transient(why)
        case 505: return .permanent(code: code, message: clean(message))
        case 500...599: return .transient(why)
        default: return .permanent(code: code, message: clean(message))
        }
    }

    /// Kie's own text, shortened and with any URL in it redacted before it reaches a log.
    public static func clean(_ message: String) -> String {
        String(HTTPURL.redactingURLs(in: message).prefix(300))
    }

    /// `data` of recordInfo. An unknown state or an unreadable `resultJson` on success is
    /// transient (the task is polled again and its deadline still applies); a success without
    /// URLs is passed on as is: the poller decides (it fails the task).
    public static func taskInfo(_ data: JSON, taskID: String) throws(KieError) -> KieTaskInfo {
        guard data.objectValue != nil else { throw .transient("recordInfo answer without data") }
        let stateText = data["state"]?.stringValue ?? ""
        guard let state = KieTaskState(rawValue: stateText) else {
            throw .transient("recordInfo: unknown task state \"\(clean(stateText))\"")
        }
        var urls: [String] = []
        if state == .success {
            guard let result = resultObject(data["resultJson"]) else { throw .transient("recordInfo: resultJson is not JSON") }
            urls = result["resultUrls"]?.arrayValue?.compactMap(\.stringValue) ?? []
        }
        func text(_ v: JSON?) -> String? { v?.scalarText.flatMap { $0.isEmpty ? nil : $0 } }
        return KieTaskInfo(taskID: text(data["taskId"]) ?? taskID, state: state, resultURLs: urls,
                           failCode: text(data["failCode"]), failMessage: text(data["failMsg"]).map(clean))
    }

    /// `resultJson` is documented as a string holding JSON; an object is accepted too.
    public static func resultObject(_ value: JSON?) -> JSON? {
        switch value {
        case .string(let s)?: return (try? JSON.parse(s)).flatMap { $0.objectValue != nil ? $0 : nil }
        case .object?: return value
        default: return nil
        }
    }
}

import Foundation
import HTTPClient
import PinGlass
import JSON

extension Fixtures {
    public static let kieKey = "test-kie-key-0123456789"
    public static let kieWebhookKey = "test-webhook-hmac-key"

    /// Variables for a PinGlass (and the simulator) talking to the simulated Kie at `simURL`.
    public static func kieEnv(simURL: String) -> [String: String] {
        ["KIE_API_URL": simURL + "/kie", "KIE_API_KEY": kieKey, "KIE_RESULT_HOSTS": "127.0.0.1",
         "KIE_WEBHOOK_HMAC_KEY": kieWebhookKey]
    }
}

/// The simulated Kie's control API (`/sim/control/kie/*`), for tests and benchmarks.
///
/// ```swift
/// let kie = KieSimulator(simURL: stack.simURL)
/// try kie.set(["generatingSeconds": 0.2, "failNext": 1])
/// try kie.counters()["createTask.429"]      // nil or a count
/// ```
public struct KieSimulator: Sendable {
    public let simURL: String
    let http = HTTPClient()

    public init(simURL: String) { self.simURL = simURL }

    /// `KIE_API_URL` of a client talking to it.
    public var apiURL: String { simURL + "/kie" }

    /// Sets knobs (see the simulator's `KieSettings`); null restores a default.
    public func set(_ settings: JSON) throws { _ = try call("POST", "settings", settings) }

    public func counters() throws -> [String: Int] {
        Dictionary(uniqueKeysWithValues: (try call("GET", "counters").objectValue ?? []).map { ($0.0, $0.1.intValue ?? 0) })
    }

    /// Every task: `taskId`, `state`, `outcome`, `callbackSent`, `callbackStatus`.
    public func tasks() throws -> [JSON] { try call("GET", "tasks")["tasks"]?.arrayValue ?? [] }

    /// Moves every task `seconds` on.
    public func advance(seconds: Double) throws { _ = try call("POST", "advance", ["seconds": .double(seconds)]) }

    public func reset() throws { _ = try call("POST", "reset") }

    func call(_ method: String, _ path: String, _ body: JSON? = nil) throws -> JSON {
        let r = try http.send(HTTPRequest(method: method, url: simURL + "/sim/control/kie/" + path,
                                          headers: [("Content-Type", "application/json")], body: body?.bytes ?? []))
        guard r.status == 200 else { throw Subprocess.Failed(command: "sim control \(path): \(r.text)", status: Int32(r.status)) }
        return try JSON.parse(r.body)
    }
}

import Foundation
import HTTPClient
import HTTPCore
import HTTPTypes
import PinGlass
import PinGlassWeb
import JSON

/// One client for a scenario, two transports: the application's handler called in process
/// (no nginx, no FastCGI: fast, in the unit tier) or real HTTP through nginx and a
/// `pinglass-fcgi` pool (`Stack`, the end-to-end tier). A scenario written against
/// `TestClient` runs both ways unchanged.
///
/// ```swift
/// func scenario(_ client: TestClient) throws {
///     let res = try client.get("/api/pricing")
///     XCTAssertEqual(res.status, 200)
/// }
/// try scenario(.inProcess(try InProcessApp(database: db)))   // unit
/// try scenario(.live(stack))                                 // end to end
/// ```
public struct TestClient {
    public enum Transport {
        case inProcess(InProcessApp)
        case live(Stack)
    }

    public let transport: Transport

    public static func inProcess(_ app: InProcessApp) -> TestClient { TestClient(transport: .inProcess(app)) }
    public static func live(_ stack: Stack) -> TestClient { TestClient(transport: .live(stack)) }

    /// A response as either transport gives it: header names in lower case.
    public struct Response {
        public let status: Int
        public let headers: [String: String]
        public let body: [UInt8]
        public var text: String { String(decoding: body, as: UTF8.self) }
        public func header(_ name: String) -> String? { headers[name.lowercased()] }
        public func json() throws -> JSON { try JSON.parse(body) }
    }

    /// Which transport this is, for messages: "in process" or "live".
    public var name: String {
        switch transport {
        case .inProcess: return "in process"
        case .live: return "live"
        }
    }

    public func execute(_ method: String, _ path: String, query: String = "", headers: [(String, String)] = [],
                        body: [UInt8] = []) throws -> Response {
        switch transport {
        case .inProcess(let app):
            var fields: [String: String] = [:]
            for (name, value) in headers { fields[name] = value }
            let res = app.app.handle(HTTPCore.Request(method: method, path: path, queryString: query, headers: fields, body: body,
                                                      requestID: "test-req"))
            var out: [String: String] = [:]
            for field in res.headers { out[field.name.canonicalName] = field.value }
            return Response(status: res.status, headers: out, body: res.body)
        case .live(let stack):
            let url = stack.baseURL + path + (query.isEmpty ? "" : "?" + query)
            let res = try stack.client.send(HTTPRequest(method: method, url: url, headers: headers, body: body))
            return Response(status: res.status, headers: res.headers, body: res.body)
        }
    }

    public func get(_ path: String, query: String = "", headers: [(String, String)] = []) throws -> Response {
        try execute("GET", path, query: query, headers: headers)
    }

    /// A POST of a JSON (or any text) body; `Content-Type: application/json` unless `headers` names one.
    public func post(_ path: String, body: String, headers: [(String, String)] = []) throws -> Response {
        let typed = headers.contains { $0.0.lowercased() == "content-type" } ? headers : [("Content-Type", "application/json")] + headers
        return try execute("POST", path, headers: typed, body: Array(body.utf8))
    }
}

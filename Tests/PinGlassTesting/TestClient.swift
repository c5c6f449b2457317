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
/// try scenario(.inProcess(try InProcessApp(database: db)))   // unit; also `app.client`
/// try scenario(.live(stack))                                 // end to end; also `stack.client`
/// ```
///
/// In process only: a request from another remote address (`client.from("203.0.113.7")`;
/// live, nginx sees where the request really comes from), and what requests log (the
/// logger the `InProcessApp` was made with, e.g. a `LogCapture`'s). What it does not
/// express stays on the live transport itself: nginx's own behaviour (bodies past its
/// limits, concurrent batches, timeouts, `/media` links: `stack.http`).
public struct TestClient {
    public enum Transport {
        case inProcess(InProcessApp)
        case live(Stack)
    }

    public let transport: Transport
    /// The address requests come from, in process (nil: `Request`'s default, loopback).
    public private(set) var remoteAddress: String?

    public static func inProcess(_ app: InProcessApp) -> TestClient { TestClient(transport: .inProcess(app)) }
    public static func live(_ stack: Stack) -> TestClient { TestClient(transport: .live(stack)) }

    /// This client with requests from `address` (any text: the application judges it). In
    /// process only: a live request with one set fails with `RemoteAddressNotLive`.
    public func from(_ address: String) -> TestClient {
        var client = self
        client.remoteAddress = address
        return client
    }

    /// A live request cannot choose its remote address: nginx passes the connection's own.
    public struct RemoteAddressNotLive: Error, CustomStringConvertible {
        public let address: String
        public var description: String { "the live transport cannot send a request from \(address)" }
    }

    /// A response as either transport gives it; both keep every value of a repeated header,
    /// in order.
    public struct Response {
        public let status: Int
        public let headers: HTTPFields
        public let body: [UInt8]
        public var text: String { String(decoding: body, as: UTF8.self) }
        /// The header's value, any case of `name`; repeated values combined. Nil when absent.
        public func header(_ name: String) -> String? { headers.value(name) }
        /// Every value of a repeated header, in order.
        public func headerValues(_ name: String) -> [String] { headers.values(name) }
        public func json() throws -> JSON { try JSON.parse(body) }
    }

    /// Which transport this is, for messages: "in process" or "live".
    public var name: String {
        switch transport {
        case .inProcess: return "in process"
        case .live: return "live"
        }
    }

    /// Any request; `headers` in order, a name may repeat.
    public func execute(_ method: String, _ path: String, query: String = "", headers: [(String, String)] = [],
                        body: [UInt8] = []) throws -> Response {
        switch transport {
        case .inProcess(let app):
            var fields = HTTPFields()
            for (name, value) in headers { fields.append(name, value) }
            var request = HTTPCore.Request(method: method, path: path, queryString: query, headers: fields, body: body,
                                           requestID: "test-req")
            if let remoteAddress { request.remoteAddress = remoteAddress }
            let res = app.app.handle(request)
            return Response(status: res.status, headers: res.headers, body: res.body)
        case .live(let stack):
            if let remoteAddress { throw RemoteAddressNotLive(address: remoteAddress) }
            let url = stack.baseURL + path + (query.isEmpty ? "" : "?" + query)
            let res = try stack.http.send(HTTPRequest(method: method, url: url, headers: headers, body: body))
            return Response(status: res.status, headers: res.headers, body: res.body)
        }
    }

    public func get(_ path: String, query: String = "", headers: [(String, String)] = []) throws -> Response {
        try execute("GET", path, query: query, headers: headers)
    }

    /// A POST of a JSON (or any text) body; `Content-Type: application/json` unless `headers` names one.
    public func post(_ path: String, body: String, headers: [(String, String)] = []) throws -> Response {
        try post(path, body: Array(body.utf8), headers: headers)
    }

    /// A POST of raw bytes; `Content-Type: application/json` unless `headers` names one.
    public func post(_ path: String, body: [UInt8], headers: [(String, String)] = []) throws -> Response {
        let typed = headers.contains { $0.0.lowercased() == "content-type" } ? headers : [("Content-Type", "application/json")] + headers
        return try execute("POST", path, headers: typed, body: body)
    }
}

extension InProcessApp {
    /// This application as a `TestClient` (`TestClient.inProcess(self)`).
    public var client: TestClient { .inProcess(self) }
}

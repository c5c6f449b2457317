import HTTPTypes
import WebURL

/// An HTTP request as a server hands it to a handler. Transport-free (no libfcgi type), so
/// handlers are plain functions that tests call in-process. Headers are swift-http-types'
/// `HTTPFields`: a repeated field (two `Cookie` lines, a repeated `X-Forwarded-For`) keeps
/// every value, in order.
///
/// ```swift
/// let req = Request(method: "GET", path: "/api/health")
/// let res = app.handle(req)
/// ```
public struct Request: Sendable {
    public var method: String
    /// The path without the query string (`DOCUMENT_URI`).
    public var path: String
    public var queryString: String
    public var headers: HTTPFields
    public var body: [UInt8]
    /// nginx's `$request_id`, passed as the `REQUEST_ID` FastCGI parameter.
    public var requestID: String
    public var remoteAddress: String

    public init(method: String, path: String, queryString: String = "", headers: HTTPFields = HTTPFields(),
                body: [UInt8] = [], requestID: String = "", remoteAddress: String = "127.0.0.1") {
        self.method = method
        self.path = path
        self.queryString = queryString
        self.headers = headers
        self.body = body
        self.requestID = requestID
        self.remoteAddress = remoteAddress
    }

    /// One value per name, for tests and tools (`["Content-Type": "application/json"]`).
    public init(method: String, path: String, queryString: String = "", headers: [String: String],
                body: [UInt8] = [], requestID: String = "", remoteAddress: String = "127.0.0.1") {
        var fields = HTTPFields()
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) { fields.append(name, value) }
        self.init(method: method, path: path, queryString: queryString, headers: fields, body: body,
                  requestID: requestID, remoteAddress: remoteAddress)
    }

    /// The field's value, any case of `name`; the values of a repeated field joined as
    /// HTTP combines them (`, `, or `; ` for `Cookie`). Nil when absent or not a valid name.
    public func header(_ name: String) -> String? { headers.value(name) }

    /// Every value of a repeated field, in the order received.
    public func headerValues(_ name: String) -> [String] { headers.values(name) }

    /// Query parameters, percent-decoded; the first occurrence of a name wins.
    public var query: [String: String] {
        var out: [String: String] = [:]
        for pair in queryString.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let k = kv.first.flatMap({ percentDecode(String($0)) }) else { continue }
            let v = kv.count > 1 ? percentDecode(String(kv[1])) ?? "" : ""
            if out[k] == nil { out[k] = v }
        }
        return out
    }
}

extension HTTPFields {
    /// Adds a field by name; a name that is not an HTTP token is a programming error.
    public mutating func append(_ name: String, _ value: String) {
        guard let n = HTTPField.Name(name) else { preconditionFailure("not an HTTP field name: \(name)") }
        append(HTTPField(name: n, value: value))
    }

    /// The value of `name` (any case), repeated values combined; nil when absent.
    public func value(_ name: String) -> String? { HTTPField.Name(name).flatMap { self[$0] } }

    /// Every value of `name`, in order.
    public func values(_ name: String) -> [String] { HTTPField.Name(name).map { self[values: $0] } ?? [] }
}

/// An HTTP request as a server hands it to a handler. Transport-free (no libfcgi type), so
/// handlers are plain functions that tests call in-process.
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
    /// Header names in lower case (`content-type`, `authorization`, `x-telegram-init-data`).
    public var headers: [String: String]
    public var body: [UInt8]
    /// nginx's `$request_id`, passed as the `REQUEST_ID` FastCGI parameter.
    public var requestID: String
    public var remoteAddress: String

    public init(method: String, path: String, queryString: String = "", headers: [String: String] = [:],
                body: [UInt8] = [], requestID: String = "", remoteAddress: String = "127.0.0.1") {
        self.method = method
        self.path = path
        self.queryString = queryString
        self.headers = Dictionary(uniqueKeysWithValues: headers.map { ($0.key.lowercased(), $0.value) })
        self.body = body
        self.requestID = requestID
        self.remoteAddress = remoteAddress
    }

    public func header(_ name: String) -> String? { headers[name.lowercased()] }

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

/// Decodes `%XX` escapes and `+` (as in form encoding); nil for a malformed escape or bad UTF-8.
public func percentDecode(_ s: String, plusAsSpace: Bool = true) -> String? {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(s.utf8.count)
    var it = Array(s.utf8)[...]
    while let b = it.popFirst() {
        if b == UInt8(ascii: "%") {
            guard it.count >= 2, let hi = hexValue(it.popFirst()!), let lo = hexValue(it.popFirst()!) else { return nil }
            bytes.append(hi << 4 | lo)
        } else if b == UInt8(ascii: "+") && plusAsSpace {
            bytes.append(UInt8(ascii: " "))
        } else {
            bytes.append(b)
        }
    }
    return String(validating: bytes, as: UTF8.self)
}

private func hexValue(_ c: UInt8) -> UInt8? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
    default: return nil
    }
}

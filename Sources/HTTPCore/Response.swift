import HTTPTypes

/// An HTTP response produced by a handler. Transport-free: FastCGI, tests and the simulator
/// all use the same value. Headers are `HTTPFields`, so a repeated field (two `Set-Cookie`)
/// is written as two lines.
///
/// ```swift
/// Response(status: 200, contentType: "text/plain; charset=utf-8", body: "OK")
/// ```
public struct Response: Sendable {
    public var status: Int
    public var headers: HTTPFields
    public var body: [UInt8]

    public init(status: Int, headers: HTTPFields = HTTPFields(), body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// Headers as (name, value) pairs, in order; a name may repeat.
    public init(status: Int, headers: [(String, String)], body: [UInt8] = []) {
        var fields = HTTPFields()
        for (name, value) in headers { fields.append(name, value) }
        self.init(status: status, headers: fields, body: body)
    }

    public init(status: Int, contentType: String, body: String) {
        self.init(status: status, headers: [("Content-Type", contentType)], body: Array(body.utf8))
    }

    /// The field's value, any case of `name`; a repeated field's values joined with `, `.
    public func header(_ name: String) -> String? { headers.value(name) }

    /// Every value of a repeated field (each `Set-Cookie`), in order.
    public func headerValues(_ name: String) -> [String] { headers.values(name) }

    public var bodyText: String { String(decoding: body, as: UTF8.self) }

    /// The CGI response head (`Status:` line plus headers) that a FastCGI or CGI server sends
    /// before the body.
    public func cgiHead() -> String {
        var head = "Status: \(status) \(Self.reason(status))\r\n"
        for field in headers { head += "\(field.name.rawName): \(field.value)\r\n" }
        head += "Content-Length: \(body.count)\r\n\r\n"
        return head
    }

    public static func reason(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 201: return "Created"
        case 202: return "Accepted"
        case 204: return "No Content"
        case 301: return "Moved Permanently"
        case 302: return "Found"
        case 303: return "See Other"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 402: return "Payment Required"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 409: return "Conflict"
        case 413: return "Payload Too Large"
        case 415: return "Unsupported Media Type"
        case 429: return "Too Many Requests"
        case 500: return "Internal Server Error"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        default: return "Status"
        }
    }
}

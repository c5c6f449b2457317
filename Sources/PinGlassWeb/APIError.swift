import HTTPCore
import PinGlass
import JSON

/// An error answer of the HTTP API: status + `{"success":false,"error":{code,message,details}}`.
/// Handlers throw it; `App` renders it. Messages are for people and never carry internals.
///
/// ```swift
/// throw APIError.validation("tierId must be one of starter, standard, premium")
/// ```
public struct APIError: Error, Equatable, CustomStringConvertible {
    public var status: Int
    public var code: String
    public var message: String
    public var details: JSON?
    public var headers: [(String, String)] = []

    public init(status: Int, code: String, message: String, details: JSON? = nil, headers: [(String, String)] = []) {
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers
    }

    public static func == (a: APIError, b: APIError) -> Bool {
        a.status == b.status && a.code == b.code && a.message == b.message
    }

    public var description: String { "\(status) \(code): \(message)" }

    public static func validation(_ message: String, details: JSON? = nil) -> APIError {
        APIError(status: 400, code: "VALIDATION_ERROR", message: message, details: details)
    }
    public static func unauthorized(_ message: String = "authentication required") -> APIError {
        APIError(status: 401, code: "UNAUTHORIZED", message: message)
    }
    public static func forbidden(_ message: String = "forbidden") -> APIError {
        APIError(status: 403, code: "FORBIDDEN", message: message)
    }
    public static func notFound(_ message: String = "not found") -> APIError {
        APIError(status: 404, code: "NOT_FOUND", message: message)
    }
    public static func methodNotAllowed(_ allowed: [String]) -> APIError {
        APIError(status: 405, code: "METHOD_NOT_ALLOWED", message: "method not allowed; use \(allowed.joined(separator: ", "))",
                 headers: [("Allow", allowed.joined(separator: ", "))])
    }
    public static func rateLimited(retryAfter: Int, message: String) -> APIError {
        APIError(status: 429, code: "RATE_LIMIT_EXCEEDED", message: message,
                 details: ["retryAfter": .int(retryAfter)], headers: [("Retry-After", String(retryAfter))])
    }
    public static func unsupportedMediaType(_ message: String) -> APIError {
        APIError(status: 415, code: "UNSUPPORTED_MEDIA_TYPE", message: message)
    }
    public static func badGateway(_ message: String) -> APIError {
        APIError(status: 502, code: "BAD_GATEWAY", message: message)
    }
    public static func unavailable(_ message: String = "service temporarily unavailable, try again shortly") -> APIError {
        APIError(status: 503, code: "SERVICE_UNAVAILABLE", message: message, headers: [("Retry-After", "5")])
    }
    public static let internalError = APIError(status: 500, code: "INTERNAL_ERROR", message: "internal error; the request id identifies it in our logs")

    public var response: Response {
        var error: [(String, JSON)] = [("code", .string(code)), ("message", .string(message))]
        if let details { error.append(("details", details)) }
        var r = Response.json(["success": false, "error": .object(error)], status: status)
        for (name, value) in headers { r.headers.append(name, value) }
        return r
    }
}

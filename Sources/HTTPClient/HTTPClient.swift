import CCurl
import CShims

/// An outbound HTTP request. Bodies are bytes; helpers build JSON and multipart bodies.
///
/// ```swift
/// let client = HTTPClient()
/// let res = try client.send(.json("POST", "https://securepay.tinkoff.ru/v2/Init", body: bytes))
/// ```
public struct HTTPRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [(String, String)]
    public var body: [UInt8]
    /// Whole-transfer limit, seconds.
    public var timeout: Double
    public var connectTimeout: Double
    /// Responses larger than this fail with `HTTPClientError.tooLarge` (downloads are capped).
    public var maxResponseBytes: Int

    public init(method: String = "GET", url: String, headers: [(String, String)] = [], body: [UInt8] = [],
                timeout: Double = 15, connectTimeout: Double = 5, maxResponseBytes: Int = 32 << 20) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.connectTimeout = connectTimeout
        self.maxResponseBytes = maxResponseBytes
    }

    public static func json(_ method: String, _ url: String, body: [UInt8], headers: [(String, String)] = [],
                            timeout: Double = 15) -> HTTPRequest {
        HTTPRequest(method: method, url: url, headers: [("Content-Type", "application/json")] + headers,
                    body: body, timeout: timeout)
    }

    /// One part of a `multipart/form-data` body.
    public struct Part: Sendable {
        public var name: String
        public var filename: String?
        public var contentType: String?
        public var data: [UInt8]
        public init(name: String, filename: String? = nil, contentType: String? = nil, data: [UInt8]) {
            self.name = name; self.filename = filename; self.contentType = contentType; self.data = data
        }
    }

    public static func multipart(_ url: String, parts: [Part], boundary: String, timeout: Double = 30) -> HTTPRequest {
        var body: [UInt8] = []
        for part in parts {
            var head = "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(part.name)\""
            if let f = part.filename { head += "; filename=\"\(f)\"" }
            head += "\r\n"
            if let ct = part.contentType { head += "Content-Type: \(ct)\r\n" }
            head += "\r\n"
            body += Array(head.utf8) + part.data + Array("\r\n".utf8)
        }
        body += Array("--\(boundary)--\r\n".utf8)
        return HTTPRequest(method: "POST", url: url,
                           headers: [("Content-Type", "multipart/form-data; boundary=\(boundary)")],
                           body: body, timeout: timeout)
    }
}

public struct HTTPResponse: Sendable {
    public var status: Int
    /// Header names in lower case.
    public var headers: [String: String]
    public var body: [UInt8]
    public var text: String { String(decoding: body, as: UTF8.self) }
    public init(status: Int, headers: [String: String] = [:], body: [UInt8] = []) {
        self.status = status; self.headers = headers; self.body = body
    }
}

/// Why a request got no response. Errors end up in logs, so they carry a URL only in its
/// redacted form (`HTTPURL.redact`): a Telegram bot token or a query string never shows.
public enum HTTPClientError: Error, CustomStringConvertible, Sendable {
    /// The redacted URL.
    case timedOut(String)
    case transport(code: Int, message: String)
    case tooLarge(Int)

    public var description: String {
        switch self {
        case .timedOut(let url): return "request to \(url) timed out"
        case .transport(let code, let m): return "transport error \(code): \(m)"
        case .tooLarge(let limit): return "response larger than \(limit) bytes"
        }
    }
}

/// A libcurl client: `send` for one blocking request, `sendAll` for many at once (curl
/// multi), `stream` and `HTTPBatch` for many handed back as each completes (the pollers).
/// Redirects are not followed; no signals are used (safe in forked workers).
public final class HTTPClient: @unchecked Sendable {
    /// Call once per process before any thread starts (curl_global_init is not thread-safe).
    public static func globalInit() { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }

    public init() {}

    public func send(_ request: HTTPRequest) throws -> HTTPResponse {
        let transfer = try Transfer(request)
        let rc = curl_easy_perform(transfer.handle)
        return try transfer.finish(rc)
    }

    /// Runs the requests concurrently, at most `maxConcurrent` at a time; results keep order.
    public func sendAll(_ requests: [HTTPRequest], maxConcurrent: Int = 16) -> [Result<HTTPResponse, HTTPClientError>] {
        var results = [Result<HTTPResponse, HTTPClientError>](repeating: .failure(.transport(code: -1, message: "not run")),
                                                               count: requests.count)
        stream(requests, maxConcurrent: maxConcurrent) { i, result in results[i] = result }
        return results
    }
}

/// One easy handle with its header list and response buffers; cleaned up on release.
final class Transfer {
    let handle: UnsafeMutableRawPointer
    let request: HTTPRequest
    private var headerList: UnsafeMutablePointer<curl_slist>?
    private var body: [UInt8]
    var received: [UInt8] = []
    var responseHeaders: [String: String] = [:]
    var overflow = false

    init(_ request: HTTPRequest) throws {
        guard let h = curl_easy_init() else { throw HTTPClientError.transport(code: -1, message: "curl_easy_init failed") }
        handle = h
        self.request = request
        body = request.body
        _ = pg_curl_setopt_string(h, CURLOPT_URL, request.url)
        _ = pg_curl_setopt_long(h, CURLOPT_NOSIGNAL, 1)
        _ = pg_curl_setopt_long(h, CURLOPT_FOLLOWLOCATION, 0)
        _ = pg_curl_setopt_long(h, CURLOPT_TIMEOUT_MS, Int(request.timeout * 1000))
        _ = pg_curl_setopt_long(h, CURLOPT_CONNECTTIMEOUT_MS, Int(request.connectTimeout * 1000))
        _ = pg_curl_setopt_string(h, CURLOPT_PROTOCOLS_STR, "http,https")
        switch request.method {
        case "GET": break
        case "HEAD": _ = pg_curl_setopt_long(h, CURLOPT_NOBODY, 1)
        default: _ = pg_curl_setopt_string(h, CURLOPT_CUSTOMREQUEST, request.method)
        }
        if request.method != "GET" && request.method != "HEAD" {
            _ = pg_curl_setopt_long(h, CURLOPT_POSTFIELDSIZE, body.count)
            // COPYPOSTFIELDS copies the bytes, so the buffer need not outlive this call.
            if body.isEmpty {
                _ = pg_curl_setopt_string(h, CURLOPT_COPYPOSTFIELDS, "")
            } else {
                _ = body.withUnsafeMutableBytes { b in pg_curl_setopt_ptr(h, CURLOPT_COPYPOSTFIELDS, b.baseAddress!) }
            }
        }
        var list: UnsafeMutablePointer<curl_slist>? = curl_slist_append(nil, "Expect:")
        for (k, v) in request.headers { list = curl_slist_append(list, "\(k): \(v)") }
        headerList = list
        _ = pg_curl_setopt_ptr(h, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(list))
        let me = Unmanaged.passUnretained(self).toOpaque()
        _ = pg_curl_setopt_ptr(h, CURLOPT_WRITEDATA, me)
        _ = pg_curl_setopt_writefn(h) { ptr, size, n, ud in
            let t = Unmanaged<Transfer>.fromOpaque(ud!).takeUnretainedValue()
            let count = size * n
            if t.received.count + count > t.request.maxResponseBytes { t.overflow = true; return 0 }
            ptr!.withMemoryRebound(to: UInt8.self, capacity: count) {
                t.received.append(contentsOf: UnsafeBufferPointer(start: $0, count: count))
            }
            return count
        }
        _ = pg_curl_setopt_ptr(h, CURLOPT_HEADERDATA, me)
        _ = pg_curl_setopt_headerfn(h) { ptr, size, n, ud in
            let t = Unmanaged<Transfer>.fromOpaque(ud!).takeUnretainedValue()
            let count = size * n
            let line = ptr!.withMemoryRebound(to: UInt8.self, capacity: count) {
                String(decoding: UnsafeBufferPointer(start: $0, count: count), as: UTF8.self)
            }
            if line.hasPrefix("HTTP/") { t.responseHeaders = [:] }   // a new response (after 100-continue)
            if let colon = line.firstIndex(of: ":") {
                let name = line[..<colon].lowercased()
                let value = line[line.index(after: colon)...].trimmingCharacters(in: " \r\n\t")
                t.responseHeaders[name] = value
            }
            return count
        }
    }

    deinit {
        curl_easy_cleanup(handle)
        curl_slist_free_all(headerList)
    }

    func finish(_ rc: CURLcode) throws -> HTTPResponse {
        if overflow { throw HTTPClientError.tooLarge(request.maxResponseBytes) }
        if rc == CURLE_OPERATION_TIMEDOUT { throw HTTPClientError.timedOut(HTTPURL.redact(request.url)) }
        guard rc == CURLE_OK else {
            throw HTTPClientError.transport(code: Int(rc.rawValue),
                                            message: "\(String(cString: curl_easy_strerror(rc))) (\(HTTPURL.redact(request.url)))")
        }
        var status = 0
        _ = pg_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        return HTTPResponse(status: status, headers: responseHeaders, body: received)
    }
}

extension StringProtocol {
    func trimmingCharacters(in set: String) -> String {
        let chars = Set(set)
        var s = Substring(self)
        while let f = s.first, chars.contains(f) { s = s.dropFirst() }
        while let l = s.last, chars.contains(l) { s = s.dropLast() }
        return String(s)
    }
}

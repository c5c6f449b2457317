#if canImport(Glibc)
import Glibc
#endif
import CCurl
import CCurlShims
import HTTPTypes
import WebURL

/// An outbound HTTP request. Bodies are bytes, or form parts libcurl writes as
/// `multipart/form-data` (`curl_mime`); helpers build JSON and multipart requests.
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
    /// The parts of a `multipart/form-data` body, written by libcurl (`curl_mime`, with its
    /// own boundary and `Content-Type`); when set, `body` is not sent.
    public var parts: [Part]?
    /// Whole-transfer limit, seconds.
    public var timeout: Double
    public var connectTimeout: Double
    /// Responses larger than this fail with `HTTPClientError.tooLarge` (downloads are capped).
    public var maxResponseBytes: Int
    /// Credentials libcurl signs the request with (none by default).
    public var authentication: HTTPAuthentication?
    /// Refuse to connect to loopback, private, link-local and other non-public addresses
    /// (checked on the address being connected to, after DNS), failing with
    /// `HTTPClientError.refusedAddress`. For URLs that come from elsewhere (a provider's
    /// result link): a name on an allow-list could still resolve to the machine itself or to
    /// the internal network. Such a request goes direct (no proxy) on a new connection.
    public var refuseInternalAddresses: Bool

    public init(method: String = "GET", url: String, headers: [(String, String)] = [], body: [UInt8] = [],
                timeout: Double = 15, connectTimeout: Double = 5, maxResponseBytes: Int = 32 << 20,
                authentication: HTTPAuthentication? = nil, refuseInternalAddresses: Bool = false) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.connectTimeout = connectTimeout
        self.maxResponseBytes = maxResponseBytes
        self.authentication = authentication
        self.refuseInternalAddresses = refuseInternalAddresses
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

    /// A `multipart/form-data` POST of `parts` (uploads beside text fields).
    public static func multipart(_ url: String, parts: [Part], timeout: Double = 30) -> HTTPRequest {
        var request = HTTPRequest(method: "POST", url: url, timeout: timeout)
        request.parts = parts
        return request
    }
}

/// How libcurl authenticates a request. The secret parts never appear in a description,
/// an error or a log line.
///
/// ```swift
/// var req = HTTPRequest(method: "PUT", url: "https://acct.r2.cloudflarestorage.com/bucket/key",
///                       headers: [("x-amz-content-sha256", bodySHA256Hex)], body: bytes)
/// req.authentication = .awsSigV4(provider: "aws:amz:auto:s3", accessKeyID: id, secretAccessKey: secret)
/// ```
public enum HTTPAuthentication: Sendable, CustomStringConvertible {
    /// HTTP Basic (`CURLOPT_USERPWD`, libcurl's default scheme).
    case basic(user: String, password: String)
    /// AWS Signature Version 4 computed by libcurl (`CURLOPT_AWS_SIGV4` with
    /// `provider1[:provider2[:region[:service]]]`, e.g. `aws:amz:us-east-1:s3`; the key pair
    /// goes in `CURLOPT_USERPWD`). libcurl signs the headers it sends; for a body other than
    /// a POST's, send the payload hash yourself as `x-amz-content-sha256` (curl < 8 does not
    /// add it; see docs/providers.md#s3-sigv4).
    case awsSigV4(provider: String, accessKeyID: String, secretAccessKey: String)

    public var description: String {
        switch self {
        case .basic(let user, _): return "basic(\(user), [redacted])"
        case .awsSigV4(let provider, _, _): return "awsSigV4(\(provider), [redacted])"
        }
    }
}

/// A response as the server sent it. Header fields are swift-http-types' `HTTPFields`, in
/// the order received: a repeated field (two `Set-Cookie` lines) keeps every value, and a
/// lookup by name ignores case.
///
/// ```swift
/// let res = try client.send(HTTPRequest(url: url))
/// res.header("content-type")        // "image/png"
/// res.headerValues("Set-Cookie")    // ["a=1", "b=2"]
/// ```
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: HTTPFields
    public var body: [UInt8]
    public var text: String { String(decoding: body, as: UTF8.self) }
    public init(status: Int, headers: HTTPFields = HTTPFields(), body: [UInt8] = []) {
        self.status = status; self.headers = headers; self.body = body
    }

    /// The field's value, any case of `name`; a repeated field's values combined as HTTP
    /// combines them (`, `). Nil when absent or not a valid field name.
    public func header(_ name: String) -> String? { HTTPField.Name(name).flatMap { headers[$0] } }

    /// Every value of a repeated field, in the order received.
    public func headerValues(_ name: String) -> [String] { HTTPField.Name(name).map { headers[values: $0] } ?? [] }
}

/// Why a request got no response. Errors end up in logs, so they carry a URL only in its
/// redacted form (`HTTPURL.redact`): a Telegram bot token or a query string never shows.
public enum HTTPClientError: Error, CustomStringConvertible, Sendable {
    /// The redacted URL.
    case timedOut(String)
    case transport(code: Int, message: String)
    case tooLarge(Int)
    /// `refuseInternalAddresses` stopped the connection (the redacted URL): the host
    /// resolved to a non-public address only.
    case refusedAddress(String)

    public var description: String {
        switch self {
        case .refusedAddress(let url): return "refused to connect to \(url): it resolves to a loopback, private or other non-public address"
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

    /// True when `address` (an IPv4 or IPv6 address in text form) is one that
    /// `refuseInternalAddresses` refuses; nil when it is not an address.
    public static func isInternalAddress(_ address: String) -> Bool? {
        var v4 = in_addr()
        if inet_pton(AF_INET, address, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { curlshim_ip_is_internal(AF_INET, $0.bindMemory(to: UInt8.self).baseAddress) != 0 }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, address, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { curlshim_ip_is_internal(AF_INET6, $0.bindMemory(to: UInt8.self).baseAddress) != 0 }
        }
        return nil
    }

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
    private var mime: OpaquePointer?
    private var body: [UInt8]
    var received: [UInt8] = []
    var responseHeaders = HTTPFields()
    var overflow = false
    /// Set by the C connect check when it refused an address (`refuseInternalAddresses`).
    private let refused = UnsafeMutablePointer<Int32>.allocate(capacity: 1)

    init(_ request: HTTPRequest) throws {
        guard let h = curl_easy_init() else { throw HTTPClientError.transport(code: -1, message: "curl_easy_init failed") }
        handle = h
        self.request = request
        body = request.body
        refused.initialize(to: 0)
        if request.refuseInternalAddresses {
            guard curlshim_refuse_internal_addresses(h, refused) == CURLE_OK else {
                throw HTTPClientError.transport(code: -1, message: "cannot install the address check")
            }
        }
        _ = curlshim_setopt_string(h, CURLOPT_URL, request.url)
        _ = curlshim_setopt_long(h, CURLOPT_NOSIGNAL, 1)
        _ = curlshim_setopt_long(h, CURLOPT_FOLLOWLOCATION, 0)
        _ = curlshim_setopt_long(h, CURLOPT_TIMEOUT_MS, Int(request.timeout * 1000))
        _ = curlshim_setopt_long(h, CURLOPT_CONNECTTIMEOUT_MS, Int(request.connectTimeout * 1000))
        _ = curlshim_setopt_string(h, CURLOPT_PROTOCOLS_STR, "http,https")
        switch request.method {
        case "GET": break
        case "HEAD": _ = curlshim_setopt_long(h, CURLOPT_NOBODY, 1)
        default: _ = curlshim_setopt_string(h, CURLOPT_CUSTOMREQUEST, request.method)
        }
        // A body goes with every method but GET and HEAD; an empty one only where a body is
        // expected (an empty DELETE carries no Content-Type or Content-Length to sign).
        if let parts = request.parts {
            mime = Self.mime(h, parts)
            _ = curlshim_setopt_ptr(h, CURLOPT_MIMEPOST, UnsafeMutableRawPointer(mime))
        } else if !["GET", "HEAD"].contains(request.method) && (!body.isEmpty || ["POST", "PUT", "PATCH"].contains(request.method)) {
            _ = curlshim_setopt_long(h, CURLOPT_POSTFIELDSIZE, body.count)
            // COPYPOSTFIELDS copies the bytes, so the buffer need not outlive this call.
            if body.isEmpty {
                _ = curlshim_setopt_string(h, CURLOPT_COPYPOSTFIELDS, "")
            } else {
                _ = body.withUnsafeMutableBytes { b in curlshim_setopt_ptr(h, CURLOPT_COPYPOSTFIELDS, b.baseAddress!) }
            }
        }
        switch request.authentication {
        case nil: break
        case .basic(let user, let password):
            _ = curlshim_setopt_string(h, CURLOPT_USERPWD, user + ":" + password)
        case .awsSigV4(let provider, let id, let secret):
            _ = curlshim_setopt_string(h, CURLOPT_AWS_SIGV4, provider)   // also sets CURLAUTH_AWS_SIGV4
            _ = curlshim_setopt_string(h, CURLOPT_USERPWD, id + ":" + secret)
        }
        // "Expect:" (empty) stops curl's 100-continue wait, but curl 7.88 would sign that empty
        // header, which it never sends: the store's signature check would fail. Signed
        // requests keep curl's default (S3, R2 and MinIO answer 100-continue).
        var list: UnsafeMutablePointer<curl_slist>?
        if case .awsSigV4 = request.authentication {} else { list = curl_slist_append(nil, "Expect:") }
        for (k, v) in request.headers { list = curl_slist_append(list, "\(k): \(v)") }
        headerList = list
        _ = curlshim_setopt_ptr(h, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(list))
        let me = Unmanaged.passUnretained(self).toOpaque()
        _ = curlshim_setopt_ptr(h, CURLOPT_WRITEDATA, me)
        _ = curlshim_setopt_writefn(h) { ptr, size, n, ud in
            let t = Unmanaged<Transfer>.fromOpaque(ud!).takeUnretainedValue()
            let count = size * n
            if t.received.count + count > t.request.maxResponseBytes { t.overflow = true; return 0 }
            ptr!.withMemoryRebound(to: UInt8.self, capacity: count) {
                t.received.append(contentsOf: UnsafeBufferPointer(start: $0, count: count))
            }
            return count
        }
        _ = curlshim_setopt_ptr(h, CURLOPT_HEADERDATA, me)
        _ = curlshim_setopt_headerfn(h) { ptr, size, n, ud in
            let t = Unmanaged<Transfer>.fromOpaque(ud!).takeUnretainedValue()
            let count = size * n
            let line = ptr!.withMemoryRebound(to: UInt8.self, capacity: count) {
                String(decoding: UnsafeBufferPointer(start: $0, count: count), as: UTF8.self)
            }
            if line.hasPrefix("HTTP/") { t.responseHeaders = HTTPFields() }   // a new response (after 100-continue)
            // A line whose name is no HTTP token (nothing a server may send) is dropped.
            if let colon = line.firstIndex(of: ":"), let name = HTTPField.Name(String(line[..<colon])) {
                let value = line[line.index(after: colon)...].trimmingCharacters(in: " \r\n\t")
                t.responseHeaders.append(HTTPField(name: name, value: value))
            }
            return count
        }
    }

    /// The form libcurl writes (each part's bytes are copied into it).
    static func mime(_ h: UnsafeMutableRawPointer, _ parts: [HTTPRequest.Part]) -> OpaquePointer? {
        let form = curl_mime_init(h)
        for part in parts {
            let p = curl_mime_addpart(form)
            _ = curl_mime_name(p, part.name)
            if part.data.isEmpty {
                _ = curl_mime_data(p, "", 0)
            } else {
                _ = part.data.withUnsafeBytes { curl_mime_data(p, $0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count) }
            }
            if let filename = part.filename { _ = curl_mime_filename(p, filename) }
            if let type = part.contentType { _ = curl_mime_type(p, type) }
        }
        return form
    }

    deinit {
        curl_easy_cleanup(handle)
        curl_mime_free(mime)
        curl_slist_free_all(headerList)
        refused.deallocate()
    }

    func finish(_ rc: CURLcode) throws -> HTTPResponse {
        if overflow { throw HTTPClientError.tooLarge(request.maxResponseBytes) }
        // Any refusal counts, even when curl then failed for another reason on a second address.
        if rc != CURLE_OK && refused.pointee != 0 { throw HTTPClientError.refusedAddress(HTTPURL.redact(request.url)) }
        if rc == CURLE_OPERATION_TIMEDOUT { throw HTTPClientError.timedOut(HTTPURL.redact(request.url)) }
        guard rc == CURLE_OK else {
            throw HTTPClientError.transport(code: Int(rc.rawValue),
                                            message: "\(String(cString: curl_easy_strerror(rc))) (\(HTTPURL.redact(request.url)))")
        }
        var status = 0
        _ = curlshim_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
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

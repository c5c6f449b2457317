import HTTPClient
import LibCrypto
import PinGlass
import Platform
import WebURL

/// Media in an S3-compatible bucket (Cloudflare R2, AWS S3, MinIO), addressed path-style:
/// `<S3_ENDPOINT>/<S3_BUCKET>/<key>`. Requests are signed by libcurl (`CURLOPT_AWS_SIGV4`)
/// and always carry `x-amz-content-sha256`, the hex SHA-256 of the body (of nothing for
/// GET and DELETE): R2 requires it and curl 7.88 does not add it (docs/providers.md#s3-sigv4).
/// `signedURL` is a SigV4 presigned GET, so the bucket stays private.
///
/// ```swift
/// let store = S3MediaStore(endpoint: "https://<account>.r2.cloudflarestorage.com", bucket: "pinglass",
///                          region: "auto", accessKeyID: id, secretAccessKey: secret)
/// try store.put(key: key, bytes: jpeg, contentType: "image/jpeg")
/// let url = store.signedURL(key: key, expiresIn: MediaLinks.apiTTL, now: deps.clock())
/// ```
public final class S3MediaStore: MediaStore {
    public let endpoint: String
    public let bucket: String
    let presigner: SigV4Presigner
    let http: HTTPClient
    /// Seconds for one whole request.
    let timeout: Double

    /// The region when `S3_REGION` is not set; R2 treats it as its own `auto`.
    public static let defaultRegion = "us-east-1"
    /// SHA-256 of an empty body.
    static let emptySHA256 = Crypto.hex(Crypto.sha256([]))

    public init(endpoint: String, bucket: String, region: String = defaultRegion, accessKeyID: String,
                secretAccessKey: String, timeout: Double = 30, http: HTTPClient = HTTPClient()) {
        self.endpoint = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
        self.bucket = bucket
        self.presigner = SigV4Presigner(accessKeyID: accessKeyID, secretAccessKey: secretAccessKey, region: region)
        self.timeout = timeout
        self.http = http
    }

    /// `bucket <name> at <endpoint>`, the endpoint redacted (for doctor and logs).
    public var location: String { "bucket \(bucket) at \(HTTPURL.redact(endpoint))" }

    public func put(key: String, bytes: [UInt8], contentType: String) throws {
        _ = try send("PUT", key, body: bytes, headers: [("Content-Type", contentType)])
    }

    public func get(key: String) throws -> [UInt8] {
        try send("GET", key).body
    }

    public func delete(key: String) throws {
        do { _ = try send("DELETE", key) } catch MediaStoreError.notFound { }   // S3 answers 204 anyway; MinIO may 404
    }

    public func signedURL(key: String, expiresIn: Int, now: Double) -> String {
        presigner.presignedGET(objectURL(key), expiresIn: expiresIn, now: now)
    }

    /// S3 answers at most this many keys per ListObjectsV2 request, whatever `max-keys` asks.
    static let maxKeysPerRequest = 1000

    /// ListObjectsV2: keys and LastModified from S3's XML answers. A `limit` above what S3
    /// answers at once is made of several requests, each starting after the last key of the
    /// one before, so only a page shorter than `limit` is the last (as the protocol says).
    public func list(prefix: String, after: String?, limit: Int) throws -> [StoredObject] {
        var found: [StoredObject] = []
        var start = after
        while found.count < limit {
            let (objects, truncated) = try listOnce(prefix: prefix, after: start, maxKeys: min(limit - found.count, Self.maxKeysPerRequest))
            found += objects
            guard truncated, let last = objects.last else { break }
            start = last.key
        }
        return found
    }

    /// One ListObjectsV2 request: its objects, and whether S3 has more after them.
    func listOnce(prefix: String, after: String?, maxKeys: Int) throws -> ([StoredObject], Bool) {
        var query = [("list-type", "2"), ("max-keys", String(maxKeys)), ("prefix", prefix)]
        if let after { query.append(("start-after", after)) }
        // In canonical order and encoding, so the query curl signs is the one S3 reads back.
        let url = endpoint + "/" + SigV4Presigner.encode(bucket) + "?"
            + query.sorted { $0.0 < $1.0 }.map { $0.0 + "=" + SigV4Presigner.encode($0.1) }.joined(separator: "&")
        let response = try signed("GET", url, what: "list")
        let truncated = Self.element("IsTruncated", in: Substring(String(decoding: response.body, as: UTF8.self))) == "true"
        return (try Self.listedObjects(response.body), truncated)
    }

    /// The `<Contents>` of a ListObjectsV2 answer.
    static func listedObjects(_ body: [UInt8]) throws -> [StoredObject] {
        let text = String(decoding: body, as: UTF8.self)
        return try text.split(separator: "<Contents>", omittingEmptySubsequences: false).dropFirst().map { entry in
            guard let key = element("Key", in: entry).map(xmlUnescaped), let modified = element("LastModified", in: entry),
                  let time = System.parseISO8601(modified) else {
                throw MediaStoreError.unavailable("S3 list answered an entry without Key or LastModified")
            }
            return StoredObject(key: key, modifiedAt: time)
        }
    }

    static func element(_ name: String, in xml: Substring) -> String? {
        guard let start = xml.firstRange(of: "<\(name)>"), let end = xml[start.upperBound...].firstRange(of: "</\(name)>") else { return nil }
        return String(xml[start.upperBound..<end.lowerBound])
    }

    static func xmlUnescaped(_ text: String) -> String {
        guard text.contains("&") else { return text }
        return text.replacing("&lt;", with: "<").replacing("&gt;", with: ">").replacing("&quot;", with: "\"")
            .replacing("&apos;", with: "'").replacing("&amp;", with: "&")
    }

    func objectURL(_ key: String) -> String {
        endpoint + "/" + SigV4Presigner.encode(bucket) + "/" + SigV4Presigner.encode(key, keepSlash: true)
    }

    /// One signed request; 2xx is the answer, 404 `notFound`, anything else `unavailable`
    /// with the status and S3's error code (never the message: it may echo the request).
    func send(_ method: String, _ key: String, body: [UInt8] = [], headers: [(String, String)] = []) throws -> HTTPResponse {
        guard MediaKeys.isValid(key) else { throw MediaStoreError.notFound(key: key) }
        do { return try signed(method, objectURL(key), body: body, headers: headers, what: method) } catch Missing.object {
            throw MediaStoreError.notFound(key: key)
        }
    }

    /// S3 answered 404 (for an object: `notFound`; for the bucket: unavailable).
    enum Missing: Error { case object }

    func signed(_ method: String, _ url: String, body: [UInt8] = [], headers: [(String, String)] = [], what: String) throws -> HTTPResponse {
        let hash = body.isEmpty ? Self.emptySHA256 : Crypto.hex(Crypto.sha256(body))
        let request = HTTPRequest(
            method: method, url: url, headers: headers + [("x-amz-content-sha256", hash)], body: body,
            timeout: timeout, maxResponseBytes: 64 << 20,
            authentication: .awsSigV4(provider: "aws:amz:\(presigner.region):s3",
                                      accessKeyID: presigner.accessKeyID, secretAccessKey: presigner.secretAccessKey))
        let response: HTTPResponse
        do { response = try http.send(request) } catch {
            throw MediaStoreError.unavailable("S3 \(what) failed: \(error)")   // HTTPClientError shows URLs redacted
        }
        switch response.status {
        case 200..<300: return response
        case 404 where what != "list": throw Missing.object
        default:
            let code = Self.errorCode(response.body).map { " \($0)" } ?? ""
            throw MediaStoreError.unavailable("S3 \(what) answered \(response.status)\(code)")
        }
    }

    /// The `<Code>` of an S3 error document, when it is a plain word.
    static func errorCode(_ body: [UInt8]) -> String? {
        let text = String(decoding: body.prefix(4096), as: UTF8.self)
        guard let start = text.firstRange(of: "<Code>"), let end = text[start.upperBound...].firstRange(of: "</Code>") else { return nil }
        let code = text[start.upperBound..<end.lowerBound]
        return !code.isEmpty && code.count <= 64 && code.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) ? String(code) : nil
    }
}

import LibCrypto
import PinGlass
import Platform
import WebURL

/// AWS Signature Version 4 in the query string (a "presigned URL"): whoever holds the URL may
/// GET the object until it expires, without credentials. Computed here with HMAC-SHA256 from
/// libcrypto (libcurl signs requests we send, not URLs we hand out). The payload is
/// `UNSIGNED-PAYLOAD` and `host` is the one signed header, as S3, R2 and MinIO expect
/// (AWS: "Authenticating Requests: Using Query Parameters").
///
/// ```swift
/// let signer = SigV4Presigner(accessKeyID: "AKID", secretAccessKey: secret, region: "auto")
/// let url = signer.presignedGET("https://acct.r2.cloudflarestorage.com/photos/a.jpg", expiresIn: 3600, now: now)
/// ```
public struct SigV4Presigner: Sendable {
    public var accessKeyID: String
    let secretAccessKey: String
    public var region: String
    public var service: String

    /// The longest validity SigV4 allows: 7 days.
    public static let maxExpires = 7 * 24 * 3600

    public init(accessKeyID: String, secretAccessKey: String, region: String, service: String = "s3") {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.region = region
        self.service = service
    }

    /// `url` (absolute, path already percent-encoded, no query) with the signature appended;
    /// valid from `now` for `expiresIn` seconds (clamped to 1 s … 7 days).
    public func presignedGET(_ url: String, expiresIn: Int, now: Double) -> String {
        guard let parsed = HTTPURL(url) else { return url }
        let defaultPort = parsed.scheme == "https" ? 443 : 80
        let host = (parsed.host.contains(":") ? "[\(parsed.host)]" : parsed.host)
            + (parsed.port.map { $0 == defaultPort ? "" : ":\($0)" } ?? "")
        let path = parsed.path.isEmpty ? "/" : parsed.path
        let (amzDate, day) = Self.timestamps(now)
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let query = [
            ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
            ("X-Amz-Credential", "\(accessKeyID)/\(scope)"),
            ("X-Amz-Date", amzDate),
            ("X-Amz-Expires", String(min(max(expiresIn, 1), Self.maxExpires))),
            ("X-Amz-SignedHeaders", "host"),
        ].map { "\(Self.encode($0.0))=\(Self.encode($0.1))" }.joined(separator: "&")   // already sorted by name
        let canonicalRequest = ["GET", path, query, "host:\(host)\n", "host", "UNSIGNED-PAYLOAD"].joined(separator: "\n")
        let stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope, Crypto.sha256Hex(canonicalRequest)].joined(separator: "\n")
        let signature = Crypto.hex(Crypto.hmacSHA256(key: signingKey(day: day), message: Array(stringToSign.utf8)))
        let base = url.firstIndex(of: "?").map { String(url[..<$0]) } ?? url
        return base + "?" + query + "&X-Amz-Signature=" + signature
    }

    /// HMAC chain "AWS4"+secret → date → region → service → "aws4_request".
    func signingKey(day: String) -> [UInt8] {
        [day, region, service, "aws4_request"].reduce(Array("AWS4\(secretAccessKey)".utf8)) { key, part in
            Crypto.hmacSHA256(key: key, message: Array(part.utf8))
        }
    }

    /// `20130524T000000Z` and `20130524` for a Unix time (UTC).
    static func timestamps(_ now: Double) -> (String, String) {
        (System.utc(now, .basic), System.utc(now, .basicDay))
    }

    /// SigV4's URI encoding: every byte but `A-Z a-z 0-9 - _ . ~` as `%XX`; `/` too unless
    /// `keepSlash` (object paths).
    public static func encode(_ text: String, keepSlash: Bool = false) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: "/") where keepSlash:
                out += "/"
            default:
                let digits = Array("0123456789ABCDEF")
                out += "%" + String(digits[Int(byte >> 4)]) + String(digits[Int(byte & 0xF)])
            }
        }
        return out
    }
}

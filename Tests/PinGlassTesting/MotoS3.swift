import Foundation
import HTTPClient
import PinGlass
import LibCrypto
import Providers

/// The real S3-compatible server the tests run against: moto's server from PyPI, started by
/// scripts/test.sh on loopback (`PINGLASS_TEST_S3_URL`). Without it the S3 tests fail.
///
/// Prepared once per test process: an IAM user whose access key may do `s3:*`, a bucket of
/// its own, and moto's authentication switched on, so every request's SigV4 signature is
/// checked against that key (moto does so only when `reset-auth` tells it to). That switch is
/// the whole server's: a process that uses moto holds it alone (a run-wide lock, taken on
/// first use and kept until the process ends) so tests running side by side never turn it
/// off under each other.
///
/// ```swift
/// let moto = try MotoS3.shared()
/// let store = moto.store()
/// try store.put(key: "references/a.jpg", bytes: jpeg, contentType: "image/jpeg")
/// ```
public final class MotoS3: @unchecked Sendable {
    public let url: String
    public let bucket: String
    public let region = "us-east-1"
    public let accessKeyID: String
    public let secretAccessKey: String
    let http = HTTPClient()

    nonisolated(unsafe) private static var prepared: MotoS3?
    private static let lock = NSLock()

    public static func shared() throws -> MotoS3 {
        try lock.withLock {
            if let prepared { return prepared }
            try holdServer()
            let moto = try MotoS3()
            prepared = moto
            return moto
        }
    }

    nonisolated(unsafe) private static var serverLockFD: Int32 = -1

    /// Takes moto for this process until it exits (waits while another process has it).
    static func holdServer() throws {
        guard serverLockFD < 0 else { return }
        serverLockFD = open(try TestEnvironment.tmp() + "/moto.lock", O_CREAT | O_RDWR, 0o644)
        while flock(serverLockFD, LOCK_EX) != 0 && errno == EINTR {}
    }

    public struct SetupFailed: Error, CustomStringConvertible {
        public let step: String
        public let status: Int
        public let body: String
        public var description: String { "moto setup failed at \(step): \(status) \(body.prefix(300))" }
    }

    private init() throws {
        guard let url = ProcessInfo.processInfo.environment["PINGLASS_TEST_S3_URL"], !url.isEmpty else {
            throw TestEnvironment.Missing(name: "PINGLASS_TEST_S3_URL")
        }
        self.url = url
        bucket = "pinglass-test-" + UUID().uuidString.prefix(8).lowercased()
        // The first requests after reset-auth are not authenticated: they create the user.
        try Self.resetAuth(http, url, afterRequests: "inf")
        let user = "pinglass-" + UUID().uuidString.prefix(8).lowercased()
        _ = try Self.iam(http, url, ["Action": "CreateUser", "UserName": user])
        let key = try Self.iam(http, url, ["Action": "CreateAccessKey", "UserName": user])
        guard let id = Self.element("AccessKeyId", in: key), let secret = Self.element("SecretAccessKey", in: key) else {
            throw SetupFailed(step: "CreateAccessKey", status: 200, body: key)
        }
        accessKeyID = id
        secretAccessKey = secret
        let policy = #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#
        _ = try Self.iam(http, url, ["Action": "PutUserPolicy", "UserName": user, "PolicyName": "s3", "PolicyDocument": policy])
        try requireSignatures(true)
        try Self.check("CreateBucket", try signed("PUT", "/" + bucket))
    }

    /// A store on this server's bucket; `secretAccessKey` to try a wrong one.
    public func store(accessKeyID: String? = nil, secretAccessKey: String? = nil, timeout: Double = 10) -> S3MediaStore {
        S3MediaStore(endpoint: url, bucket: bucket, region: region, accessKeyID: accessKeyID ?? self.accessKeyID,
                     secretAccessKey: secretAccessKey ?? self.secretAccessKey, timeout: timeout)
    }

    /// On: moto checks the SigV4 signature of every request (Authorization header) against
    /// the IAM key. Off: it checks nothing, which is the only way it serves a presigned GET
    /// (with authentication on, moto 5 answers a query-signed request 500).
    public func requireSignatures(_ on: Bool) throws {
        try Self.resetAuth(http, url, afterRequests: on ? "0" : "inf")
    }

    /// Runs `body` with moto's signature checks off, then on again. For listings only: moto
    /// computes a listing's signature from its query after decoding it, so a `prefix` or
    /// `start-after` with `/` (which S3 wants signed as `%2F`, as boto3 and we send it) never
    /// matches there; real S3 and R2 check it as sent.
    public static func withoutListSignatures<T>(_ moto: MotoS3, _ body: () throws -> T) throws -> T {
        try moto.requireSignatures(false)
        defer { try? moto.requireSignatures(true) }
        return try body()
    }

    /// Moto authenticates every request after the next `count` ("inf": none).
    static func resetAuth(_ http: HTTPClient, _ url: String, afterRequests count: String) throws {
        try check("reset-auth", try http.send(HTTPRequest(method: "POST", url: url + "/moto-api/reset-auth",
                                                          headers: [("Content-Type", "text/plain")], body: Array(count.utf8))))
    }

    /// A request signed with this server's key (for what MediaStore does not expose).
    public func signed(_ method: String, _ path: String, body: [UInt8] = []) throws -> HTTPResponse {
        try http.send(HTTPRequest(method: method, url: url + path,
                                  headers: [("x-amz-content-sha256", Crypto.hex(Crypto.sha256(body)))], body: body,
                                  authentication: .awsSigV4(provider: "aws:amz:\(region):s3", accessKeyID: accessKeyID,
                                                            secretAccessKey: secretAccessKey)))
    }

    /// An IAM query-API call. Moto routes it by the credential scope of the signature, which
    /// it does not check yet (made before authentication is switched on).
    static func iam(_ http: HTTPClient, _ url: String, _ params: [String: String]) throws -> String {
        let form = (params.merging(["Version": "2010-05-08"]) { $1 }).sorted { $0.key < $1.key }
            .map { "\($0.key)=\(SigV4Presigner.encode($0.value))" }.joined(separator: "&")
        let response = try http.send(HTTPRequest(
            method: "POST", url: url + "/", headers: [("Content-Type", "application/x-www-form-urlencoded")], body: Array(form.utf8),
            authentication: .awsSigV4(provider: "aws:amz:us-east-1:iam", accessKeyID: "SETUP", secretAccessKey: "setup")))
        try check(params["Action"] ?? "IAM", response)
        return response.text
    }

    static func check(_ step: String, _ response: HTTPResponse) throws {
        guard (200..<300).contains(response.status) else { throw SetupFailed(step: step, status: response.status, body: response.text) }
    }

    static func element(_ name: String, in xml: String) -> String? {
        guard let start = xml.range(of: "<\(name)>"), let end = xml.range(of: "</\(name)>", range: start.upperBound..<xml.endIndex)
        else { return nil }
        return String(xml[start.upperBound..<end.lowerBound])
    }
}

import PinGlassConfig
import Platform
import ProviderWire
#if canImport(Glibc)
import Glibc
#endif
import WebURL

/// Why a Kie result was not taken, and whether trying again can help.
public enum ResultDownloadError: Error, Equatable, CustomStringConvertible {
    /// The URL is not on `KIE_RESULT_HOSTS`, or is plain http to a host that is not
    /// loopback, or its host resolved to a loopback, private or other non-public address
    /// (refused at connect time). Retried (an operator may fix the list) until the task's deadline.
    case refusedURL(String)
    /// No answer, a timeout, or a status other than 200 (an expired URL answers 404):
    /// retried at the next poll.
    case unavailable(String)
    /// Larger than the cap: the same URL will not shrink, the task fails.
    case tooLarge(Int)
    /// Not a JPEG, PNG or WebP by its first bytes: the task fails.
    case notAnImage

    /// Trying again gets the same answer: the task fails with `failCode`.
    public var isPermanent: Bool {
        switch self {
        case .tooLarge, .notAnImage: return true
        case .refusedURL, .unavailable: return false
        }
    }

    /// The task's `fail_code` for a permanent failure; the counter's name for a retried one.
    public var code: String {
        switch self {
        case .refusedURL: return "kie.result_url_refused"
        case .unavailable: return "kie.download_failures"
        case .tooLarge: return "result_too_large"
        case .notAnImage: return "result_not_image"
        }
    }

    public var description: String {
        switch self {
        case .refusedURL(let why): return "result URL refused (\(why))"
        case .unavailable(let why): return "result download failed: \(why)"
        case .tooLarge(let cap): return "result larger than \(cap) bytes"
        case .notAnImage: return "the result is not a JPEG, PNG or WebP image"
        }
    }
}

/// One result transfer as the rules allow it (`ResultDownload.request`): what the downloader
/// must hold the connection to.
public struct ResultTransfer: Equatable, Sendable {
    public let url: String
    /// Whole-transfer limit, seconds.
    public let timeout: Double
    /// A larger answer fails with `ResultDownloadError.tooLarge`.
    public let maxBytes: Int
    /// Refuse to connect when the address the host resolves to is loopback, private or
    /// otherwise non-public (checked on the address connected to, after DNS).
    public let refuseInternalAddresses: Bool

    public init(url: String, timeout: Double, maxBytes: Int, refuseInternalAddresses: Bool) {
        self.url = url
        self.timeout = timeout
        self.maxBytes = maxBytes
        self.refuseInternalAddresses = refuseInternalAddresses
    }
}

/// Transfers result files: `HTTPResultDownloader` (the Providers target) over libcurl, never
/// following a redirect; tests may set another through `Dependencies.resultDownloader`.
public protocol ResultDownloader: AnyObject {
    /// Runs the transfers concurrently (at most `maxConcurrent` at once) and hands back each
    /// one's outcome with its index, in completion order, once no transfer is on the wire (a
    /// wave of up to `maxConcurrent`; then the next starts), so `each` may be slow. The body
    /// of a 200; `.unavailable` for no answer, a timeout or another status; `.tooLarge` past
    /// `maxBytes`; `.refusedURL` when the connection was refused for a non-public address.
    func download(_ transfers: [ResultTransfer], maxConcurrent: Int,
                  each: (Int, Result<[UInt8], ResultDownloadError>) -> Void) throws
}

/// The rules for fetching finished Kie images (at once: their URLs expire within hours, or
/// sooner), and the fetching through a `ResultDownloader`:
/// - the host must be on `KIE_RESULT_HOSTS`: equal to an entry, or, for an entry written
///   `*.example.com`, any subdomain of example.com (not example.com itself);
/// - https only, except to loopback hosts (local runs and tests);
/// - the address connected to must be public: loopback, private, CGNAT, link-local,
///   unique-local, unspecified and IPv4-mapped forms of these are refused when the
///   connection is made, after DNS (so a listed name that resolves, or rebinds, to the
///   machine itself or the internal network is refused too), unless `allowInternalAddresses`
///   (the simulator runs on this machine: `KIE_API_URL` is loopback on an install that is
///   not public, `internalAddressesAllowed`);
/// - no redirects (the HTTP client never follows them), a size cap, and the type told by
///   magic bytes, never by the server's word.
///
/// ```swift
/// let download = ResultDownload(allowedHosts: ["tempfile.aiquickdraw.com"], maxBytes: 20 << 20, timeout: 30)
/// let image = try download.fetch("https://tempfile.aiquickdraw.com/r/abc.png", via: deps.resultDownloader)
/// try download.fetchAll(urls, via: deps.resultDownloader, maxConcurrent: 8) { index, result in … }  // as each completes
/// ```
public struct ResultDownload {
    public typealias Image = (bytes: [UInt8], contentType: String)

    /// Lower case; `*.`-prefixed entries match subdomains only.
    public let allowedHosts: [String]
    public let maxBytes: Int
    public let timeout: Double
    /// Connections to non-public addresses are allowed (a local simulator serves the results).
    public let allowInternalAddresses: Bool

    /// Hosts Kie is known to serve result files from: an entry naming one of these exactly
    /// needs no `*.` (doctor warns about other entries without it).
    public static let knownKieHosts = ["tempfile.aiquickdraw.com"]

    public init(allowedHosts: [String], maxBytes: Int, timeout: Double, allowInternalAddresses: Bool = false) {
        self.allowedHosts = allowedHosts.map { $0.trimmingSpaces().lowercased() }.filter { !$0.isEmpty }
        self.maxBytes = maxBytes
        self.timeout = timeout
        self.allowInternalAddresses = allowInternalAddresses
    }

    /// Results may come from internal addresses only when Kie itself is on this machine (the
    /// simulator of local runs and tests: `KIE_API_URL` is loopback) AND the install is not
    /// public (`PUBLIC_BASE_URL` unset or loopback). A public install that reaches Kie through
    /// a local egress proxy has a loopback `KIE_API_URL` too, and keeps the check.
    public static func internalAddressesAllowed(_ config: Config) -> Bool {
        kieURLIsLoopback(config) && !config.isPublicInstall
    }

    /// `KIE_API_URL` is a loopback address: a local simulator, or a local proxy to Kie.
    public static func kieURLIsLoopback(_ config: Config) -> Bool {
        HTTPURL(config.kieAPIURL)?.isLoopback == true
    }

    /// Entries without `*.` that are neither a host Kie is known to serve from nor an address
    /// or `localhost`: they match that exact host only (subdomains need `*.`).
    public static func entriesMatchingOnlyThemselves(_ entries: [String]) -> [String] {
        entries.map { $0.lowercased() }.filter { entry in
            !entry.hasPrefix("*.") && !knownKieHosts.contains(entry) && entry != "localhost"
                && !isIPAddress(entry)
        }
    }

    /// Entries without `*.` that are a parent domain of a host Kie serves results from
    /// (`aiquickdraw.com` for `tempfile.aiquickdraw.com`), with that host: written when an
    /// entry matched its subdomains too; now they match none of Kie's results, and every
    /// photo would be refused (poll-kie refuses to start with one).
    public static func parentDomainEntries(_ entries: [String]) -> [(entry: String, host: String)] {
        entries.map { $0.lowercased() }.compactMap { entry in
            guard !entry.hasPrefix("*."), let host = knownKieHosts.first(where: { $0.hasSuffix("." + entry) }) else { return nil }
            return (entry, host)
        }
    }

    /// An IPv4 or IPv6 address in text form (not a host name).
    static func isIPAddress(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }

    /// The one rule for where results may come from (the address check comes at connect time).
    public func allows(_ url: String) -> Bool {
        // Printable ASCII only: what we check is then exactly what libcurl connects to.
        guard url.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }), let parsed = HTTPURL(url) else { return false }
        guard parsed.scheme == "https" || parsed.isLoopback else { return false }
        return lists(host: parsed.host)
    }

    /// The host is on `KIE_RESULT_HOSTS`: equal to an entry, or under a `*.` entry.
    public func lists(host: String) -> Bool {
        let host = host.lowercased()
        return allowedHosts.contains { entry in entry.hasPrefix("*.") ? host.hasSuffix(entry.dropFirst()) : host == entry }
    }

    /// The host of a URL refused because its host is not on `KIE_RESULT_HOSTS` (nil when the
    /// host is listed, or the URL has none: refused for another reason).
    public func unlistedHost(_ url: String) -> String? {
        guard let host = HTTPURL(url)?.host, !lists(host: host) else { return nil }
        return host
    }

    /// The transfer for `url`, or why it is refused before any connection.
    public func request(_ url: String) throws(ResultDownloadError) -> ResultTransfer {
        guard allows(url) else {
            throw .refusedURL("not on KIE_RESULT_HOSTS, or http to a non-loopback host: \(HTTPURL.redact(url))")
        }
        return ResultTransfer(url: url, timeout: timeout, maxBytes: maxBytes, refuseInternalAddresses: !allowInternalAddresses)
    }

    /// What a finished transfer brought: an image by its first bytes, or why not.
    public static func image(_ body: Result<[UInt8], ResultDownloadError>) -> Result<Image, ResultDownloadError> {
        body.flatMap { bytes in ImageType.sniff(bytes).map { .success((bytes, $0)) } ?? .failure(.notAnImage) }
    }

    /// One result, fetched now (the poller fetches a round's at once, `fetchAll`). Throws
    /// only when the downloader refuses to run (`ProviderCallInTransaction`).
    public func fetch(_ url: String, via downloader: any ResultDownloader) throws -> Result<Image, ResultDownloadError> {
        var outcome: Result<Image, ResultDownloadError> = .failure(.unavailable("not fetched"))
        try fetchAll([url], via: downloader, maxConcurrent: 1) { _, result in outcome = result }
        return outcome
    }

    /// Downloads the URLs concurrently (at most `maxConcurrent` at once) and hands back each
    /// result with the URL's index, in completion order, once no transfer is on the wire
    /// (a wave of up to `maxConcurrent`; then the next starts), so `each` may be slow (an
    /// upload, a commit) without the other downloads' time limits running out meanwhile.
    /// A refused URL's result comes first, without a transfer.
    public func fetchAll(_ urls: [String], via downloader: any ResultDownloader, maxConcurrent: Int,
                         each: (Int, Result<Image, ResultDownloadError>) -> Void) throws {
        var transfers: [ResultTransfer] = []
        var indexOfTransfer: [Int] = []
        for (i, url) in urls.enumerated() {
            do {
                transfers.append(try request(url))
                indexOfTransfer.append(i)
            } catch {
                each(i, .failure(error))
            }
        }
        try downloader.download(transfers, maxConcurrent: maxConcurrent) { t, body in
            each(indexOfTransfer[t], Self.image(body))
        }
    }
}

import HTTPClient

/// Why a Kie result was not taken, and whether trying again can help.
public enum ResultDownloadError: Error, Equatable, CustomStringConvertible {
    /// The URL is not on `KIE_RESULT_HOSTS`, or is plain http to a host that is not
    /// loopback. Retried (an operator may fix the list) until the task's deadline.
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
        case .refusedURL(let url): return "result URL refused (not on KIE_RESULT_HOSTS, or http to a non-loopback host): \(url)"
        case .unavailable(let why): return "result download failed: \(why)"
        case .tooLarge(let cap): return "result larger than \(cap) bytes"
        case .notAnImage: return "the result is not a JPEG, PNG or WebP image"
        }
    }
}

/// Fetches a finished Kie image at once (its URL expires; external-apis.md §2.1) under the
/// download rules of reliability.md rule 12: only from hosts on `KIE_RESULT_HOSTS` (exact
/// name, or a subdomain of one), https only except to loopback hosts (local runs and tests),
/// no redirects (the HTTP client never follows them, so an allowed host cannot bounce us
/// elsewhere), a size cap, and the type told by magic bytes, never by the server's word.
///
/// ```swift
/// let download = ResultDownload(allowedHosts: ["tempfile.aiquickdraw.com"], maxBytes: 20 << 20, timeout: 30)
/// let image = try download.fetch("https://tempfile.aiquickdraw.com/r/abc.png")   // bytes + "image/png"
/// ```
public struct ResultDownload {
    public let allowedHosts: [String]
    public let maxBytes: Int
    public let timeout: Double
    let http: HTTPClient

    public init(allowedHosts: [String], maxBytes: Int, timeout: Double, http: HTTPClient = HTTPClient()) {
        self.allowedHosts = allowedHosts.map(Self.normalized).filter { !$0.isEmpty }
        self.maxBytes = maxBytes
        self.timeout = timeout
        self.http = http
    }

    /// The one rule for where results may come from.
    public func allows(_ url: String) -> Bool {
        // Printable ASCII only: what we check is then exactly what libcurl connects to.
        guard url.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }), let parsed = HTTPURL(url) else { return false }
        guard parsed.scheme == "https" || parsed.isLoopback else { return false }
        return allowedHosts.contains { parsed.host == $0 || parsed.host.hasSuffix("." + $0) }
    }

    public func fetch(_ url: String) throws(ResultDownloadError) -> (bytes: [UInt8], contentType: String) {
        guard allows(url) else { throw .refusedURL(HTTPURL.redact(url)) }
        let response: HTTPResponse
        do {
            response = try http.send(HTTPRequest(url: url, timeout: timeout, maxResponseBytes: maxBytes))
        } catch HTTPClientError.tooLarge(let cap) {
            throw .tooLarge(cap)
        } catch {
            throw .unavailable("\(error)")
        }
        guard response.status == 200 else { throw .unavailable("HTTP \(response.status) from \(HTTPURL.redact(url))") }
        guard let type = ImageType.sniff(response.body) else { throw .notAnImage }
        return (response.body, type)
    }

    /// `Example.COM`, `.example.com` and `*.example.com` all mean example.com and its subdomains.
    static func normalized(_ host: String) -> String {
        var h = host.trimmingSpaces().lowercased()
        if h.hasPrefix("*.") { h.removeFirst(2) }
        while h.hasPrefix(".") { h.removeFirst() }
        return h
    }
}

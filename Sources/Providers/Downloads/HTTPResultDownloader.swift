import HTTPClient
import PinGlass
import WebURL

/// Kie's result files over libcurl, as `ResultDownload` allows them: concurrent transfers
/// (curl multi) handed back once none is on the wire, never following a redirect, capped at
/// each transfer's `maxBytes`, and, unless allowed, refused at connect time when the host
/// resolves to a loopback, private or other non-public address (libcurl's open-socket
/// check, after DNS: a listed name that resolves or rebinds to the machine itself is refused
/// too).
///
/// ```swift
/// let downloader = HTTPResultDownloader()
/// try downloader.download(transfers, maxConcurrent: 8) { index, body in … }
/// ```
public final class HTTPResultDownloader: ResultDownloader {
    public init() {}

    public func download(_ transfers: [ResultTransfer], maxConcurrent: Int,
                         each: (Int, Result<[UInt8], ResultDownloadError>) -> Void) {
        guard !transfers.isEmpty else { return }
        let batch = HTTPBatch(maxConcurrent: maxConcurrent)
        for t in transfers {
            batch.add(HTTPRequest(url: t.url, timeout: t.timeout, maxResponseBytes: t.maxBytes,
                                  refuseInternalAddresses: t.refuseInternalAddresses))
        }
        // Ids come back in the order added: one per transfer.
        batch.run(deliverWhenIdle: true) { id, result in
            each(id, Self.body(result, url: transfers[id].url))
        }
    }

    /// The body of a 200, or why there is none.
    static func body(_ result: Result<HTTPResponse, HTTPClientError>, url: String) -> Result<[UInt8], ResultDownloadError> {
        switch result {
        case .success(let r) where r.status == 200: return .success(r.body)
        case .success(let r): return .failure(.unavailable("HTTP \(r.status) from \(HTTPURL.redact(url))"))
        case .failure(.tooLarge(let cap)): return .failure(.tooLarge(cap))
        case .failure(.refusedAddress(let url)): return .failure(.refusedURL("the host resolves to a non-public address: \(url)"))
        case .failure(let error): return .failure(.unavailable("\(error)"))
        }
    }
}

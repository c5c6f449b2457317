#if canImport(Glibc)
import Glibc
#endif
import CCurl
import WebURL

/// Spaces the starts of transfers: at most `perSecond` per second to one host (scheme, host
/// and port), or to all hosts together when `perHost` is false. Starts are spread evenly,
/// `1 / perSecond` seconds apart, never in bursts: a burst of N at the end of one second and
/// N more at the start of the next would show a server's sliding window 2N (Kie's recordInfo
/// allows 10 per second per key and answers 429 beyond). Keep one pacer for as long as the
/// limit applies (a polling loop), so back-to-back batches are paced as one stream.
/// Not thread-safe: one pacer per thread.
///
/// ```swift
/// let pacer = HTTPPacer(perSecond: 10)
/// client.stream(requests, pacer: pacer) { i, result in … }
/// ```
public final class HTTPPacer: @unchecked Sendable {
    public let perSecond: Double
    public let perHost: Bool
    /// Monotonic time before which the next start for a key must wait.
    private var nextStart: [String: Double] = [:]

    public init(perSecond: Double, perHost: Bool = true) {
        precondition(perSecond > 0, "a pace needs a positive rate")
        self.perSecond = perSecond
        self.perHost = perHost
    }

    /// Seconds until a transfer to `url` may start (0: now).
    public func delay(for url: String, now: Double = HTTPPacer.now()) -> Double {
        max(0, (nextStart[key(url)] ?? 0) - now)
    }

    /// Records a start. The next one is a full interval after this one, measured from the
    /// actual start (a late start never lets the following one come early).
    public func started(_ url: String, now: Double = HTTPPacer.now()) {
        nextStart[key(url)] = now + 1 / perSecond
    }

    func key(_ url: String) -> String {
        guard perHost, let u = HTTPURL(url) else { return "" }
        return "\(u.scheme)://\(u.host):\(u.port ?? (u.scheme == "https" ? 443 : 80))"
    }

    /// Monotonic seconds (never jumps with the wall clock).
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

/// Concurrent transfers (curl multi) that hand back each result the moment its transfer
/// completes, in completion order, while the others are still on the wire; a caller stores
/// the first answers, or adds follow-up transfers (`add` works inside `each`), without waiting
/// for the slowest. At most `maxConcurrent` run at once; an optional pacer spaces the starts.
///
/// ```swift
/// let batch = HTTPBatch(maxConcurrent: 16, pacer: HTTPPacer(perSecond: 10))
/// for url in urls { batch.add(HTTPRequest(url: url)) }
/// batch.run { id, result in
///     if case .success(let r) = result, r.status == 200 { batch.add(HTTPRequest(url: next(r))) }
/// }
/// ```
public final class HTTPBatch {
    public let maxConcurrent: Int
    public let pacer: HTTPPacer?
    private var requests: [HTTPRequest] = []
    /// Ids not yet started, first added first.
    private var pending: [Int] = []
    private var active: [OpaquePointer: (Int, Transfer)] = [:]

    public init(maxConcurrent: Int = 16, pacer: HTTPPacer? = nil) {
        self.maxConcurrent = max(1, maxConcurrent)
        self.pacer = pacer
    }

    /// Queues a transfer; its id (0, 1, 2 … in the order added) comes back with its result.
    @discardableResult
    public func add(_ request: HTTPRequest) -> Int {
        requests.append(request)
        pending.append(requests.count - 1)
        return requests.count - 1
    }

    /// Runs until every queued transfer, including those added by `each`, has completed.
    ///
    /// `each` runs inside the transfer loop: while it runs, no transfer is driven, yet each
    /// one's time limit keeps counting. For slow work in `each` (an upload, a commit), pass
    /// `deliverWhenIdle`: completed results are then held, no new transfer starts, and they
    /// are handed over as soon as no transfer is active (the first ones early, in waves of
    /// up to `maxConcurrent`), so no transfer can time out while `each` works.
    public func run(deliverWhenIdle: Bool = false, each: (Int, Result<HTTPResponse, HTTPClientError>) -> Void) {
        guard let multi = curl_multi_init() else {
            while !pending.isEmpty { each(pending.removeFirst(), .failure(.transport(code: -1, message: "curl_multi_init failed"))) }
            return
        }
        var held: [(Int, Result<HTTPResponse, HTTPClientError>)] = []
        func complete(_ id: Int, _ result: Result<HTTPResponse, HTTPClientError>) {
            if deliverWhenIdle { held.append((id, result)) } else { each(id, result) }
        }
        defer {
            for (easy, _) in active { curl_multi_remove_handle(multi, UnsafeMutableRawPointer(easy)) }
            active.removeAll()
            curl_multi_cleanup(multi)
        }
        while !pending.isEmpty || !active.isEmpty || !held.isEmpty {
            if active.isEmpty && !held.isEmpty {
                // Nothing on the wire: the held results can take their time.
                let ready = held
                held.removeAll()
                for (id, result) in ready { each(id, result) }
                continue
            }
            // While results wait to be handed over, nothing new starts, so the wave drains.
            let wait = held.isEmpty ? startDue(multi, complete) : 0.1
            var running: Int32 = 0
            curl_multi_perform(multi, &running)
            var left: Int32 = 0
            var completed = 0
            while let msg = curl_multi_info_read(multi, &left) {
                guard msg.pointee.msg == CURLMSG_DONE, let easy = msg.pointee.easy_handle,
                      let (id, transfer) = active.removeValue(forKey: OpaquePointer(easy)) else { continue }
                let rc = msg.pointee.data.result
                curl_multi_remove_handle(multi, easy)
                completed += 1
                complete(id, Result { try transfer.finish(rc) }.mapError(HTTPClientError.wrap))
            }
            if completed == 0 && (!active.isEmpty || (held.isEmpty && !pending.isEmpty)) {
                // Wakes on socket activity at once; otherwise at the next paced start (or 100 ms).
                let ms = Int32(min(100, max(1, (wait * 1000).rounded(.up))))
                curl_multi_poll(multi, nil, 0, ms, nil)
            }
        }
    }

    /// Starts what the concurrency limit and the pacer allow now, in queue order (a paced host
    /// does not hold back transfers to other hosts); the seconds until the next paced start.
    private func startDue(_ multi: UnsafeMutableRawPointer, _ each: (Int, Result<HTTPResponse, HTTPClientError>) -> Void) -> Double {
        var wait = Double.infinity
        var index = 0
        var blocked = Set<String>()
        while index < pending.count && active.count < maxConcurrent {
            let id = pending[index]
            let url = requests[id].url
            if let pacer {
                let key = pacer.key(url)
                if blocked.contains(key) { index += 1; continue }
                let d = pacer.delay(for: url)
                if d > 0 { wait = min(wait, d); blocked.insert(key); index += 1; continue }
                pacer.started(url)
            }
            pending.remove(at: index)
            do {
                let t = try Transfer(requests[id])
                curl_multi_add_handle(multi, t.handle)
                active[OpaquePointer(t.handle)] = (id, t)
            } catch {
                each(id, .failure(HTTPClientError.wrap(error)))
            }
        }
        return wait
    }
}

extension HTTPClient {
    /// Runs the requests concurrently and calls `each(index, result)` as each one completes
    /// (completion order, not request order), not when the batch ends.
    public func stream(_ requests: [HTTPRequest], maxConcurrent: Int = 16, pacer: HTTPPacer? = nil,
                       each: (Int, Result<HTTPResponse, HTTPClientError>) -> Void) {
        let batch = HTTPBatch(maxConcurrent: maxConcurrent, pacer: pacer)
        for r in requests { batch.add(r) }
        batch.run(each: each)
    }
}

extension HTTPClientError {
    static func wrap(_ error: any Error) -> HTTPClientError {
        error as? HTTPClientError ?? .transport(code: -1, message: "\(error)")
    }
}

import Foundation
import HTTPClient

/// One API request on another thread, awaited later.
public final class InFlight: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<TestClient.Response, Error>?
    public init(_ body: @escaping @Sendable () throws -> TestClient.Response) {
        Thread.detachNewThread { [self] in
            result = Result { try body() }
            done.signal()
        }
    }
    public func wait() throws -> TestClient.Response {
        done.wait()
        return try result!.get()
    }
}

/// A bounded background load: `concurrency` threads sending requests until stopped.
public final class Load: @unchecked Sendable {
    private let lock = NSLock()
    private var running = true
    private var counts = (total: 0, failed: 0)
    private let group = DispatchGroup()

    public init(stack: Stack, path: String, concurrency: Int) {
        for _ in 0..<concurrency {
            group.enter()
            Thread.detachNewThread { [self] in
                let client = HTTPClient()
                var n = 0
                while lock.withLock({ running }) && n < 100_000 {
                    n += 1
                    let ok = (try? client.send(HTTPRequest(url: stack.baseURL + path, timeout: 5)).status) == 200
                    lock.withLock { counts.total += 1; if !ok { counts.failed += 1 } }
                }
                group.leave()
            }
        }
    }

    public func stop() -> (total: Int, failed: Int) {
        lock.withLock { running = false }
        group.wait()
        return lock.withLock { counts }
    }
}

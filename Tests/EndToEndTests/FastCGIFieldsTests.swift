import XCTest
import Foundation
import PinGlassTesting

/// Header fields are `HTTPFields` from the FastCGI params to the answer: a field sent twice
/// reaches the handler twice, and a field the handler adds twice is written twice. Spoken
/// straight to a real pool's socket (`FastCGIConnection`) whose handler echoes the request's
/// fields (`fastcgi-echo`: the same master, workers and libfcgi as `pinglass-fcgi`).
final class FastCGIFieldsTests: XCTestCase {
    var pool: ChildProcess?
    override func tearDown() {
        pool?.terminate()
        _ = pool?.wait()
    }

    func testRepeatedFieldsSurviveTheWorkerBothWays() throws {
        let dir = try TestEnvironment.makeTempDir("fcgi-fields")
        let socket = dir + "/echo.sock"
        let pool = try Subprocess.start(try TestEnvironment.binDir() + "/fastcgi-echo",
                                        ["--socket", socket, "--workers", "1", "--socket-mode", "0666"],
                                        environment: ProcessInfo.processInfo.environment, logPath: dir + "/echo.log")
        self.pool = pool
        try Subprocess.waitUntil("the echo pool's worker") {
            FileManager.default.fileExists(atPath: socket) && Subprocess.children(of: pool.pid).count == 1
        }

        let params = FastCGIConnection.params("GET", "/echo") + [
            ("HTTP_X_FORWARDED_FOR", "203.0.113.7"), ("HTTP_COOKIE", "session=a"),
            ("HTTP_X_FORWARDED_FOR", "10.0.0.1"), ("HTTP_COOKIE", "theme=dark"),
        ]
        let answer = try FastCGIConnection(socketPath: socket).request(params: params)
        XCTAssertEqual(answer.status, 200, answer.bodyText)
        XCTAssertEqual(answer.fields.filter { $0.name == "x-echo-x-forwarded-for" }.map(\.value), ["203.0.113.7", "10.0.0.1"],
                       "both X-Forwarded-For params reached the handler, in order")
        XCTAssertEqual(answer.fields.filter { $0.name == "x-echo-cookie" }.map(\.value), ["session=a", "theme=dark"])
        XCTAssertEqual(answer.fields.filter { $0.name == "set-cookie" }.map(\.value), ["session=a", "theme=dark"],
                       "two Set-Cookie fields written as two lines")
        XCTAssertEqual(answer.bodyText, "echo")
    }
}

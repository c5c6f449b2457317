import XCTest
import HTTPClient
import HTTPTypes
import PinGlass
import PinGlassTesting
import LibCrypto

/// What HTTPClient puts on the wire, seen by a loopback listener: libcurl's SigV4 signature
/// (checked against one computed elsewhere) and bodies per method.
final class HTTPClientTests: XCTestCase {
    /// libcurl's CURLOPT_AWS_SIGV4 through HTTPClient, with the payload hash sent as
    /// `x-amz-content-sha256`: a fixed request gets the signature an independent SigV4
    /// implementation computed for it (c50f934e…, docs/providers.md#s3-sigv4).
    func testLibcurlSignsWithTheSentPayloadHash() throws {
        let server = try LoopbackServer(answer: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        defer { server.stop() }
        let body = Array("hello r2".utf8)
        let hash = "f18d11218e7814319b7a555383d8eaa42b97ae6ec36594f37f1e256b0a386b12"
        XCTAssertEqual(Crypto.hex(Crypto.sha256(body)), hash)
        // The vector was made against port 18777: the Host header says so, whatever port we use.
        let request = HTTPRequest(method: "PUT", url: server.url + "/bucket/key.png",
                                  headers: [("Host", "127.0.0.1:18777"), ("Content-Type", "image/png"),
                                            ("x-amz-content-sha256", hash), ("X-Amz-Date", "20261129T114502Z")],
                                  body: body, authentication: .awsSigV4(provider: "aws:amz:auto:s3", accessKeyID: "AKID", secretAccessKey: "SECRET"))
        XCTAssertEqual(try HTTPClient().send(request).status, 200)
        let sent = try XCTUnwrap(server.requests.first)
        XCTAssertTrue(sent.hasPrefix("PUT /bucket/key.png HTTP/1.1\r\n"), sent)
        XCTAssertTrue(sent.contains("\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKID/20261129/auto/s3/aws4_request, "
                                    + "SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date, "
                                    + "Signature=c50f934eefbecaa128d35a7049ce71b86c4ef43d2b8d19bff6214d2226f453b0\r\n"), sent)
        XCTAssertTrue(sent.hasSuffix("\r\n\r\nhello r2"), sent)
        XCTAssertFalse(sent.contains("SECRET"))
    }

    func testBasicAuthentication() throws {
        let server = try LoopbackServer(answer: "HTTP/1.1 204 No Content\r\n\r\n")
        defer { server.stop() }
        _ = try HTTPClient().send(HTTPRequest(url: server.url + "/", authentication: .basic(user: "user", password: "pa:ss")))
        XCTAssertTrue(server.requests.first?.contains("\r\nAuthorization: Basic \(Crypto.base64(Array("user:pa:ss".utf8)))\r\n") == true,
                      server.requests.first ?? "")
    }

    func testAuthenticationDescriptionHidesSecrets() {
        XCTAssertFalse("\(HTTPAuthentication.awsSigV4(provider: "aws:amz:auto:s3", accessKeyID: "AKID", secretAccessKey: "top-secret"))".contains("top-secret"))
        XCTAssertFalse("\(HTTPAuthentication.basic(user: "u", password: "top-secret"))".contains("top-secret"))
    }

    /// A DELETE without a body sends no Content-Type or Content-Length (nothing to sign); an
    /// empty POST still says Content-Length: 0.
    func testEmptyBodiesPerMethod() throws {
        let server = try LoopbackServer(answer: "HTTP/1.1 204 No Content\r\n\r\n")
        defer { server.stop() }
        _ = try HTTPClient().send(HTTPRequest(method: "DELETE", url: server.url + "/a"))
        _ = try HTTPClient().send(HTTPRequest(method: "POST", url: server.url + "/b"))
        let sent = server.requests
        XCTAssertEqual(sent.count, 2)
        XCTAssertTrue(sent[0].hasPrefix("DELETE /a "), sent[0])
        XCTAssertFalse(sent[0].lowercased().contains("content-"), sent[0])
        XCTAssertTrue(sent[1].contains("Content-Length: 0\r\n"), sent[1])
    }

    /// A multipart request's body is libcurl's (`curl_mime`): its boundary in the
    /// Content-Type, each part with its name, file name and type, the bytes as given (an
    /// empty part too), and the closing delimiter.
    func testMultipartIsWrittenByLibcurl() throws {
        let server = try LoopbackServer(answer: "HTTP/1.1 204 No Content\r\n\r\n")
        defer { server.stop() }
        let parts = [HTTPRequest.Part(name: "chat_id", data: Array("42".utf8)), HTTPRequest.Part(name: "caption", data: []),
                     HTTPRequest.Part(name: "photo0", filename: "a.png", contentType: "image/png", data: Array("not really a png".utf8))]
        XCTAssertEqual(try HTTPClient().send(.multipart(server.url + "/bot1:x/sendMediaGroup", parts: parts)).status, 204)
        let sent = try XCTUnwrap(server.requests.first)
        XCTAssertTrue(sent.hasPrefix("POST /bot1:x/sendMediaGroup HTTP/1.1\r\n"), sent)
        let boundary = try XCTUnwrap(sent.firstRange(of: "Content-Type: multipart/form-data; boundary=").map { range in
            String(sent[range.upperBound...].prefix { !$0.isNewline })
        }, sent)
        XCTAssertFalse(boundary.isEmpty)
        XCTAssertTrue(sent.hasSuffix("\r\n\r\n--\(boundary)\r\n"
            + "Content-Disposition: form-data; name=\"chat_id\"\r\n\r\n42\r\n--\(boundary)\r\n"
            + "Content-Disposition: form-data; name=\"caption\"\r\n\r\n\r\n--\(boundary)\r\n"
            + "Content-Disposition: form-data; name=\"photo0\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n"
            + "not really a png\r\n--\(boundary)--\r\n"), sent)
    }

    /// A response keeps every field as the server sent it: a repeated field (two
    /// `Set-Cookie`, a name in two cases) has all its values in order, and a lookup ignores
    /// case; on the blocking and the concurrent path alike.
    func testRepeatedResponseFieldsAreKept() throws {
        let server = try LoopbackHTTPServer { _ in
            .init(status: 200, headers: [("Set-Cookie", "a=1; Path=/"), ("X-Trace", "one"), ("Set-Cookie", "b=2"), ("x-trace", "two"),
                                         ("Content-Type", "text/plain")], body: Array("ok".utf8))
        }
        defer { server.stop() }
        let client = HTTPClient()
        let blocking = try client.send(HTTPRequest(url: server.url + "/one"))
        let concurrent = try client.sendAll([HTTPRequest(url: server.url + "/two")])[0].get()
        for response in [blocking, concurrent] {
            XCTAssertEqual(response.status, 200)
            XCTAssertEqual(response.headerValues("set-cookie"), ["a=1; Path=/", "b=2"])
            XCTAssertEqual(response.headerValues("X-TRACE"), ["one", "two"])
            XCTAssertEqual(response.header("x-trace"), "one, two")
            XCTAssertEqual(response.header("CONTENT-TYPE"), "text/plain")
            XCTAssertEqual(response.headers.filter { $0.name.canonicalName == "set-cookie" }.count, 2)
            XCTAssertNil(response.header("x-absent"))
            XCTAssertEqual(response.text, "ok")
        }
    }
}

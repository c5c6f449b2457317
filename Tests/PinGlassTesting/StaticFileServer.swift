import Foundation

/// A real HTTP server on loopback for download tests: nginx serving a temporary folder, so
/// the code under test fetches over real sockets with real status codes (404 for a missing
/// file, as an expired Kie URL answers). Stop it in tearDown.
///
/// ```swift
/// let files = try StaticFileServer()
/// defer { files.stop() }
/// let url = try files.put("r/1.png", bytes: GenerationFixtures.png(1))   // http://127.0.0.1:<port>/r/1.png
/// ```
public final class StaticFileServer {
    public let dir: String
    public let port: Int
    let root: String

    public init() throws {
        dir = try TestEnvironment.makeTempDir("files")
        root = dir + "/www"
        port = Subprocess.freePort()
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let conf = """
            daemon on;
            pid \(dir)/nginx.pid;
            error_log \(dir)/error.log;
            events {}
            http {
                access_log off;
                client_body_temp_path \(dir)/b; fastcgi_temp_path \(dir)/f; proxy_temp_path \(dir)/p;
                uwsgi_temp_path \(dir)/u; scgi_temp_path \(dir)/s;
                default_type application/octet-stream;
                types { image/png png; image/jpeg jpg jpeg; image/webp webp; text/plain txt; }
                server { listen 127.0.0.1:\(port); root \(root); }
            }
            """
        try conf.write(toFile: dir + "/nginx.conf", atomically: true, encoding: .utf8)
        let status = try Subprocess.run("/usr/sbin/nginx", ["-p", dir, "-c", dir + "/nginx.conf"])
        guard status == 0 else { throw Subprocess.Failed(command: "nginx (static files)", status: status) }
        try Subprocess.waitUntil("static file server on \(port)") {
            (try? Subprocess.capture("/usr/bin/curl", ["-s", "-o", "/dev/null", "http://127.0.0.1:\(port)/"]).0) == 0
        }
    }

    public var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Writes a file to serve; its URL.
    @discardableResult
    public func put(_ path: String, bytes: [UInt8]) throws -> String {
        let file = root + "/" + path
        try FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        return baseURL + "/" + path
    }

    public func stop() {
        _ = try? Subprocess.run("/usr/sbin/nginx", ["-p", dir, "-c", dir + "/nginx.conf", "-s", "stop"])
    }
}

import Foundation
import HTTPClient
import PinGlass
import LibCrypto
import Providers

/// A running PinGlass: real nginx (from `nginx/local.conf.in`) in front of a real
/// pinglass-fcgi pool, against a test database. Stop it in tearDown.
///
/// ```swift
/// let stack = try Stack(database: db, workers: 2)
/// defer { stack.stop() }
/// let res = try stack.client.get("/api/health")   // TestClient.live(stack)
/// ```
public final class Stack: @unchecked Sendable {
    public let dir: String
    public let port: Int
    public let simPort: Int
    public let socket: String
    public let simSocket: String
    public var environment: [String: String]
    public private(set) var pool: ChildProcess?
    public private(set) var sim: ChildProcess?
    /// Plain HTTP to this stack, for what the API client does not cover: concurrent batches,
    /// bodies past nginx's limits, timeouts, URLs outside the API.
    public let http = HTTPClient()
    let workers: Int
    let poolArgs: [String]

    /// `withPool: false` starts nginx (and the simulator) only, for tests of a provider client.
    public init(database: TestDatabase, workers: Int = 2, poolArgs: [String] = [], env: [String: String] = [:],
                withSimulator: Bool = false, simPort: Int? = nil, withPool: Bool = true) throws {
        try TestEnvironment.requireTier(["e2e", "disruptive", "browser"], for: "a running stack (nginx, pool, simulator)", belongs: "EndToEndTests")
        dir = try TestEnvironment.makeTempDir("stack")
        port = Subprocess.freePort()
        self.simPort = simPort ?? Subprocess.freePort()
        socket = dir + "/fcgi.sock"
        simSocket = dir + "/sim.sock"
        self.workers = workers
        self.poolArgs = poolArgs
        try FileManager.default.createDirectory(atPath: dir + "/media", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/nginx", withIntermediateDirectories: true)
        var e = ProcessInfo.processInfo.environment
        e["DATABASE_URL"] = database.url
        e["PUBLIC_BASE_URL"] = "http://127.0.0.1:\(port)"
        e["STORAGE_DIR"] = dir + "/media"
        e["PUBLIC_MEDIA_URL"] = "http://127.0.0.1:\(port)/media"
        // The pool signs media links with it and nginx checks them with it (local.conf.in).
        e["MEDIA_KEY_SECRET"] = Crypto.hex(Crypto.randomBytes(32))
        e["LOG_FORMAT"] = "json"
        e["PINGLASS_MIGRATIONS_DIR"] = try TestDatabase.migrationsDir()
        e["PINGLASS_ENV_FILE"] = dir + "/empty.env"
        _ = FileManager.default.createFile(atPath: dir + "/empty.env", contents: Data())
        // Every provider is the simulator's (started or not) unless a test names another: a
        // test never reaches the real bank, Kie or Bot API, whatever the developer's
        // environment holds (and the simulator refuses to start beside a real one).
        e["TBANK_API_URL"] = "http://127.0.0.1:\(self.simPort)/v2"
        e["KIE_API_URL"] = "http://127.0.0.1:\(self.simPort)/kie"
        e["TELEGRAM_API_URL"] = "http://127.0.0.1:\(self.simPort)/telegram"
        e["TELEGRAM_BOT_TOKEN"] = Fixtures.botToken
        e.merge(env) { $1 }
        environment = e
        try startNginx()
        if withSimulator { try startSimulator() }
        if withPool { try startPool() }
    }

    public var baseURL: String { "http://127.0.0.1:\(port)" }
    /// The media store the pool uses (STORAGE_DIR under this stack, links signed for its nginx).
    public var media: FileMediaStore {
        FileMediaStore(directory: environment["STORAGE_DIR"] ?? dir + "/media", publicURL: environment["PUBLIC_MEDIA_URL"] ?? baseURL + "/media",
                       secret: environment["MEDIA_KEY_SECRET"] ?? "")
    }
    public var simURL: String { "http://127.0.0.1:\(simPort)" }
    public var poolLog: String { dir + "/fcgi.log" }

    func startNginx() throws {
        let root = try TestEnvironment.root()
        let template = try String(contentsOfFile: root + "/nginx/local.conf.in", encoding: .utf8)
        var conf = template
        let vars = ["PREFIX": dir + "/nginx", "DAEMON": "on", "ACCESS_LOG": "off", "PORT": String(port),
                    "SIM_PORT": String(simPort), "SOCKET": socket, "SIM_SOCKET": simSocket, "STORAGE_DIR": environment["STORAGE_DIR"] ?? dir + "/media",
                    "MEDIA_KEY_SECRET": environment["MEDIA_KEY_SECRET"] ?? "",
                    "WEBAPP_ROOT": root + "/webapp", "MEDIA_ORIGIN": mediaOrigin]
        for (k, v) in vars { conf = conf.replacingOccurrences(of: "@\(k)@", with: v) }
        try conf.write(toFile: dir + "/nginx/nginx.conf", atomically: true, encoding: .utf8)
        // nginx daemonizes: its output goes to a file (a pipe would stay open in the daemon).
        let p = try Subprocess.start("/usr/sbin/nginx", ["-p", dir + "/nginx", "-c", dir + "/nginx/nginx.conf"],
                                     environment: [:], logPath: dir + "/nginx/start.log")
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            let err = (try? String(contentsOfFile: dir + "/nginx/start.log", encoding: .utf8)) ?? ""
            throw Subprocess.Failed(command: "nginx: \(err)", status: p.terminationStatus)
        }
    }

    /// Where the Mini App's photos come from besides its own origin, for its CSP (img-src):
    /// the bucket with STORAGE=s3, else PUBLIC_MEDIA_URL's origin (as scripts/lib.sh's media_origin).
    var mediaOrigin: String {
        let url = environment["STORAGE"] == "s3" ? environment["S3_ENDPOINT"] : environment["PUBLIC_MEDIA_URL"]
        guard let url, let c = URLComponents(string: url), let scheme = c.scheme, let host = c.host else { return "" }
        return "\(scheme)://\(host)" + (c.port.map { ":\($0)" } ?? "")
    }

    public func startPool() throws {
        let bin = try TestEnvironment.binDir()
        pool = try Subprocess.start(bin + "/pinglass-fcgi",
                                    ["--socket", socket, "--workers", String(workers), "--socket-mode", "0666"] + poolArgs,
                                    environment: environment, logPath: poolLog)
        try Subprocess.waitUntil("pool workers") {
            FileManager.default.fileExists(atPath: socket) && workerPIDs().count == workers
        }
    }

    public func startSimulator() throws {
        let bin = try TestEnvironment.binDir()
        sim = try Subprocess.start(bin + "/pinglass-sim", ["--socket", simSocket, "--socket-mode", "0666"],
                                   environment: environment, logPath: dir + "/sim.log")
        try Subprocess.waitUntil("simulator socket") { FileManager.default.fileExists(atPath: simSocket) }
    }

    public var masterPID: Int32 { pool?.processIdentifier ?? 0 }
    public func workerPIDs() -> [Int32] { Subprocess.children(of: masterPID) }

    /// The API through nginx as a `TestClient` (`TestClient.live(self)`).
    public var client: TestClient { .live(self) }

    /// Graceful stop of the pool (SIGTERM) and waits for the master to exit.
    public func stopPool() {
        guard let pool, pool.isRunning else { return }
        pool.terminate()
        pool.wait()
    }

    public func stopSimulator() {
        if let sim, sim.isRunning { sim.terminate(); sim.wait() }
    }

    public func stop() {
        stopPool()
        stopSimulator()
        _ = try? Subprocess.run("/usr/sbin/nginx", ["-p", dir + "/nginx", "-c", dir + "/nginx/nginx.conf", "-s", "stop"])
    }

    public func log() -> String { (try? String(contentsOfFile: poolLog, encoding: .utf8)) ?? "" }
}

// pinglass-fcgi: the pre-forked FastCGI pool that serves the PinGlass HTTP API behind nginx.
#if canImport(Glibc)
import Glibc
#endif
import FastCGI
import HTTPClient
import Logging
import PinGlass

let usage = """
    USAGE: pinglass-fcgi --socket PATH [--workers N] [--max-requests N] [--request-timeout SECONDS]
                         [--socket-mode OCTAL] [--env-file PATH]

    Serves the PinGlass HTTP API over FastCGI on a unix socket, for nginx (fastcgi_pass).
    A master process forks N workers, respawns any that die, and reacts to signals:
      SIGQUIT, SIGTERM  graceful stop: workers finish the request in hand, then exit
      SIGINT            immediate stop
      SIGHUP            rolling reload: every worker is replaced and re-reads the env file

    OPTIONS:
      --socket PATH            unix socket to listen on (required)
      --workers N              worker processes (default 4; about 11 MB and one database
                               connection each)
      --max-requests N         recycle a worker after N requests (default 0 = never)
      --request-timeout S      end a worker whose request runs longer than S seconds (default 60)
      --stop-timeout S         graceful stop waits S seconds before killing (default 30)
      --socket-mode OCTAL      permissions of the socket file (default 0660; nginx must connect)
      --env-file PATH          configuration file (default $PINGLASS_ENV_FILE or /etc/pinglass/pinglass.env)
      -h, --help               show this help

    Configuration comes from the environment and the env file; see README.md.
    """

func fail(_ message: String) -> Never {
    let line = "pinglass-fcgi: \(message)\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
    exit(2)
}

var args = Array(CommandLine.arguments.dropFirst())
var options: [String: String] = [:]
while !args.isEmpty {
    let a = args.removeFirst()
    if a == "-h" || a == "--help" { print(usage); exit(0) }
    let known = ["--socket", "--workers", "--max-requests", "--request-timeout", "--stop-timeout", "--socket-mode", "--env-file"]
    var name = a, value: String? = nil
    if let eq = a.firstIndex(of: "="), a.hasPrefix("--") { name = String(a[..<eq]); value = String(a[a.index(after: eq)...]) }
    guard known.contains(name) else { fail("unknown option \(a) (see --help)") }
    if value == nil {
        guard !args.isEmpty else { fail("\(name) needs a value") }
        value = args.removeFirst()
    }
    options[name] = value
}

func intOption(_ options: [String: String], _ name: String, default def: Int, range: ClosedRange<Int>) -> Int {
    guard let v = options[name] else { return def }
    guard let n = Int(v), range.contains(n) else { fail("\(name) must be a whole number from \(range.lowerBound) to \(range.upperBound)") }
    return n
}

guard let socketPath = options["--socket"] else { fail("--socket PATH is required (see --help)") }
var poolConfig = PoolConfiguration(socketPath: socketPath)
poolConfig.workers = intOption(options, "--workers", default: 4, range: 1...256)
poolConfig.maxRequests = intOption(options, "--max-requests", default: 0, range: 0...10_000_000)
poolConfig.requestTimeoutSeconds = intOption(options, "--request-timeout", default: 60, range: 0...3600)
poolConfig.stopTimeoutSeconds = intOption(options, "--stop-timeout", default: 30, range: 1...3600)
if let mode = options["--socket-mode"] {
    guard let m = UInt32(mode, radix: 8), m <= 0o777 else { fail("--socket-mode must be octal, like 0660") }
    poolConfig.socketMode = m
} else {
    poolConfig.socketMode = 0o660
}

let envFile = options["--env-file"]
let config: Config
do {
    config = try Config.load(environment: System.environment(), envFile: envFile)
} catch {
    fail("configuration: \(error)")
}
PinGlassLog.bootstrap(format: config.logFormat, level: config.logLevel)
HTTPClient.globalInit()   // before fork: not thread-safe, and there are no threads yet
let migrations = Migrator.defaultDirectory(environment: System.environment())

let pool = Pool(configuration: poolConfig) {
    // In the worker, after fork: re-read the configuration (SIGHUP reload picks up changes).
    Crashpoint.hit("worker.start")
    let workerConfig = (try? Config.load(environment: System.environment(), envFile: envFile)) ?? config
    let services = Services(config: workerConfig,
                            database: Database(url: workerConfig.databaseURL, applicationName: "pinglass-fcgi"),
                            migrationsDirectory: migrations)
    let app = App(services: services)
    return app.handle
}
exit(pool.run())

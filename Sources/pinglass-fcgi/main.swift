// pinglass-fcgi: the pre-forked FastCGI pool that serves the PinGlass HTTP API behind nginx.
#if canImport(Glibc)
import Glibc
#endif
import FastCGI
import HTTPCore
import Providers
import Logging
import PinGlass
import PinGlassWeb
import PinGlassConfig
import Platform
import Postgres

let usage = """
    USAGE: pinglass-fcgi --socket PATH [--workers N] [--max-requests N] [--request-timeout DURATION]
                         [--read-timeout DURATION] [--stop-timeout DURATION] [--socket-mode OCTAL]
                         [--env-file PATH]

    Serves the PinGlass HTTP API over FastCGI on a unix socket, for nginx (fastcgi_pass).
    A master process forks N workers, respawns any that die, and reacts to signals:
      SIGQUIT, SIGTERM  graceful stop: workers finish the request in hand, then exit
      SIGINT            immediate stop
      SIGHUP            rolling reload: the env file is read again and, if it is valid, every
                        worker is replaced, one at a time; if not, the error is logged and the
                        running workers stay

    OPTIONS:
      --socket PATH            unix socket to listen on (required)
      --workers N              worker processes (default 4; about 11 MB and one database
                               connection each)
      --max-requests N         recycle a worker after N requests (default 0 = never)
      --request-timeout T      end a worker whose request runs longer than T (default 60s; 0 = no
                               limit), counted once the request has been read
      --read-timeout T         cut a connection that has not sent its whole request (params,
                               body and its end) T after it was accepted (default 10s); one
                               that sends nothing at all is closed after 0.25s; the handler
                               only ever sees whole requests
      --stop-timeout T         graceful stop waits T before killing (default 30s)
      --socket-mode OCTAL      permissions of the socket file (default 0660; nginx must connect)
      --env-file PATH          configuration file (default $PINGLASS_ENV_FILE or /etc/pinglass/pinglass.env)
      -h, --help               show this help

    Times are durations in whole seconds: 90s, 2m, 1h (a plain number is seconds).
    Configuration comes from the environment and the env file; see README.md.
    """

let options = CommandLineOptions(program: "pinglass-fcgi", usage: usage, extra: ["--env-file"])
let poolConfig = options.poolConfiguration()

let envFile = options["--env-file"]
let config: Config
do {
    config = try Config.load(environment: System.environment(), envFile: envFile)
} catch {
    options.fail("configuration: \(error)")
}
PinGlassLog.bootstrap(format: config.logFormat, level: config.logLevel)
Dependencies.initializeProcess()   // before fork: not thread-safe, and there are no threads yet
let migrations = Migrator.defaultDirectory(environment: System.environment())

/// Requests by route and status, in memory mapped here, before the fork, so that every worker
/// counts into (and `/metrics` reads) the same table; it lasts as long as this master.
let requestMetrics: RequestMetrics
do {
    requestMetrics = try RequestMetrics.forApp()
} catch {
    options.fail("\(error)")
}

/// The configuration the next workers start with: read at start, replaced on SIGHUP only
/// when the env file reads and validates (the master's copy; each worker inherits it at fork).
nonisolated(unsafe) var workerConfig = config

var pool = Pool(configuration: poolConfig) {
    Crashpoint.hit("worker.start")
    let deps = Dependencies.live(config: workerConfig,
                                 database: Database(url: workerConfig.databaseURL, applicationName: "pinglass-fcgi"),
                                 migrationsDirectory: migrations)
    deps.requestMetrics = requestMetrics
    let app = App(deps: deps)
    return app.handle
}
pool.beforeReload = {
    workerConfig = try Config.load(environment: System.environment(), envFile: envFile)
}
let masterLog = Logger(label: "pinglass-fcgi.master")
pool.log = { level, message in
    switch level {
    case .info: masterLog.info("\(message)")
    case .warning: masterLog.warning("\(message)")
    case .error: masterLog.error("\(message)")
    }
}
exit(pool.run())

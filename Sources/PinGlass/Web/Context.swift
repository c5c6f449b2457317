import HTTPCore
import HTTPClient
import Logging
import Postgres

/// Everything a handler needs for one request: the request, the configuration, the
/// database, a logger carrying the request id, and the time (injectable in tests).
public final class Context {
    public let request: Request
    public let services: Services
    public var pathParams: [String: String] = [:]
    public var log: Logger
    public let now: Double

    init(request: Request, services: Services, log: Logger, now: Double) {
        self.request = request
        self.services = services
        self.log = log
        self.now = now
    }

    public var config: Config { services.config }
    public func db() throws -> Connection { try services.database.connection() }

    /// The body as a JSON object; a 400 that says what is wrong otherwise.
    public func jsonBody() throws -> JSON {
        if let ct = request.header("content-type"), !ct.lowercased().hasPrefix("application/json") {
            throw APIError.unsupportedMediaType("expected Content-Type: application/json")
        }
        let value: JSON
        do { value = try JSON.parse(request.body) } catch let e as JSONParseError {
            throw APIError.validation("malformed JSON body: \(e)")
        }
        guard case .object = value else { throw APIError.validation("the body must be a JSON object") }
        return value
    }

    public func pathInt(_ name: String) throws -> Int {
        guard let s = pathParams[name], let v = Int(s), v > 0 else { throw APIError.notFound() }
        return v
    }
}

/// The process-wide services a handler may use. Built once per worker, after fork.
public final class Services {
    public let config: Config
    public let database: Database
    public let cache = Cache()
    /// Where the migration files are (the health check reports pending ones).
    public var migrationsDirectory: String
    public var clock: () -> Double = System.now
    public let http = HTTPClient()

    /// Once per process, before any thread or fork-based work (libcurl's global state).
    public static func initializeProcess() { HTTPClient.globalInit() }

    /// A T-Bank client for a terminal, at the configured API URL.
    public func tbank(_ terminal: TBankTerminal) -> TBankClient {
        TBankClient(apiURL: config.tbankAPIURL, terminal: terminal, http: http)
    }

    public init(config: Config, database: Database, migrationsDirectory: String) {
        self.config = config
        self.database = database
        self.migrationsDirectory = migrationsDirectory
    }
}

/// A per-process cache with expiry, for answers that need no fresh database read.
public final class Cache {
    private var entries: [String: (expires: Double, value: Any)] = [:]

    public func value<T>(_ key: String, ttl: Double, now: Double, compute: () throws -> T) rethrows -> T {
        if let e = entries[key], e.expires > now, let v = e.value as? T { return v }
        let v = try compute()
        entries[key] = (now + ttl, v)
        return v
    }

    public func invalidate() { entries.removeAll() }
}

import HTTPClient
import Postgres
import JSON
import PinGlassConfig
import Platform
import ProviderWire

/// Everything the domain reaches outside itself, built once per process (after fork in a
/// FastCGI worker, at start in a cron command): the configuration, the database, the clock
/// and the provider clients behind small protocols. Handlers and duties take this one value,
/// so tests swap a provider for an in-process fake while the end-to-end tests keep the
/// simulator.
///
/// ```swift
/// let deps = Dependencies(config: config, database: Database(url: config.databaseURL, applicationName: "pinglass"))
/// deps.bankFactory = { terminal, timeout in FakeBank() }     // a test's fake
/// let state = try deps.bank(terminal, 3).getState(paymentID: "42")
/// ```
public final class Dependencies {
    public let config: Config
    public let database: Database
    /// Seconds since the epoch; tests move it.
    public var clock: () -> Double = System.now
    /// Makes the T-Bank client for a terminal and a per-call timeout (tests put a fake here).
    /// Call `bank(_:_:)`, which adds the transaction guard.
    public var bankFactory: (TBankTerminal, Double) -> any BankAPI
    /// Where the migration files are (the health check reports pending ones).
    public var migrationsDirectory: String
    /// Answers that need no fresh database read (per process).
    public let cache = Cache()
    /// Stored photos (`STORAGE`): built on first use, so commands that never touch media
    /// need no media settings.
    public lazy var media: any MediaStore = Self.makeMediaStore(config)
    /// Kie.ai: a `KieClient` for `KIE_API_URL` built on first use when `KIE_API_KEY` is set,
    /// so commands that never generate need no Kie settings; nil without a key (generation
    /// cannot be dispatched). Tests set a fake.
    public lazy var kie: (any KieAPI)? = config.kieAPIKey.map { KieClient(apiURL: config.kieAPIURL, apiKey: $0) }
    /// The Telegram Bot API for `pinglass deliver`: a `TelegramClient` for `TELEGRAM_API_URL`
    /// built on first use when `TELEGRAM_BOT_TOKEN` is set; nil without a token (nothing can
    /// be delivered). Tests of a duty set an in-process fake.
    public lazy var telegram: (any TelegramAPI)? = config.telegramBotToken.map {
        TelegramClient(apiURL: config.telegramAPIURL, botToken: $0)
    }
    /// Requests by route and status, shared by every worker of the pool (made by the master
    /// before it forks; `App.handle` counts, `/metrics` reads). Nil outside the pool.
    public var requestMetrics: RequestMetrics? = nil

    public init(config: Config, database: Database,
                migrationsDirectory: String = Migrator.defaultDirectory(environment: System.environment())) {
        self.config = config
        self.database = database
        self.migrationsDirectory = migrationsDirectory
        let http = HTTPClient()
        let apiURL = config.tbankAPIURL
        self.bankFactory = { terminal, timeout in TBankClient(apiURL: apiURL, terminal: terminal, timeout: timeout, http: http) }
    }

    /// The T-Bank API for a terminal. Every call refuses to run while this process has a
    /// database transaction open (reliability rule 1: never a provider call inside one).
    public func bank(_ terminal: TBankTerminal, _ timeout: Double) -> any BankAPI {
        OutsideTransactionBank(inner: bankFactory(terminal, timeout), database: database)
    }

    /// The backend `STORAGE` names: `fs` (files under `STORAGE_DIR`, links signed for nginx
    /// with MEDIA_KEY_SECRET) or `s3` (presigned GET links; Config has checked the S3_*
    /// variables). Without MEDIA_KEY_SECRET the fs store still works, but its links do not
    /// open; `pinglass doctor` and health report it.
    public static func makeMediaStore(_ config: Config) -> any MediaStore {
        switch config.storage {
        case "s3":
            return S3MediaStore(endpoint: config.s3Endpoint ?? "", bucket: config.s3Bucket ?? "",
                                region: config.s3Region ?? S3MediaStore.defaultRegion,
                                accessKeyID: config.s3AccessKeyID ?? "", secretAccessKey: config.s3SecretAccessKey ?? "")
        default:
            let publicURL = config.publicMediaURL ?? ((config.publicBaseURL ?? "http://127.0.0.1") + "/media")
            return FileMediaStore(directory: config.storageDir, publicURL: publicURL, secret: config.mediaKeySecret ?? "")
        }
    }

    /// Once per process, before any thread or fork-based work (libcurl's global state).
    public static func initializeProcess() { HTTPClient.globalInit() }

    /// The connection of this process (opened on first use).
    public func db() throws -> Connection { try database.connection() }
}

/// A provider called while a transaction was open: a programming error, refused.
public struct ProviderCallInTransaction: Error, CustomStringConvertible {
    public let call: String
    public var description: String { "\(call) called while a database transaction is open" }
}

/// Wraps a `BankAPI` so that no call goes out while the process holds a transaction open.
struct OutsideTransactionBank: BankAPI {
    let inner: any BankAPI
    let database: Database

    func check(_ call: String) throws {
        if database.hasOpenTransaction { throw ProviderCallInTransaction(call: "T-Bank " + call) }
    }
    func initPayment(_ fields: [(String, JSON)]) throws -> BankInit { try check("Init"); return try inner.initPayment(fields) }
    func getState(paymentID: String) throws -> BankState { try check("GetState"); return try inner.getState(paymentID: paymentID) }
    func cancel(paymentID: String, amount: Int?, externalRequestID: String, receipt: JSON?) throws -> BankCancel {
        try check("Cancel")
        return try inner.cancel(paymentID: paymentID, amount: amount, externalRequestID: externalRequestID, receipt: receipt)
    }
}

/// A per-process cache with expiry, for answers that need no fresh database read. Expiry is
/// measured on a monotonic clock: a wall clock stepped back (NTP, an operator) would keep an
/// entry for as long as the step.
public final class Cache {
    private var entries: [String: (expires: Double, value: Any)] = [:]
    /// Seconds that never go back (tests set their own).
    public var monotonic: () -> Double = HTTPPacer.now

    public init() {}

    public func value<T>(_ key: String, ttl: Double, compute: () throws -> T) rethrows -> T {
        let now = monotonic()
        if let e = entries[key], e.expires > now, let v = e.value as? T { return v }
        let v = try compute()
        entries[key] = (now + ttl, v)
        return v
    }

    public func invalidate() { entries.removeAll() }
}

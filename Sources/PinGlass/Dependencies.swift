import Postgres
import JSON
import PinGlassConfig
import Platform
import ProviderWire

/// Everything the domain reaches outside itself, built once per process (after fork in a
/// FastCGI worker, at start in a cron command): the configuration, the database, the clock
/// and the providers behind small protocols. Handlers and duties take this one value, so
/// tests swap a provider for an in-process fake while the end-to-end tests keep the
/// simulator. The live providers come from the Providers target (`Dependencies.live`).
///
/// Every provider call goes through a guard that refuses it while this process holds a
/// database transaction open (`ProviderCallInTransaction`; docs/reliability.md#R1: never a
/// provider call inside a transaction): `bank(_:_:)`, `kie`, `telegram`, `media` and
/// `resultDownloader` hand out guarded forwarders (`ProviderGuard.swift`).
///
/// ```swift
/// let deps = Dependencies.live(config: config, database: Database(url: config.databaseURL, applicationName: "pinglass"))
/// deps.bankFactory = { terminal, timeout in FakeBank() }     // a test's fake
/// let state = try deps.bank(terminal, 3).getState(paymentID: "42")
/// ```
public final class Dependencies {
    public let config: Config
    public let database: Database
    /// The wall clock, the monotonic clock and the wait (`deps.clock()` is the wall clock);
    /// tests hold it still or move it. PostgreSQL's `now()` stays the authority for leases.
    public var clock: Clock = .system
    /// The providers as built or set, unguarded (tests look at what was built here). Not
    /// public: outside this package every provider is reached through the guarded accessors
    /// below, and nothing in the other targets' sources reads these.
    package private(set) var providers: ProviderPorts
    /// Where the migration files are (the health check reports pending ones).
    public var migrationsDirectory: String
    /// Answers that need no fresh database read (per process).
    public let cache = Cache()
    /// Requests by route and status, shared by every worker of the pool (made by the master
    /// before it forks; `App.handle` counts, `/metrics` reads). Nil outside the pool.
    public var requestMetrics: RequestMetrics? = nil

    public init(config: Config, database: Database, providers: ProviderPorts,
                migrationsDirectory: String = Migrator.defaultDirectory(environment: System.environment())) {
        self.config = config
        self.database = database
        self.providers = providers
        self.migrationsDirectory = migrationsDirectory
        cache.monotonic = { [weak self] in (self?.clock ?? .system).monotonic() }
    }

    var providerGuard: ProviderGuard { ProviderGuard(database: database) }

    /// Makes the T-Bank client for a terminal and a per-call timeout, unguarded (tests put a
    /// fake here; not public, like `providers`). Call `bank(_:_:)`, which adds the
    /// transaction guard.
    package var bankFactory: (TBankTerminal, Double) -> any BankAPI {
        get { providers.bank }
        set { providers.bank = newValue }
    }

    /// The T-Bank API for a terminal. Every call refuses to run while this process has a
    /// database transaction open (docs/reliability.md#R1: never a provider call inside one).
    public func bank(_ terminal: TBankTerminal, _ timeout: Double) -> any BankAPI {
        GuardedBank(inner: bankFactory(terminal, timeout), check: providerGuard)
    }

    /// Stored photos (`STORAGE`), guarded (`signedURL` is computed here: no call goes out).
    public var media: any MediaStore {
        get { GuardedMediaStore(inner: providers.media, check: providerGuard) }
        set { providers.media = newValue }
    }

    /// Kie.ai, guarded; nil without `KIE_API_KEY` (generation cannot be dispatched). Tests
    /// set a fake.
    public var kie: (any KieAPI)? {
        get { providers.kie.map { GuardedKie(inner: $0, check: providerGuard) } }
        set { providers.kie = newValue }
    }

    /// The Telegram Bot API for `pinglass deliver`, guarded; nil without
    /// `TELEGRAM_BOT_TOKEN` (nothing can be delivered). Tests of a duty set an in-process fake.
    public var telegram: (any TelegramAPI)? {
        get { providers.telegram.map { GuardedTelegram(inner: $0, check: providerGuard) } }
        set { providers.telegram = newValue }
    }

    /// Downloads of Kie's result files, guarded.
    public var resultDownloader: any ResultDownloader {
        get { GuardedResultDownloader(inner: providers.resultDownloader, check: providerGuard) }
        set { providers.resultDownloader = newValue }
    }

    /// The connection of this process (opened on first use).
    public func db() throws -> Connection { try database.connection() }
}

/// The providers a process calls, as the composition built them: the live clients
/// (`ProviderPorts.live(_:)` in the Providers target) or a test's fakes.
public struct ProviderPorts {
    /// The T-Bank client for a terminal and a per-call timeout.
    public var bank: (TBankTerminal, Double) -> any BankAPI
    /// Nil when Kie is not configured.
    public var kie: (any KieAPI)?
    /// Nil when Telegram is not configured.
    public var telegram: (any TelegramAPI)?
    public var media: any MediaStore
    public var resultDownloader: any ResultDownloader

    public init(bank: @escaping (TBankTerminal, Double) -> any BankAPI, kie: (any KieAPI)?, telegram: (any TelegramAPI)?,
                media: any MediaStore, resultDownloader: any ResultDownloader) {
        self.bank = bank
        self.kie = kie
        self.telegram = telegram
        self.media = media
        self.resultDownloader = resultDownloader
    }
}

/// A per-process cache with expiry, for answers that need no fresh database read. Expiry is
/// measured on a monotonic clock: a wall clock stepped back (NTP, an operator) would keep an
/// entry for as long as the step.
public final class Cache {
    private var entries: [String: (expires: Double, value: Any)] = [:]
    /// Seconds that never go back: `Dependencies.clock`'s monotonic clock (tests may set their own).
    public var monotonic: () -> Double = Clock.system.monotonic

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

import HTTPCore
import PinGlass
import Postgres
import JSON
import PinGlassConfig
import Platform
#if canImport(Glibc)
import Glibc
#endif

/// `GET /api/health`: 200 `ok`/`degraded` with the state of each part, 503 `down` when the
/// database cannot be reached. Shows whether things are configured, never their values.
///
/// The parts (`checks`: hosts, modes, which providers are configured, the duties'
/// heartbeats) are for the operator: only a caller on loopback or in `HEALTH_DETAIL_NETWORKS`
/// sees them; everyone else gets `{"status": …}` alone. The caller is `REMOTE_ADDR` as
/// nginx passes it, the address of the connection nginx accepted (or the client address
/// nginx's own `real_ip` took from a balancer it trusts); headers such as
/// `X-Forwarded-For` are never read here.
enum HealthRoutes {
    static func health(_ ctx: Context) throws -> Response {
        let (status, checks, code) = try report(ctx)
        guard mayReadChecks(ctx.request.remoteAddress, ctx.config) else {
            return .json(["status": .string(status)], status: code)
        }
        return .json(["status": .string(status), "checks": .object(checks)], status: code)
    }

    /// Loopback, or an address in one of `HEALTH_DETAIL_NETWORKS`.
    static func mayReadChecks(_ remoteAddress: String, _ config: Config) -> Bool {
        IPNetwork.isLoopback(remoteAddress) || config.healthDetailNetworks.contains { $0.contains(remoteAddress) }
    }

    /// The status, every part's check, and the HTTP status.
    static func report(_ ctx: Context) throws -> (String, [(String, JSON)], Int) {
        let config = ctx.config
        var checks: [(String, JSON)] = []
        var degraded = false
        let started = ctx.deps.clock.monotonic()
        let db: Connection
        do {
            db = try ctx.db()
            try db.query("SELECT 1")
        } catch let e as PostgresError {
            ctx.log.warning("health: database unreachable", metadata: ["error": "\(e)"])
            checks.append(("database", ["ok": false, "error": "unreachable"]))
            return ("down", checks, 503)
        }
        checks.append(("database", ["ok": true, "latencyMs": .double(((ctx.deps.clock.monotonic() - started) * 10000).rounded() / 10)]))

        // Reading and hashing the migration files is not per-request work: once a minute.
        let pending = ctx.deps.cache.value("health.migrations", ttl: 60) {
            Migrator.pendingCount(db: db, directory: ctx.deps.migrationsDirectory)
        }
        if pending != 0 { degraded = true }
        checks.append(("migrations", ["ok": .bool(pending == 0), "pending": pending.map { .int($0) } ?? .null]))

        do {
            let mode = try PaymentSettings.terminalMode(db)
            // Test mode on a public address: test payments buy nothing there (except for
            // TEST_TELEGRAM_IDS), so real customers cannot pay for anything either.
            let publicTestMode = mode == .test && config.isPublicInstall
            if publicTestMode { degraded = true }
            checks.append(("tbank", ["configured": .bool(config.terminal(for: mode) != nil), "mode": .string(mode.rawValue),
                                     "testModeOnPublicURL": .bool(publicTestMode)]))
        } catch {
            // Say so instead of guessing a mode: a wrong guess would show test as live.
            ctx.log.error("health: cannot read the T-Bank mode", metadata: ["error": "\(error)"])
            degraded = true
            checks.append(("tbank", ["configured": .bool(!config.terminals.isEmpty), "mode": .null, "error": "settings unreadable"]))
        }
        checks.append(("kie", ["configured": .bool(config.kieAPIKey != nil)]))
        // Configured or not, never a call: whether Telegram answers is `pinglass doctor`'s question.
        checks.append(("telegram", ["configured": .bool(config.telegramBotToken != nil),
                                    "alertsChat": .bool(config.adminTelegramChatID != nil)]))
        let storage = storageCheck(config)
        if storage["ok"] != true { degraded = true }
        checks.append(("storage", storage))

        checks.append(("workers", try workers(db)))
        return (degraded ? "degraded" : "ok", checks, 200)
    }

    /// The configured backend, without a network call: fs → the folder is writable; s3 →
    /// its settings are complete. Either way MEDIA_KEY_SECRET must be set (it signs fs links
    /// and names generated photos).
    static func storageCheck(_ config: Config) -> JSON {
        let signingKey = config.mediaKeySecret != nil
        if config.storage == .s3 {
            let configured = [config.s3Endpoint, config.s3Bucket, config.s3AccessKeyID, config.s3SecretAccessKey].allSatisfy { $0 != nil }
            return ["ok": .bool(configured && signingKey), "backend": "s3", "configured": .bool(configured), "signingKey": .bool(signingKey)]
        }
        let writable = access(config.storageDir, W_OK) == 0
        return ["ok": .bool(writable && signingKey), "backend": "fs", "writable": .bool(writable), "signingKey": .bool(signingKey)]
    }

    /// Every registered duty (`DutyName`), with its latest pass across hosts and each host's
    /// own (a failing host stays visible next to a healthy one). A duty that never ran shows
    /// `lastRunAt: null`.
    static func workers(_ db: Connection) throws -> JSON {
        let runs = try DutyHeartbeats.lastRuns(db)
        return .object(DutyName.allCases.map { duty in
            let hostRuns = runs[duty.rawValue] ?? []
            let hosts = JSON.object(hostRuns.map { ($0.host, .object(runState($0))) })
            return (duty.rawValue, .object(runState(hostRuns.first) + [("hosts", hosts)]))
        })
    }

    static func runState(_ run: DutyHeartbeats.LastRun?) -> [(String, JSON)] {
        [("lastRunAt", run?.finishedAt.map { .string($0) } ?? .null), ("ok", run?.ok.map { .bool($0) } ?? .null)]
    }
}

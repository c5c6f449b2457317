import Platform
import WebURL

/// A configuration problem, always naming the variable (or file) so the operator knows
/// what to fix. Values are never echoed: they may be secrets.
public enum ConfigError: Error, CustomStringConvertible, Equatable, Sendable {
    case missing(String)
    case invalid(String, String)
    case unreadableFile(String)
    case malformedFile(path: String, line: Int, reason: String)
    /// Nothing configured at all: no env file named and none at the default place.
    case noConfiguration(defaultFile: String)

    public var description: String {
        switch self {
        case .missing(let name): return "\(name) is not set (environment or env file)"
        case .invalid(let name, let why): return "\(name) is invalid: \(why)"
        case .unreadableFile(let path): return "cannot read env file \(path)"
        case .malformedFile(let path, let line, let why): return "env file \(path), line \(line): \(why)"
        case .noConfiguration(let file):
            return "DATABASE_URL is not set, and no env file was read: none was named and \(file) does not exist "
                + "(use --env-file PATH or PINGLASS_ENV_FILE=PATH; a local `make run` writes .run/pinglass.env)"
        }
    }
}

/// A T-Bank terminal: its key and password (the password signs every request).
public struct TBankTerminal: Sendable, Equatable {
    public var key: String
    public var password: String
    public init(key: String, password: String) { self.key = key; self.password = password }
}

/// `STORAGE`: the backend of the stored photos.
public enum StorageBackend: String, CaseIterable, Sendable {
    /// Files under `STORAGE_DIR`, served by nginx with links signed with MEDIA_KEY_SECRET.
    case fs
    /// An S3-compatible bucket (`S3_*`), presigned GET links.
    case s3
}

/// `LOG_LEVEL`: swift-log's levels, least severe first.
public enum LogLevel: String, CaseIterable, Sendable {
    case trace, debug, info, notice, warning, error, critical
}

/// `LOG_FORMAT`: how log lines are written on stderr.
public enum LogFormat: String, CaseIterable, Sendable {
    case json
    case text
}

/// The environment-variable contract (the names operators and the tests use), validated once.
///
/// ```swift
/// let config = try Config.load(environment: System.environment(), envFile: nil)
/// ```
public struct Config: Sendable {
    /// `DATABASE_URL`: libpq conninfo or URI. Required.
    public var databaseURL: String
    /// `MIGRATION_DATABASE_URL`: the schema owner's connection, for `pinglass migrate` and the
    /// simulator's own schema; `DATABASE_URL` (default) when unset. Then `DATABASE_URL` can be
    /// a role with row rights only, which cannot drop or alter the tables and their triggers.
    public var migrationDatabaseURL: String
    /// `PUBLIC_BASE_URL`: where the bank and users reach us (NotificationURL, links).
    public var publicBaseURL: String?
    /// `TBANK_API_URL`, default T-Bank production API.
    public var tbankAPIURL: String
    /// `TBANK_TERMINAL_KEY` + `TBANK_PASSWORD`: the production terminal.
    public var tbankProduction: TBankTerminal?
    /// `TBANK_TEST_TERMINAL_KEY` + `TBANK_TEST_PASSWORD`: the test (DEMO) terminal.
    public var tbankTest: TBankTerminal?
    public var kieAPIURL: String
    public var kieAPIKey: String?
    public var kieModel: String
    /// `KIE_RATE_LIMIT`: new tasks per 10 s (Kie allows 20 per account).
    public var kieRateLimit: Int
    public var kiePollRPS: Int
    public var kieResultHosts: [String]
    public var kieWebhookHMACKey: String?
    /// `INIT_DATA_MAX_AGE`: seconds a Mini App init data stays valid.
    public var initDataMaxAge: Int
    public var telegramAPIURL: String
    public var telegramBotToken: String?
    /// `TELEGRAM_WEBHOOK_SECRET`: the `secret_token` Telegram sends with every update
    /// (`X-Telegram-Bot-Api-Secret-Token`); unset, `POST /api/telegram/webhook` does not exist.
    /// 1–256 characters of `A-Z a-z 0-9 _ -` (Telegram's rule).
    public var telegramWebhookSecret: String?
    public var adminTelegramChatID: Int64?
    /// `STORAGE`: where stored photos live (`fs` by default).
    public var storage: StorageBackend
    /// `STORAGE_DIR`: the media folder nginx serves at `/media/` (default /var/lib/pinglass/media).
    public var storageDir: String
    /// `PUBLIC_MEDIA_URL`: where nginx serves `STORAGE_DIR` (default `PUBLIC_BASE_URL`/media).
    public var publicMediaURL: String?
    /// `S3_ENDPOINT`: the S3 API base URL, path-style (`https://<account>.r2.cloudflarestorage.com`).
    public var s3Endpoint: String?
    public var s3Bucket: String?
    /// `S3_REGION`: signing region (R2: `auto`; default `us-east-1`, which R2 takes as `auto`).
    public var s3Region: String?
    public var s3AccessKeyID: String?
    public var s3SecretAccessKey: String?
    /// `PAYMENT_REDIRECT_DUE`: seconds a payment link stays open (RedirectDueDate), default 24 h.
    public var paymentRedirectDue: Int
    /// `MEDIA_RETENTION_DAYS`: days the customer's selfies (from their upload) and generated
    /// photos (from their job's end) are kept before `pinglass prune` removes them (default 90).
    public var mediaRetentionDays: Int
    /// `TEST_TELEGRAM_IDS`: Telegram ids whose test-terminal payments stay usable while the
    /// production terminal is in force (staff checking a live system).
    public var testTelegramIDs: Set<Int64>
    /// `HEALTH_DETAIL_NETWORKS`: networks (CIDR, IPv4 or IPv6) besides loopback that see
    /// `/api/health`'s `checks`; everyone else gets the status alone.
    public var healthDetailNetworks: [IPNetwork]
    /// `MEDIA_KEY_SECRET`: HMAC key for result object names and signed media links
    /// (at least 16 characters; required once generation runs).
    public var mediaKeySecret: String?
    /// `LOG_LEVEL`: the least severe level logged (default `info`).
    public var logLevel: LogLevel
    /// `LOG_FORMAT`: JSON lines (default) or text for people.
    public var logFormat: LogFormat

    public static let defaultEnvFile = "/etc/pinglass/pinglass.env"

    /// Reads the env file (if any), then the process environment, which wins.
    /// `envFile` nil means `PINGLASS_ENV_FILE`, else the default path when it exists.
    public static func load(environment: [String: String], envFile: String?) throws -> Config {
        var vars: [String: String] = [:]
        var readFile = true
        if let path = envFile ?? environment["PINGLASS_ENV_FILE"], !path.isEmpty {
            vars = try EnvFile.load(path)
        } else if System.fileExists(defaultEnvFile) {
            vars = try EnvFile.load(defaultEnvFile)
        } else {
            readFile = false
        }
        for (k, v) in environment { vars[k] = v }
        do {
            return try Config(variables: vars)
        } catch ConfigError.missing("DATABASE_URL") where !readFile {
            throw ConfigError.noConfiguration(defaultFile: defaultEnvFile)
        }
    }

    public init(variables env: [String: String]) throws {
        func value(_ name: String) -> String? {
            guard let v = env[name]?.trimmingSpaces(), !v.isEmpty else { return nil }
            return v
        }
        /// Every URL we call or hand out: https, except to a loopback host (local runs, tests).
        func url(_ name: String, default def: String? = nil) throws -> String? {
            guard let v = value(name) else { return def }
            guard let parsed = HTTPURL(v) else { throw ConfigError.invalid(name, "must be an https:// URL") }
            guard parsed.scheme == "https" || parsed.isLoopback else {
                throw ConfigError.invalid(name, "must be an https:// URL (plain http:// only for localhost, 127.0.0.0/8 or [::1])")
            }
            return v.hasSuffix("/") ? String(v.dropLast()) : v
        }
        func int(_ name: String, default def: Int, range: ClosedRange<Int>) throws -> Int {
            guard let v = value(name) else { return def }
            guard let n = Int(v), range.contains(n) else {
                throw ConfigError.invalid(name, "must be a whole number from \(range.lowerBound) to \(range.upperBound)")
            }
            return n
        }
        func terminal(_ keyName: String, _ passwordName: String) throws -> TBankTerminal? {
            switch (value(keyName), value(passwordName)) {
            case (nil, nil): return nil
            case let (k?, p?): return TBankTerminal(key: k, password: p)
            case (nil, _): throw ConfigError.missing(keyName)
            case (_, nil): throw ConfigError.missing(passwordName)
            }
        }
        /// One of an enum's raw values (`STORAGE=s3`), or the default when unset.
        func oneOf<E: RawRepresentable & CaseIterable>(_ name: String, default def: E) throws -> E where E.RawValue == String {
            guard let v = value(name) else { return def }
            guard let chosen = E(rawValue: v) else {
                throw ConfigError.invalid(name, "must be one of \(E.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return chosen
        }

        guard let db = value("DATABASE_URL") else { throw ConfigError.missing("DATABASE_URL") }
        databaseURL = db
        migrationDatabaseURL = value("MIGRATION_DATABASE_URL") ?? db
        publicBaseURL = try url("PUBLIC_BASE_URL")
        tbankAPIURL = try url("TBANK_API_URL", default: "https://securepay.tinkoff.ru/v2")!
        tbankProduction = try terminal("TBANK_TERMINAL_KEY", "TBANK_PASSWORD")
        tbankTest = try terminal("TBANK_TEST_TERMINAL_KEY", "TBANK_TEST_PASSWORD")
        kieAPIURL = try url("KIE_API_URL", default: "https://api.kie.ai")!
        kieAPIKey = value("KIE_API_KEY")
        kieModel = value("KIE_MODEL") ?? "google/nano-banana-edit"
        kieRateLimit = try int("KIE_RATE_LIMIT", default: 20, range: 1...1000)
        kiePollRPS = try int("KIE_POLL_RPS", default: 10, range: 1...1000)
        kieResultHosts = (value("KIE_RESULT_HOSTS") ?? "").split(separator: ",").map { String($0).trimmingSpaces() }.filter { !$0.isEmpty }
        guard kieResultHosts.allSatisfy(Config.isValidResultHostEntry) else {
            throw ConfigError.invalid("KIE_RESULT_HOSTS", "each entry is an exact host name or IP address, or *.<domain> for any subdomain of it")
        }
        kieWebhookHMACKey = value("KIE_WEBHOOK_HMAC_KEY")
        initDataMaxAge = try int("INIT_DATA_MAX_AGE", default: 86400, range: 1...(366 * 86400))
        telegramAPIURL = try url("TELEGRAM_API_URL", default: "https://api.telegram.org")!
        telegramBotToken = value("TELEGRAM_BOT_TOKEN")
        telegramWebhookSecret = value("TELEGRAM_WEBHOOK_SECRET")
        if let secret = telegramWebhookSecret {
            guard secret.count <= 256, secret.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) else {
                throw ConfigError.invalid("TELEGRAM_WEBHOOK_SECRET",
                                          "must be 1-256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule; e.g. openssl rand -hex 32)")
            }
        }
        if let chat = value("ADMIN_TELEGRAM_CHAT_ID") {
            guard let id = Int64(chat) else { throw ConfigError.invalid("ADMIN_TELEGRAM_CHAT_ID", "must be a numeric chat id") }
            adminTelegramChatID = id
        } else {
            adminTelegramChatID = nil
        }
        storage = try oneOf("STORAGE", default: StorageBackend.fs)
        storageDir = value("STORAGE_DIR") ?? "/var/lib/pinglass/media"
        publicMediaURL = try url("PUBLIC_MEDIA_URL")
        s3Endpoint = try url("S3_ENDPOINT")
        s3Bucket = value("S3_BUCKET")
        s3Region = value("S3_REGION")
        s3AccessKeyID = value("S3_ACCESS_KEY_ID")
        s3SecretAccessKey = value("S3_SECRET_ACCESS_KEY")
        if storage == .s3 {
            for name in ["S3_ENDPOINT", "S3_BUCKET", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"] where value(name) == nil {
                throw ConfigError.missing(name)
            }
        }
        paymentRedirectDue = try int("PAYMENT_REDIRECT_DUE", default: 86400, range: 60...(90 * 86400))
        mediaRetentionDays = try int("MEDIA_RETENTION_DAYS", default: 90, range: 1...3650)
        mediaKeySecret = value("MEDIA_KEY_SECRET")
        if let secret = mediaKeySecret {
            guard secret.count >= 16 else {
                throw ConfigError.invalid("MEDIA_KEY_SECRET", "must be at least 16 characters (e.g. openssl rand -hex 32)")
            }
            // nginx gets the same value in a quoted string (pinglass-media.conf), where quotes,
            // `$`, `\`, `;` and spaces would change its meaning.
            guard secret.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.+/=~".contains($0)) }) else {
                throw ConfigError.invalid("MEDIA_KEY_SECRET", "may hold only ASCII letters, digits and - _ . + / = ~ (e.g. openssl rand -hex 32)")
            }
        }
        testTelegramIDs = []
        for item in (value("TEST_TELEGRAM_IDS") ?? "").split(separator: ",") {
            guard let id = Int64(String(item).trimmingSpaces()) else {
                throw ConfigError.invalid("TEST_TELEGRAM_IDS", "must be Telegram user ids separated by commas")
            }
            testTelegramIDs.insert(id)
        }
        healthDetailNetworks = []
        for item in (value("HEALTH_DETAIL_NETWORKS") ?? "").split(separator: ",") {
            guard let net = IPNetwork(String(item).trimmingSpaces()) else {
                throw ConfigError.invalid("HEALTH_DETAIL_NETWORKS", "must be networks such as 10.20.0.0/16 or 2001:db8::/32 separated by commas")
            }
            healthDetailNetworks.append(net)
        }
        logLevel = try oneOf("LOG_LEVEL", default: LogLevel.info)
        logFormat = try oneOf("LOG_FORMAT", default: LogFormat.json)
    }

    /// `PUBLIC_BASE_URL` is set and not a loopback address: people and banks reach this
    /// install, so test-terminal money buys nothing here except for `TEST_TELEGRAM_IDS`.
    /// (Unset, no payment can be created at all.)
    public var isPublicInstall: Bool {
        guard let base = publicBaseURL else { return false }
        return HTTPURL(base)?.isLoopback != true
    }

    /// A well-formed `KIE_RESULT_HOSTS` entry: a host name or IP address, or `*.` and a domain.
    public static func isValidResultHostEntry(_ entry: String) -> Bool {
        let host = entry.hasPrefix("*.") ? String(entry.dropFirst(2)) : entry
        guard !host.isEmpty, !host.hasPrefix("."), !host.hasSuffix("."), !host.contains(".."), !host.contains("*") else { return false }
        return HTTPURL("https://" + (host.contains(":") ? "[\(host)]" : host))?.host == host.lowercased()
    }

    /// Every configured terminal (a notification names its terminal by key).
    public var terminals: [TBankTerminal] { [tbankProduction, tbankTest].compactMap { $0 } }

    /// The terminal for a mode, or nil when its credentials are not configured.
    public func terminal(for mode: TerminalMode) -> TBankTerminal? {
        mode == .production ? tbankProduction : tbankTest
    }
}

/// Which T-Bank terminal new payments use (stored in `settings`, switched by an admin).
public enum TerminalMode: String, Sendable, CaseIterable {
    case test, production
}

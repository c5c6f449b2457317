import HTTPClient
import PinGlass
import PinGlassConfig
import Platform
import Postgres

/// The composition of a live process: the domain's `Dependencies` over the real providers.
/// The executables build theirs here; tests build the same and swap a provider for a fake.
///
/// ```swift
/// Dependencies.initializeProcess()   // once, before any thread or fork
/// let deps = Dependencies.live(config: config, database: Database(url: config.databaseURL, applicationName: "pinglass"))
/// ```
extension Dependencies {
    /// The dependencies of a process that talks to the real providers (or the simulator)
    /// named in `config`. Nothing connects until the first call.
    public static func live(config: Config, database: Database,
                            migrationsDirectory: String = Migrator.defaultDirectory(environment: System.environment())) -> Dependencies {
        Dependencies(config: config, database: database, providers: .live(config), migrationsDirectory: migrationsDirectory)
    }

    /// The backend `STORAGE` names: `fs` (files under `STORAGE_DIR`, links signed for nginx
    /// with MEDIA_KEY_SECRET) or `s3` (presigned GET links; Config has checked the S3_*
    /// variables). Without MEDIA_KEY_SECRET the fs store still works, but its links do not
    /// open; `pinglass doctor` and health report it.
    public static func makeMediaStore(_ config: Config) -> any MediaStore {
        switch config.storage {
        case .s3:
            return S3MediaStore(endpoint: config.s3Endpoint ?? "", bucket: config.s3Bucket ?? "",
                                region: config.s3Region ?? S3MediaStore.defaultRegion,
                                accessKeyID: config.s3AccessKeyID ?? "", secretAccessKey: config.s3SecretAccessKey ?? "")
        case .fs:
            let publicURL = config.publicMediaURL ?? ((config.publicBaseURL ?? "http://127.0.0.1") + "/media")
            return FileMediaStore(directory: config.storageDir, publicURL: publicURL, secret: config.mediaKeySecret ?? "")
        }
    }

    /// Once per process, before any thread or fork-based work (libcurl's global state).
    public static func initializeProcess() { HTTPClient.globalInit() }
}

extension ProviderPorts {
    /// The live clients for `config`: T-Bank at `TBANK_API_URL` for any terminal; Kie.ai at
    /// `KIE_API_URL` when `KIE_API_KEY` is set (else none: generation cannot be dispatched);
    /// the Telegram Bot API at `TELEGRAM_API_URL` when `TELEGRAM_BOT_TOKEN` is set (else none:
    /// nothing can be delivered); the `STORAGE` backend; result downloads over libcurl.
    /// Building them connects nowhere.
    public static func live(_ config: Config) -> ProviderPorts {
        let http = HTTPClient()
        let apiURL = config.tbankAPIURL
        return ProviderPorts(
            bank: { terminal, timeout in TBankClient(apiURL: apiURL, terminal: terminal, timeout: timeout, http: http) },
            kie: config.kieAPIKey.map { KieClient(apiURL: config.kieAPIURL, apiKey: $0) },
            telegram: config.telegramBotToken.map { TelegramClient(apiURL: config.telegramAPIURL, botToken: $0) },
            media: Dependencies.makeMediaStore(config),
            resultDownloader: HTTPResultDownloader())
    }
}

// pinglass-sim: simulated T-Bank, Kie.ai and Telegram for local runs and
// tests. A FastCGI app behind nginx on its own loopback port. Never run it in production.
#if canImport(Glibc)
import Glibc
#endif
import FastCGI
import HTTPCore
import HTTPClient
import JSON
import PinGlassConfig
import Platform
import Postgres
import WebURL

let usage = """
    USAGE: pinglass-sim --socket PATH [--workers N] [--socket-mode OCTAL] (and pinglass-fcgi's pool options)
           pinglass-sim --deliver-every DURATION

    The PinGlass provider simulator. It answers T-Bank's API (/v2/Init, GetState, Confirm,
    Cancel) with the bank's envelope, error codes and Token checks, serves a payment page at
    PaymentURL (/pay/<id>: Pay, Decline, 3-D Secure failure), and sends signed notifications to
    NotificationURL until they are answered exactly "200 OK". It answers Kie.ai's createTask and
    recordInfo (under /kie and at the root), with tasks that finish by the clock, Kie's rate
    limits, credits, failures, expiring result images at /kie/results/<taskId>.png and signed
    callbacks. It answers the Telegram Bot API (under /telegram and at the root:
    /telegram/bot<token>/sendPhoto, sendMediaGroup, sendMessage, getMe) with JSON, form or
    multipart parameters, fetches photo URLs as Telegram does (5 MB, images only), stores what
    each chat received and shows it at /sim/telegram/chats (photos visible), with Telegram's
    error envelope, flood control (429 + retry_after), per-chat faults (blocked, chat not found,
    migrated) and injected failures. Control API for tests: /sim/control/* (Kie:
    /sim/control/kie/*, Telegram: /sim/control/telegram/*). As Telegram it also keeps the bot's
    webhook and menu button (setWebhook, getWebhookInfo, deleteWebhook, setChatMenuButton,
    getChatMenuButton), lets a test user send /start to that webhook (the chat page's form,
    POST /sim/control/telegram/send) and runs the method in the webhook's answer, and opens the
    Mini App as a test user: /sim/telegram/open?user=<id>[&lang=ru|en][&theme=light|dark][&path=/]
    redirects to PUBLIC_BASE_URL with init data signed with TELEGRAM_BOT_TOKEN.

    Its state lives in schema "sim" of MIGRATION_DATABASE_URL (else DATABASE_URL), the schema
    owner's connection, since it creates its own tables. It acts as the bank for the terminals in
    TBANK_TEST_TERMINAL_KEY/PASSWORD and TBANK_TERMINAL_KEY/PASSWORD. SIM_PUBLIC_URL is its own
    address (default: TBANK_API_URL without /v2). It refuses to start unless PUBLIC_BASE_URL,
    TBANK_API_URL, KIE_API_URL and TELEGRAM_API_URL are all set to loopback addresses (localhost,
    127.0.0.0/8, [::1]): it never runs next to a production system or real money. As Kie it accepts only
    KIE_API_KEY (any key when unset) and signs callbacks with KIE_WEBHOOK_HMAC_KEY; result URLs
    start with KIE_API_URL when that is a loopback address, else with SIM_PUBLIC_URL/kie. As
    Telegram it accepts only TELEGRAM_BOT_TOKEN (any token when unset; a wrong one gets 401).

    --deliver-every T   instead of serving, re-send due notifications every T (2s, 500ms; a
                        plain number is seconds), a helper loop for `make run`.
    """

let options = CommandLineOptions(program: "pinglass-sim", usage: usage, extra: ["--deliver-every"])

let config: Config
do { config = try Config.load(environment: System.environment(), envFile: nil) } catch { options.fail("configuration: \(error)") }
// Our own address and every provider's must stay on this machine: the simulator plays the
// bank, Kie and Telegram for a local system only, and would otherwise stand beside real
// money (a real bank's notifications, real customers, payments its fake bank "confirms").
for (name, url) in [("PUBLIC_BASE_URL", config.publicBaseURL), ("TBANK_API_URL", config.tbankAPIURL),
                    ("KIE_API_URL", config.kieAPIURL), ("TELEGRAM_API_URL", config.telegramAPIURL)] {
    guard let url else { options.fail("\(name) is not set: the simulator only runs beside a local or test system (set it to a loopback URL)") }
    guard HTTPURL(url)?.isLoopback == true else {
        options.fail("\(name) is not a loopback address (unset, it is the real provider's): the simulator only runs beside a local or test system")
    }
}
HTTPClient.globalInit()
let terminals = config.terminals
let env = System.environment()
let publicURL = env["SIM_PUBLIC_URL"] ?? (config.tbankAPIURL.hasSuffix("/v2") ? String(config.tbankAPIURL.dropLast(3)) : config.tbankAPIURL)

let kieOptions = KieSimOptions(
    apiKey: config.kieAPIKey,
    resultsURL: HTTPURL(config.kieAPIURL)?.isLoopback == true
        ? (config.kieAPIURL.hasSuffix("/") ? String(config.kieAPIURL.dropLast()) : config.kieAPIURL) : publicURL + "/kie",
    webhookHmacKey: config.kieWebhookHMACKey)

func writeLog(_ s: String) {
    let line = "pinglass-sim[\(getpid())]: \(HTTPURL.redactingURLs(in: s))\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
}

// Create the simulator's tables before forking (a short-lived connection).
do {
    let db = Database(url: config.migrationDatabaseURL, applicationName: "pinglass-sim")
    try SimSchema.migrate(db.connection())
    db.close()
} catch { options.fail("database: \(error)") }

if let every = options["--deliver-every"] {
    guard let seconds = CommandLineOptions.duration(every), seconds > 0 else { options.fail("--deliver-every needs a positive duration, like 2s") }
    let app = SimApp(database: Database(url: config.migrationDatabaseURL, applicationName: "pinglass-sim"), terminals: terminals, publicURL: publicURL)
    while true {
        if let db = try? app.database.connection() {
            _ = try? Bank(db: db, terminals: terminals, publicURL: publicURL, http: app.http).deliverDue(force: false)
        }
        System.sleep(seconds: seconds)
    }
}

var poolConfig = options.poolConfiguration(defaultWorkers: 2)
poolConfig.maxBodyBytes = 110 << 20     // Bot API uploads: ten photos of up to 10 MB (nginx: client_max_body_size 110m)
var pool = Pool(configuration: poolConfig) {
    KieCallbacks.startThread(databaseURL: config.migrationDatabaseURL, options: kieOptions)
    let app = SimApp(database: Database(url: config.migrationDatabaseURL, applicationName: "pinglass-sim"), terminals: terminals,
                     publicURL: publicURL, kie: kieOptions, telegramToken: config.telegramBotToken, publicBaseURL: config.publicBaseURL)
    return app.handle
}
pool.log = { level, message in writeLog("master: " + (level == .info ? "" : "\(level.rawValue): ") + message) }
exit(pool.run())

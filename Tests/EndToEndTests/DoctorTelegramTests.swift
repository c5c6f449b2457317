import XCTest
import PinGlassTesting

/// `pinglass doctor` on the bot's front door (docs/runbook.md#bot-silent), against the
/// simulated Telegram: whether TELEGRAM_WEBHOOK_SECRET is set (never its value), and the
/// webhook Telegram holds (getWebhookInfo) against PUBLIC_BASE_URL/api/telegram/webhook,
/// before and after `pinglass telegram setup`, with Telegram's last delivery error. All of
/// them warnings with the command that fixes them: doctor still exits 0.
final class DoctorTelegramTests: DatabaseTestCase {
    var stack: Stack!
    let secret = "doctor-tests_webhook-secret-4567"

    override func tearDown() {
        stack?.stop()
        super.tearDown()
    }

    func pinglass(_ args: [String], env: [String: String] = [:]) throws -> (Int32, String) {
        let (status, out, err) = try Subprocess.capture(TestEnvironment.binDir() + "/pinglass", args,
                                                        environment: stack.environment.merging(env) { $1 })
        return (status, out + err)
    }

    func lines(_ out: String, _ prefix: String) -> [String] {
        out.split(separator: "\n").map(String.init).filter { $0.contains(prefix) }
    }

    func testDoctorReportsTheWebhookBeforeAndAfterSetup() throws {
        let simPort = Subprocess.freePort()
        var env = Fixtures.env(simURL: "http://127.0.0.1:\(simPort)")
        env["TELEGRAM_WEBHOOK_SECRET"] = secret
        stack = try Stack(database: db, workers: 1, env: env, withSimulator: true, simPort: simPort)
        let telegram = TelegramSimulator(simURL: stack.simURL)
        let hook = stack.baseURL + "/api/telegram/webhook"

        // Before setup: Telegram holds no webhook.
        let (s0, before) = try pinglass(["doctor"])
        XCTAssertEqual(s0, 0, before)
        XCTAssertTrue(before.contains("ok    TELEGRAM_WEBHOOK_SECRET set"), before)
        XCTAssertEqual(lines(before, "webhook"), ["ok    TELEGRAM_WEBHOOK_SECRET set (the bot's webhook takes updates)",
                                                  "warn  Telegram holds no webhook for the bot: /start reaches nobody; run pinglass telegram setup"],
                       before)
        XCTAssertFalse(before.contains(secret), before)

        // After setup: the webhook is this install's, nothing failed.
        let (setup, setupOut) = try pinglass(["telegram", "setup"])
        XCTAssertEqual(setup, 0, setupOut)
        let (s1, after) = try pinglass(["doctor"])
        XCTAssertEqual(s1, 0, after)
        XCTAssertEqual(lines(after, "Telegram's"), ["ok    Telegram's webhook is \(hook) (0 updates pending)"], after)
        XCTAssertTrue(after.contains("all checks passed"), after)

        // The workers' secret changes: Telegram's next update is refused with 401, which
        // doctor shows with the fix; setup sends the secret again and the warning goes.
        stack.stopPool()
        stack.environment["TELEGRAM_WEBHOOK_SECRET"] = secret + "-rotated"
        try stack.startPool()
        XCTAssertEqual(try telegram.send(chat: 100_001)["webhookStatus"]?.intValue, 401)
        let (s2, refused) = try pinglass(["doctor"])
        XCTAssertEqual(s2, 0, refused)
        let failed = lines(refused, "last delivery")
        XCTAssertEqual(failed.count, 1, refused)
        XCTAssertTrue(failed.first?.hasPrefix("warn  Telegram's last delivery to the webhook failed ") == true, refused)
        XCTAssertTrue(failed.first?.contains(" s ago: Wrong response from the webhook: 401 Unauthorized (1 update pending); "
            + "the secret Telegram holds is not TELEGRAM_WEBHOOK_SECRET: run pinglass telegram setup --force") == true, refused)
        XCTAssertFalse(refused.contains(secret), refused)
        XCTAssertEqual(try pinglass(["telegram", "setup"]).0, 0)
        XCTAssertEqual(lines(try pinglass(["doctor"]).1, "Telegram's"), ["ok    Telegram's webhook is \(hook) (0 updates pending)"])

        // Without the secret the webhook Telegram holds answers 404.
        let (s3, noSecret) = try pinglass(["doctor"], env: ["TELEGRAM_WEBHOOK_SECRET": ""])
        XCTAssertEqual(s3, 0, noSecret)
        XCTAssertTrue(noSecret.contains("warn  TELEGRAM_WEBHOOK_SECRET not set: /api/telegram/webhook answers 404 and the bot "
            + "does not answer /start"), noSecret)
        XCTAssertTrue(noSecret.contains("warn  Telegram's webhook is \(hook) (0 updates pending), which answers 404 without "
            + "TELEGRAM_WEBHOOK_SECRET: set it for the workers, then run pinglass telegram setup --force"), noSecret)

        // Another install's address: updates go there.
        let other = "http://127.0.0.1:\(Subprocess.freePort())"
        let (s4, moved) = try pinglass(["doctor"], env: ["PUBLIC_BASE_URL": other])
        XCTAssertEqual(s4, 0, moved)
        XCTAssertTrue(moved.contains("warn  Telegram's webhook is \(hook), not \(other)/api/telegram/webhook: this install gets "
            + "no updates; run pinglass telegram setup"), moved)
    }
}

import Foundation
import Postgres
import PinGlass
import JSON
import LibCrypto
import PinGlassConfig
import ProviderWire

/// Credentials and signed inputs the payment tests share: the bot token behind init data
/// and the terminals the simulator plays the bank for.
public enum Fixtures {
    public static let botToken = "7000000001:test-bot-token"
    public static let testTerminal = TBankTerminal(key: "PinGlassTestDEMO", password: "test-terminal-password")
    public static let productionTerminal = TBankTerminal(key: "PinGlassProd", password: "production-password")

    /// `env(simURL:)` for an in-process app with no simulator behind it, storing media in the
    /// fs store under a fresh temp folder and signing its links (the Mini App's API tests).
    public static func inProcessMediaEnv() throws -> [String: String] {
        var env = Fixtures.env(simURL: "http://127.0.0.1:9")
        env["MEDIA_KEY_SECRET"] = GenerationFixtures.mediaSecret
        env["PUBLIC_MEDIA_URL"] = "http://127.0.0.1:8080/media"
        env["STORAGE_DIR"] = try TestEnvironment.makeTempDir("media")
        return env
    }

    /// Variables for a PinGlass talking to the simulator at `simURL` (as T-Bank and Telegram).
    public static func env(simURL: String, production: Bool = false) -> [String: String] {
        var e = ["TBANK_API_URL": simURL + "/v2", "TBANK_TEST_TERMINAL_KEY": testTerminal.key,
                 "TBANK_TEST_PASSWORD": testTerminal.password, "TELEGRAM_BOT_TOKEN": botToken,
                 "TELEGRAM_API_URL": simURL + "/telegram", "SIM_PUBLIC_URL": simURL]
        if production {
            e["TBANK_TERMINAL_KEY"] = productionTerminal.key
            e["TBANK_PASSWORD"] = productionTerminal.password
        }
        return e
    }

    /// `Authorization: tma …` for a Telegram user, signed now (or at `authDate`).
    public static func auth(telegramID: Int64, authDate: Double = Date().timeIntervalSince1970, token: String = botToken) -> (String, String) {
        let user = #"{"id":\#(telegramID),"first_name":"Test","username":"u\#(telegramID)"}"#
        return ("Authorization", "tma " + TelegramInitData.sign(fields: [("auth_date", String(Int(authDate))), ("user", user)],
                                                                  botToken: token))
    }

    /// A T-Bank payment notification signed with the terminal's password.
    public static func notification(paymentID: String, orderID: String, status: String, amount: Int,
                                    terminal: TBankTerminal = testTerminal, password: String? = nil,
                                    extra: [(String, JSON)] = []) -> JSON {
        let success = !["REJECTED", "AUTH_FAIL"].contains(status)
        let fields: [(String, JSON)] = [
            ("TerminalKey", .string(terminal.key)), ("OrderId", .string(orderID)), ("Success", .bool(success)),
            ("Status", .string(status)), ("PaymentId", .number(paymentID)), ("ErrorCode", success ? "0" : "1051"),
            ("Amount", .int(amount)), ("CardId", 10452089), ("Pan", "430000******0777"), ("ExpDate", "1230"),
        ] + extra + [("DATA", ["Route": "ACQ"])]
        return TBankToken.signed(.object(fields), password: password ?? terminal.password)
    }

    /// Inserts a user and a pending payment as if Init had succeeded; returns (payment row id, bank id, order id).
    /// See `JobFixtures.payment`.
    @discardableResult
    public static func pendingPayment(_ db: Connection, telegramID: Int64 = 5001, amount: Int = 49900,
                                      terminal: TBankTerminal = testTerminal, mode: String = "test",
                                      status: String = "pending", refunded: Int = 0) throws -> (id: Int, bankID: String, orderID: String) {
        try JobFixtures.payment(db, telegramID: telegramID, status: status, amount: amount, mode: mode, terminalKey: terminal.key,
                                refunded: refunded)
    }

    public static func paymentState(_ db: Connection, _ id: Int) throws -> (status: String, refunded: Int) {
        let r = try db.query("SELECT status, refunded_kopecks FROM payments WHERE id = $1", [id])[0]
        return (r.requiredString("status"), r.requiredInt("refunded_kopecks"))
    }

    public static func outcomes(_ db: Connection, paymentID: Int?) throws -> [String] {
        try db.query("SELECT outcome FROM webhook_logs WHERE payment_id = $1 OR ($1 IS NULL AND payment_id IS NULL) ORDER BY id",
                     [paymentID]).map { $0.requiredString("outcome") }
    }
}

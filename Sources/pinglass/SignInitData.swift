import ArgumentParser
import PinGlass

struct SignInitData: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign-init-data",
        abstract: "Print Telegram Mini App init data signed with TELEGRAM_BOT_TOKEN (local demos and manual tests).",
        discussion: """
            Produces what Telegram gives a Mini App, so you can call the user API with curl: \
            curl -H "Authorization: tma $(pinglass sign-init-data --telegram-id 42)" …/api/payment/status. \
            Anyone holding the bot token can do this: keep the token secret.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: "The Telegram user id.")
    var telegramId: Int64

    @Option(help: "First name shown in the user record.")
    var firstName = "Demo"

    func run() throws {
        let config = try global.loadConfig()
        guard let token = config.telegramBotToken else { throw Refusal.configuration("TELEGRAM_BOT_TOKEN is not set") }
        let user = JSON.object([("id", .number(String(telegramId))), ("first_name", .string(firstName))]).serialized
        print(TelegramInitData.sign(fields: [("auth_date", String(Int(System.now()))), ("user", user)], botToken: token))
    }
}

import ArgumentParser
import PinGlass
import JSON
import Platform
import Postgres
import ProviderWire

struct SignInitData: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign-init-data",
        abstract: "Print Telegram Mini App init data signed with TELEGRAM_BOT_TOKEN (local demos and manual tests).",
        discussion: """
            Produces what Telegram gives a Mini App, so you can call the user API with curl: \
            curl -H "Authorization: tma $(pinglass sign-init-data --telegram-id 42)" …/api/payment/status. \
            The result signs in as that user, on any install with the same bot token: on a public \
            PUBLIC_BASE_URL (not loopback) it is refused unless --force is given. Every run is written \
            to admin_audit (who, for which Telegram id, forced or not), so the database must be reachable. \
            Anyone holding the bot token can do this: keep the token secret.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: "The Telegram user id.")
    var telegramId: Int64

    @Option(help: "First name shown in the user record.")
    var firstName = "Demo"

    @Flag(help: "Sign even though PUBLIC_BASE_URL is public (a live install: the result acts as that real user).")
    var force = false

    func run() throws {
        let config = try global.loadConfig()
        guard let token = config.telegramBotToken else { throw Refusal.configuration("TELEGRAM_BOT_TOKEN is not set") }
        if config.isPublicInstall && !force {
            throw Refusal.refused("PUBLIC_BASE_URL is public: init data signed here would sign in as a real user of a live install; "
                + "add --force if that is what you mean (the run is audited)")
        }
        // Audited before anything is printed: no signature leaves without its row.
        try AdminAudit.record(Database.forCLI(config).connection(), actor: Operator.actor, action: "sign-init-data",
                         target: "telegram:\(telegramId)",
                         details: ["telegramId": .int(Int(telegramId)), "forced": .bool(force), "publicInstall": .bool(config.isPublicInstall)])
        let user = JSON.object([("id", .number(String(telegramId))), ("first_name", .string(firstName))]).serialized
        print(TelegramInitData.sign(fields: [("auth_date", String(Int(System.now()))), ("user", user)], botToken: token))
    }
}

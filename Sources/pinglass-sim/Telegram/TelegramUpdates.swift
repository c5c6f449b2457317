import HTTPClient
import HTTPCore
import JSON
import Platform
import Postgres

/// A user of the simulated Telegram writing to the bot (docs/providers.md#telegram-simulator):
/// the text (`/start`) is stored in the user's private chat (the chat id is the user's id),
/// posted as an Update to the webhook `setWebhook` registered, with its secret in
/// `X-Telegram-Bot-Api-Secret-Token`, and a Bot API method in the webhook's answer
/// (`{"method": "sendMessage", …}`) is run as if the bot had called it, so its message lands
/// in the chat. Used by the chat page's form and `POST /sim/control/telegram/send`.
struct TelegramUpdates {
    let db: Connection
    let http: HTTPClient
    let botToken: String?

    struct Refusal: Error, CustomStringConvertible {
        let description: String
    }

    /// What became of it: the webhook's status and answer, and the method run with its Bot
    /// API answer (nil when the answer named none).
    func send(chat: Int64, text: String, lang: String, firstName: String? = nil) throws -> JSON {
        guard chat > 0 else { throw Refusal(description: "a user writes from a private chat: its id is the user's, a positive number") }
        guard !text.isEmpty, text.utf16.count <= 4096 else { throw Refusal(description: "the text must be 1-4096 characters") }
        guard let hook = try TelegramSim.webhook(db) else {
            throw Refusal(description: "no webhook is set: the bot has not called setWebhook (pinglass telegram setup)")
        }
        var quiet = TelegramSettings()
        quiet.floodControl = false
        let user = TelegramStore.NewMessage(kind: "text", text: text, parseMode: nil, fromUser: true)
        guard case .success(let stored) = try TelegramStore.insert(db, chatID: chat, [user], mediaGroupID: nil, quiet) else {
            throw Refusal(description: "the message could not be stored")
        }
        // Telegram's clients open Mini Apps in the language the user's updates carry.
        try TelegramStore.setLanguage(db, chatID: chat, lang)
        var result: [(String, JSON)] = [("messageId", .int(stored[0].messageID))]
        if let updates = hook.allowedUpdates, !updates.isEmpty, !updates.contains("message") {
            return .object(result + [("delivered", false), ("reason", "the webhook's allowed_updates leave out messages")])
        }
        let command = text.prefix { $0 != " " && $0 != "\n" }
        var message: [(String, JSON)] = [
            ("message_id", .int(stored[0].messageID)),
            ("from", ["id": .int(Int(chat)), "is_bot": false, "first_name": .string(firstName ?? "Test \(chat)"), "language_code": .string(lang)]),
            ("chat", ["id": .int(Int(chat)), "first_name": .string(firstName ?? "Test \(chat)"), "type": "private"]),
            ("date", .int(stored[0].date)), ("text", .string(text)),
        ]
        if command.hasPrefix("/") {
            message.append(("entities", [["offset": 0, "length": .int(command.utf16.count), "type": "bot_command"]]))
        }
        let update: JSON = .object([("update_id", .int(Int(System.now() * 1000) % 1_000_000_000)), ("message", .object(message))])
        var headers: [(String, String)] = []
        if let secret = hook.secretToken { headers.append(("X-Telegram-Bot-Api-Secret-Token", secret)) }
        let answer: HTTPResponse
        do {
            answer = try http.send(.json("POST", hook.url, body: update.bytes, headers: headers, timeout: 10))
        } catch {
            try TelegramSim.recordWebhookError(db, "Connection failed")
            return .object(result + [("delivered", false), ("reason", .string("the webhook did not answer: \(error)"))])
        }
        // Any 2xx takes the update, as at Telegram; anything else is kept as the last error.
        let taken = (200..<300).contains(answer.status)
        if taken {
            try TelegramSim.recordWebhookTaken(db)
        } else {
            try TelegramSim.recordWebhookError(db, "Wrong response from the webhook: \(answer.status) \(Response.reason(answer.status))")
        }
        result += [("delivered", .bool(taken)), ("webhookStatus", .int(answer.status))]
        let body = try? JSON.parse(answer.body)
        result.append(("answer", body ?? .string(String(answer.text.prefix(500)))))
        guard taken, let method = body?["method"]?.stringValue else { return .object(result) }
        // Telegram runs the method given in the answer (its result is not reported anywhere).
        let call = Request(method: "POST", path: "/telegram/bot\(botToken ?? "webhook")/\(method)",
                           headers: ["Content-Type": "application/json"], body: body!.bytes)
        let ran = try TelegramSim(db: db, http: http, botToken: botToken).handle(call, ["bot\(botToken ?? "webhook")", method])
        result += [("method", .string(method)), ("result", (try? JSON.parse(ran.body)) ?? .null)]
        return .object(result)
    }
}

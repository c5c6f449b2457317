import HTTPCore
import JSON
import LibCrypto
import PinGlass

/// `POST /api/telegram/webhook`: the bot's updates (docs/http-api.md#telegram-webhook),
/// translated to and from `BotWebhook`. Telegram proves itself with the `secret_token` given
/// to `setWebhook` (`pinglass telegram setup`), sent back in `X-Telegram-Bot-Api-Secret-Token`
/// and compared with `TELEGRAM_WEBHOOK_SECRET` in constant time (their SHA-256 digests, so the
/// length leaks nothing either); missing or wrong: 401. Without the secret the endpoint does
/// not exist: 404 as for any unknown path, before the body is read and with nothing logged.
/// A `/start` is answered with the Bot API method in the answer itself; everything else `{}`.
///
/// ```
/// POST /api/telegram/webhook  X-Telegram-Bot-Api-Secret-Token: …  {"update_id":1,"message":{"text":"/start",…}}
/// → 200 {"method":"sendMessage","chat_id":42,"text":"Hi! …","reply_markup":{"inline_keyboard":[[…]]}}
/// ```
enum TelegramRoutes {
    static let secretHeader = "X-Telegram-Bot-Api-Secret-Token"

    static func webhook(_ ctx: Context) throws -> Response {
        guard let secret = ctx.config.telegramWebhookSecret else {
            throw APIError.notFound("no such endpoint: \(ctx.request.method) \(ctx.request.path)")
        }
        guard let given = ctx.request.header(secretHeader),
              Crypto.constantTimeEqual(Crypto.sha256(Array(given.utf8)), Crypto.sha256(Array(secret.utf8))) else {
            throw APIError.unauthorized("missing or wrong \(secretHeader)")
        }
        let update: JSON
        do { update = try JSON.parse(ctx.request.body) } catch {
            throw APIError.validation("malformed JSON body: \(error)")
        }
        guard update.objectValue != nil else { throw APIError.validation("the body must be a JSON object (an Update)") }
        let answer = try BotWebhook.answer(ctx.db(), update: update, publicBaseURL: ctx.config.publicBaseURL,
                                              simulatedTelegram: MiniApp.telegramIsSimulated(ctx.config.telegramAPIURL))
        return .json(answer ?? .object([]))
    }
}

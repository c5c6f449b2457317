import HTTPCore
import PinGlass

/// Where the bank sends the customer back after paying (SuccessURL / FailURL). The Mini App
/// learns the outcome from `GET /api/payment/status`; these pages only say what to do next
/// (docs/http-api.md#return-pages), in Russian or English as the browser's `Accept-Language`
/// prefers (English when it names neither).
enum ReturnPageRoutes {
    struct Text {
        let title: String
        let body: String
    }

    /// Nothing starts on its own: the customer starts the generation in the app.
    static let successText: [String: Text] = [
        "en": Text(title: "Payment received",
                   body: "Thank you! Go back to the PinGlass app in Telegram. Once it shows the set as paid, press “Generate portraits” to start."),
        "ru": Text(title: "Оплата получена",
                   body: "Спасибо! Вернитесь в приложение PinGlass в Telegram. Когда набор отобразится как оплаченный, нажмите «Создать портреты»."),
    ]

    static let failText: [String: Text] = [
        "en": Text(title: "Payment not completed",
                   body: "The payment did not go through and no money was taken. Go back to the PinGlass app in Telegram to pay again."),
        "ru": Text(title: "Оплата не прошла",
                   body: "Платёж не прошёл, деньги не списаны. Вернитесь в приложение PinGlass в Telegram, чтобы оплатить снова."),
    ]

    static func success(_ ctx: Context) throws -> Response {
        page(successText, acceptLanguage: ctx.request.header("Accept-Language"))
    }

    static func fail(_ ctx: Context) throws -> Response {
        page(failText, acceptLanguage: ctx.request.header("Accept-Language"))
    }

    static func page(_ texts: [String: Text], acceptLanguage: String?) -> Response {
        let lang = AcceptLanguage.pick(acceptLanguage, from: ["en", "ru"], fallback: "en")
        let text = texts[lang]!
        return Response(status: 200, headers: [("Content-Type", "text/html; charset=utf-8"), ("Content-Language", lang),
                                               ("Vary", "Accept-Language")], body: Array("""
            <!doctype html><html lang="\(lang)"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
            <title>\(text.title)</title><style>body{font:16px system-ui;max-width:32rem;margin:3rem auto;padding:0 1rem}</style>
            </head><body><h1>\(text.title)</h1><p>\(text.body)</p></body></html>
            """.utf8))
    }
}

import HTTPCore
import PinGlass

/// Where the bank sends the customer back after paying (SuccessURL / FailURL). The Mini App
/// learns the outcome from `GET /api/payment/status`; these pages only say what to do next.
enum ReturnPageRoutes {
    static func success(_ ctx: Context) throws -> Response {
        // Nothing starts on its own: the customer starts the generation in the app.
        page("Payment received", "Thank you! Go back to the PinGlass app in Telegram. Once it shows the set as paid, press “Generate portraits” to start.")
    }

    static func fail(_ ctx: Context) throws -> Response {
        page("Payment not completed", "The payment did not go through and no money was taken. Go back to the PinGlass app in Telegram to pay again.")
    }

    static func page(_ title: String, _ text: String) -> Response {
        Response(status: 200, contentType: "text/html; charset=utf-8", body: """
            <!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
            <title>\(title)</title><style>body{font:16px system-ui;max-width:32rem;margin:3rem auto;padding:0 1rem}</style>
            </head><body><h1>\(title)</h1><p>\(text)</p></body></html>
            """)
    }
}

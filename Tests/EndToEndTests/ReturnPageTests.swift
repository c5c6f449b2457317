import XCTest
import HTTPClient
import PinGlassTesting
import JSON

/// The pages the bank sends the customer back to (docs/http-api.md#return-pages), through
/// nginx, reached the way a browser reaches them: from the simulated bank's page, after paying
/// or being declined. They tell the truthful next step: nothing starts until the customer
/// presses Generate in the app.
final class ReturnPageTests: BankStackTestCase {
    let http = HTTPClient()

    /// Creates a payment for the user, presses `action` on the bank's page (a form POST, as
    /// the browser does) and answers where the bank sent the customer back.
    func bankSendsBack(_ telegramID: Int64, action: String) throws -> String {
        let url = try bankPage(telegramID)
        let pressed = try http.send(HTTPRequest(method: "POST", url: url, headers: [("Content-Type", "application/x-www-form-urlencoded")],
                                                body: Array("action=\(action)".utf8)))
        XCTAssertEqual(pressed.status, 303, pressed.text)
        let back = try XCTUnwrap(pressed.header("location"))
        XCTAssertTrue(back.hasPrefix(stack.baseURL + "/payment/"), back)
        return back
    }

    /// A new payment's page at the simulated bank.
    func bankPage(_ telegramID: Int64) throws -> String {
        let created = try stack.client.post("/api/payment/create", body: #"{"tierId":"starter"}"#,
                                            headers: [Fixtures.auth(telegramID: telegramID)])
        XCTAssertEqual(created.status, 200, created.text)
        return try XCTUnwrap(try JSON.parse(created.body)["confirmationUrl"]?.stringValue)
    }

    func page(_ url: String, headers: [(String, String)] = []) throws -> HTTPResponse {
        let r = try http.send(HTTPRequest(url: url, headers: headers))
        XCTAssertEqual(r.status, 200, url)
        XCTAssertEqual(r.header("content-type"), "text/html; charset=utf-8")
        return r
    }

    func testThePagesSayWhatToDoNext() throws {
        let success = try page(try bankSendsBack(501, action: "pay")).text
        XCTAssertTrue(success.contains("Payment received"), success)
        XCTAssertTrue(success.contains("press “Generate portraits”"), success)
        XCTAssertFalse(success.contains("being prepared"), "nothing starts until the customer presses Generate: \(success)")

        let declined = try page(try bankSendsBack(502, action: "decline")).text
        XCTAssertTrue(declined.contains("no money was taken"), declined)
        XCTAssertTrue(declined.contains("pay again"), declined)
    }

    /// Russian or English by `Accept-Language` (weights count; English when it names neither),
    /// said in `Content-Language` and `<html lang>`, with `Vary` for caches.
    func testThePagesSpeakTheBrowsersLanguage() throws {
        let success = try bankSendsBack(503, action: "pay"), fail = try bankSendsBack(504, action: "3ds-fail")
        let cases: [(String?, String)] = [(nil, "en"), ("ru", "ru"), ("ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7", "ru"),
                                          ("en-US,en;q=0.9,ru;q=0.8", "en"), ("de, ru;q=0.3", "ru"), ("ru;q=0, de", "en"), ("fr", "en")]
        for (header, lang) in cases {
            for url in [success, fail] {
                let r = try page(url, headers: header.map { [("Accept-Language", $0)] } ?? [])
                let what = "\(url) with \(header ?? "no Accept-Language")"
                XCTAssertEqual(r.header("content-language"), lang, what)
                XCTAssertEqual(r.header("vary"), "Accept-Language", what)
                XCTAssertTrue(r.text.contains("<html lang=\"\(lang)\">"), what)
            }
        }
        let ru = try page(success, headers: [("Accept-Language", "ru")]).text
        XCTAssertTrue(ru.contains("Оплата получена") && ru.contains("нажмите «Создать портреты»"), ru)
        XCTAssertFalse(ru.contains("Payment"), ru)
        let ruFail = try page(fail, headers: [("Accept-Language", "ru-RU")]).text
        XCTAssertTrue(ruFail.contains("Оплата не прошла") && ruFail.contains("деньги не списаны"), ruFail)
        let en = try page(fail, headers: [("Accept-Language", "en-GB")]).text
        XCTAssertTrue(en.contains("Payment not completed"), en)
    }

    /// A browser on the bank's page and then on ours asks both sites for `/favicon.ico`: an
    /// empty 204 from each (nginx's on the app's port, the simulator's own), never a 404 that
    /// the browser logs as an error.
    func testFaviconRequestsAreQuietOnBothSites() throws {
        for base in [stack.baseURL, stack.simURL] {
            let r = try http.send(HTTPRequest(url: base + "/favicon.ico"))
            XCTAssertEqual(r.status, 204, base)
            XCTAssertEqual(r.body, [], base)
        }
        XCTAssertEqual(try http.send(HTTPRequest(url: stack.simURL + "/favicon.ico/x")).status, 404, "only the icon's path")
    }

    /// The simulated bank's page follows the same header (it is not ours, but the same
    /// browser reads it first).
    func testTheBanksPageSpeaksTheBrowsersLanguageToo() throws {
        let url = try bankPage(505)
        let ru = try page(url, headers: [("Accept-Language", "ru-RU,ru;q=0.9,en;q=0.8")])
        XCTAssertEqual(ru.header("content-language"), "ru")
        XCTAssertEqual(ru.header("vary"), "Accept-Language")
        XCTAssertTrue(ru.text.contains("Оплатить через СБП") && ru.text.contains("<html lang=\"ru\">"), ru.text)
        let en = try page(url)
        XCTAssertEqual(en.header("content-language"), "en")
        XCTAssertTrue(en.text.contains("Pay by SBP") && !en.text.contains("СБП"), en.text)
    }
}

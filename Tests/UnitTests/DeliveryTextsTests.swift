import XCTest
import ProviderWire
@testable import PinGlass

/// What users read in the chat, in both languages.
final class DeliveryTextsTests: XCTestCase {
    func testTheLanguageComesFromTelegramsLanguageCode() {
        XCTAssertEqual(DeliveryLanguage(languageCode: "ru"), .russian)
        XCTAssertEqual(DeliveryLanguage(languageCode: "ru-RU"), .russian)
        XCTAssertEqual(DeliveryLanguage(languageCode: "RU"), .russian)
        XCTAssertEqual(DeliveryLanguage(languageCode: "en"), .english)
        XCTAssertEqual(DeliveryLanguage(languageCode: "uk"), .english)
        XCTAssertEqual(DeliveryLanguage(languageCode: nil), .english)
    }

    func testCaptions() {
        XCTAssertEqual(DeliveryTexts.caption(.english, photos: 1...10), "PinGlass · portraits 1–10")
        XCTAssertEqual(DeliveryTexts.caption(.english, photos: 21...21), "PinGlass · portrait 21")
        XCTAssertEqual(DeliveryTexts.caption(.russian, photos: 11...18), "PinGlass · портреты 11–18")
        XCTAssertEqual(DeliveryTexts.caption(.russian, photos: 1...1), "PinGlass · портрет 1")
    }

    func testFinalMessages() {
        let url = "https://pinglass.example/?job=5"
        XCTAssertEqual(DeliveryTexts.final(.english, .init(outcome: .completed, made: 23, total: 23, released: 23, delivered: 23, refundKopecks: 0,
                                                           galleryURL: url)),
                       "Your PinGlass portraits are ready: all 23.")
        XCTAssertEqual(DeliveryTexts.final(.english, .init(outcome: .partial, made: 18, total: 23, released: 18, delivered: 8, refundKopecks: 10_847,
                                                           galleryURL: url)),
                       """
                       Your PinGlass portraits are ready: 18 of 23. 5 could not be made.
                       10 could not be sent to this chat.
                       We are refunding 108.47 ₽ to your card.
                       """)
        XCTAssertEqual(DeliveryTexts.final(.russian, .init(outcome: .partial, made: 18, total: 23, released: 18, delivered: 18, refundKopecks: 10_847,
                                                           galleryURL: url)),
                       """
                       Ваши портреты PinGlass готовы: 18 из 23. Не удалось сделать: 5.
                       Возвращаем на вашу карту 108,47 ₽.
                       """)
        XCTAssertEqual(DeliveryTexts.final(.russian, .init(outcome: .failed, made: 0, total: 7, released: 0, delivered: 0, refundKopecks: 49_900,
                                                           galleryURL: nil)),
                       "К сожалению, не удалось сделать ваши портреты PinGlass.\nВозвращаем на вашу карту 499 ₽.")
        XCTAssertEqual(DeliveryTexts.final(.english, .init(outcome: .failed, made: 0, total: 7, released: 0, delivered: 0, refundKopecks: 1_005,
                                                           galleryURL: nil)),
                       "Sorry, we could not make your PinGlass portraits.\nWe are refunding 10.05 ₽ to your card.")
    }

    /// A job below the threshold that made photos says plainly which ones the customer keeps
    /// (those already sent, paid for), that the others are not sent, and the refund.
    func testAFailedJobSaysWhichPhotosAreKeptAndWhichAreWithheld() {
        let url = "https://pinglass.example/?job=5"
        XCTAssertEqual(DeliveryTexts.final(.english, .init(outcome: .failed, made: 15, total: 23, released: 3, delivered: 3,
                                                           refundKopecks: 130_347, galleryURL: url)),
                       """
                       Sorry, we could make only 15 of your 23 PinGlass portraits: too few to count as a set.
                       You keep the 3 already sent and pay only for those; the other 12 will not be sent.
                       We are refunding 1303.47 ₽ to your card.
                       """)
        XCTAssertEqual(DeliveryTexts.final(.russian, .init(outcome: .failed, made: 15, total: 23, released: 3, delivered: 3,
                                                           refundKopecks: 130_347, galleryURL: nil)),
                       """
                       К сожалению, удалось сделать только 15 из 23 ваших портретов PinGlass: это слишком мало для набора.
                       Уже отправленные 3 остаются у вас, вы платите только за них; остальные 12 отправлены не будут.
                       Возвращаем на вашу карту 1303,47 ₽.
                       """)
        XCTAssertEqual(DeliveryTexts.final(.english, .init(outcome: .failed, made: 13, total: 23, released: 13, delivered: 13,
                                                           refundKopecks: 65_173, galleryURL: nil)),
                       """
                       Sorry, we could make only 13 of your 23 PinGlass portraits: too few to count as a set.
                       You keep the 13 already sent and pay only for those.
                       We are refunding 651.73 ₽ to your card.
                       """, "every photo made had gone out: nothing is withheld")
        XCTAssertEqual(DeliveryTexts.final(.english, .init(outcome: .failed, made: 4, total: 7, released: 0, delivered: 0,
                                                           refundKopecks: 49_900, galleryURL: url)),
                       """
                       Sorry, we could make only 4 of your 7 PinGlass portraits: too few to count as a set.
                       None of them will be sent, and you pay for none.
                       We are refunding 499 ₽ to your card.
                       """)
        XCTAssertEqual(DeliveryTexts.final(.russian, .init(outcome: .failed, made: 4, total: 7, released: 0, delivered: 0,
                                                           refundKopecks: 49_900, galleryURL: nil)),
                       """
                       К сожалению, удалось сделать только 4 из 7 ваших портретов PinGlass: это слишком мало для набора.
                       Мы их не отправляем, и вы не платите ни за один.
                       Возвращаем на вашу карту 499 ₽.
                       """)
    }

    /// The gallery link is a button under the final message: `web_app` on https (Telegram opens
    /// only https Mini Apps), `url` on a local http base when Telegram is the simulator; with the
    /// real Telegram an http base is a text line (a button to it would get the message refused);
    /// none when no photo is there to see.
    func testTheFinalMessageCarriesAButtonToTheJobsGallery() {
        func final(released: Int, url: String?, simulated: Bool = false) -> DeliveryTexts.Final {
            .init(outcome: .partial, made: 18, total: 23, released: released, delivered: released, refundKopecks: 10_847, galleryURL: url,
                  simulatedTelegram: simulated)
        }
        let https = "https://pinglass.example/?job=5"
        let local = "http://127.0.0.1:8080/?job=5"
        XCTAssertEqual(DeliveryTexts.finalKeyboard(.english, final(released: 18, url: https)),
                       [[InlineButton(text: "Open the gallery", action: .webApp(https))]])
        XCTAssertEqual(DeliveryTexts.finalKeyboard(.english, final(released: 18, url: https, simulated: true)),
                       [[InlineButton(text: "Open the gallery", action: .webApp(https))]])
        XCTAssertFalse(DeliveryTexts.final(.english, final(released: 18, url: https)).contains(https), "a button, not a line")
        XCTAssertEqual(DeliveryTexts.finalKeyboard(.russian, final(released: 18, url: local, simulated: true)),
                       [[InlineButton(text: "Открыть галерею", action: .url(local))]])
        XCTAssertFalse(DeliveryTexts.final(.russian, final(released: 18, url: local, simulated: true)).contains(local))
        // The real Telegram and an http base: no button, the address as the text's last line.
        XCTAssertEqual(DeliveryTexts.finalKeyboard(.russian, final(released: 18, url: local)), [])
        XCTAssertEqual(DeliveryTexts.final(.russian, final(released: 18, url: local)).split(separator: "\n").last, "Галерея: \(local)")
        XCTAssertEqual(DeliveryTexts.final(.english, final(released: 18, url: local)).split(separator: "\n").last, "The gallery: \(local)")
        XCTAssertFalse(DeliveryTexts.final(.english, final(released: 0, url: local)).contains(local), "no photo to show: no line")
        XCTAssertEqual(DeliveryTexts.finalKeyboard(.english, final(released: 0, url: https)), [], "no photo to show: no button")
        XCTAssertEqual(DeliveryTexts.finalKeyboard(.english, final(released: 18, url: nil)), [], "no PUBLIC_BASE_URL: no button")
        XCTAssertEqual(InlineButton.markup(DeliveryTexts.finalKeyboard(.english, final(released: 18, url: https))).serialized,
                       #"{"inline_keyboard":[[{"text":"Open the gallery","web_app":{"url":"https://pinglass.example/?job=5"}}]]}"#)
        XCTAssertEqual(MiniApp.gallery("https://pinglass.example", job: 5), https)
        XCTAssertEqual(MiniApp.home("https://pinglass.example"), "https://pinglass.example/")
    }
}

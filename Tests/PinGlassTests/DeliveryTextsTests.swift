import XCTest
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
        let url = "https://pinglass.example/"
        XCTAssertEqual(DeliveryTexts.final(.english, .init(outcome: .completed, made: 23, total: 23, delivered: 23, refundKopecks: 0,
                                                           galleryURL: url)),
                       "Your PinGlass portraits are ready: all 23.\nAll your photos: https://pinglass.example/")
        XCTAssertEqual(DeliveryTexts.final(.english, .init(outcome: .partial, made: 18, total: 23, delivered: 8, refundKopecks: 10_847,
                                                           galleryURL: url)),
                       """
                       Your PinGlass portraits are ready: 18 of 23. 5 could not be made.
                       10 could not be sent to this chat.
                       We are refunding 108.47 ₽ to your card.
                       All your photos: https://pinglass.example/
                       """)
        XCTAssertEqual(DeliveryTexts.final(.russian, .init(outcome: .partial, made: 18, total: 23, delivered: 18, refundKopecks: 10_847,
                                                           galleryURL: url)),
                       """
                       Ваши портреты PinGlass готовы: 18 из 23. Не удалось сделать: 5.
                       Возвращаем на вашу карту 108,47 ₽.
                       Все фото: https://pinglass.example/
                       """)
        XCTAssertEqual(DeliveryTexts.final(.russian, .init(outcome: .failed, made: 0, total: 7, delivered: 0, refundKopecks: 49_900,
                                                           galleryURL: nil)),
                       "К сожалению, не удалось сделать ваши портреты PinGlass.\nВозвращаем на вашу карту 499 ₽.")
        XCTAssertEqual(DeliveryTexts.final(.english, .init(outcome: .failed, made: 0, total: 7, delivered: 0, refundKopecks: 1_005,
                                                           galleryURL: nil)),
                       "Sorry, we could not make your PinGlass portraits.\nWe are refunding 10.05 ₽ to your card.")
    }
}

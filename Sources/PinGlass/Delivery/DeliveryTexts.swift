/// Every text a user reads in the Telegram chat, in one place, in Russian for users whose
/// Telegram language is Russian (`users.language_code` starting with `ru`) and in English
/// otherwise. Plain text (no parse mode): nothing to escape; the final message's link to the
/// job's gallery is a button under it (`finalKeyboard`), or a text line where Telegram would
/// refuse the button (a local http base with the real Telegram).
///
/// ```swift
/// let lang = DeliveryLanguage(languageCode: "ru-RU")
/// DeliveryTexts.caption(lang, photos: 11...20)          // "PinGlass · портреты 11–20"
/// DeliveryTexts.final(lang, .init(outcome: .partial, made: 18, total: 23, released: 18, delivered: 18,
///                                 refundKopecks: 10_847, galleryURL: "https://pinglass.example/?job=5"))
/// ```
public enum DeliveryLanguage: String, Sendable, Equatable {
    case english, russian

    public init(languageCode: String?) {
        self = (languageCode ?? "").lowercased().hasPrefix("ru") ? .russian : .english
    }
}

import ProviderWire
import WebURL

public enum DeliveryTexts {
    /// What the final message says.
    public struct Final: Equatable, Sendable {
        public var outcome: JobOutcome
        /// Photos the job made.
        public var made: Int
        /// Photos paid for.
        public var total: Int
        /// Photos the customer gets: all those made, or for a failed job the ones released
        /// before its end (the others are withheld and refunded).
        public var released: Int
        /// Photos that reached this chat (rows sent).
        public var delivered: Int
        /// Money going back (kopecks), 0 for none.
        public var refundKopecks: Int
        /// The job's gallery in the Mini App (`MiniApp.gallery`), nil when PUBLIC_BASE_URL is not set.
        public var galleryURL: String?
        /// Telegram is the simulator (`TELEGRAM_API_URL` on loopback): it takes a `url` button to
        /// a local http address, which the real Telegram refuses (with the whole message).
        public var simulatedTelegram: Bool

        public init(outcome: JobOutcome, made: Int, total: Int, released: Int, delivered: Int, refundKopecks: Int,
                    galleryURL: String?, simulatedTelegram: Bool = false) {
            self.outcome = outcome
            self.made = made
            self.total = total
            self.released = released
            self.delivered = delivered
            self.refundKopecks = refundKopecks
            self.galleryURL = galleryURL
            self.simulatedTelegram = simulatedTelegram
        }

        /// How the gallery is linked: a button (`web_app` on https; `url` to the simulator), a
        /// text line (http with the real Telegram), or nothing (no base, no photo to see).
        enum GalleryLink: Equatable { case button(String), line(String), none }

        var galleryLink: GalleryLink {
            guard let url = galleryURL, released > 0 else { return .none }
            return HTTPURL(url)?.scheme == "https" || simulatedTelegram ? .button(url) : .line(url)
        }
    }

    /// The caption of an album (on its first photo) or of a single photo; `photos` are the
    /// 1-based positions of its photos among the job's.
    public static func caption(_ lang: DeliveryLanguage, photos: ClosedRange<Int>) -> String {
        let span = photos.count == 1 ? "\(photos.lowerBound)" : "\(photos.lowerBound)–\(photos.upperBound)"
        switch (lang, photos.count == 1) {
        case (.english, true): return "PinGlass · portrait \(span)"
        case (.english, false): return "PinGlass · portraits \(span)"
        case (.russian, true): return "PinGlass · портрет \(span)"
        case (.russian, false): return "PinGlass · портреты \(span)"
        }
    }

    /// The message after the job's photos: how it ended, what reached the chat, the refund
    /// (the button to the gallery goes under it: `finalKeyboard`). A failed job that made some photos says plainly that
    /// only those already sent are kept (and paid for), the others are not sent, and what
    /// goes back.
    public static func final(_ lang: DeliveryLanguage, _ f: Final) -> String {
        var lines: [String] = []
        let missing = max(0, f.total - f.made), withheld = max(0, f.made - f.released)
        switch (lang, f.outcome) {
        case (.english, .completed): lines.append("Your PinGlass portraits are ready: all \(f.made).")
        case (.english, .partial): lines.append("Your PinGlass portraits are ready: \(f.made) of \(f.total). \(missing) could not be made.")
        case (.english, .failed) where f.made == 0: lines.append("Sorry, we could not make your PinGlass portraits.")
        case (.english, .failed):
            lines.append("Sorry, we could make only \(f.made) of your \(f.total) PinGlass portraits: too few to count as a set.")
            lines.append(f.released == 0 ? "None of them will be sent, and you pay for none."
                : withheld == 0 ? "You keep the \(f.released) already sent and pay only for those."
                : "You keep the \(f.released) already sent and pay only for those; the other \(withheld) will not be sent.")
        case (.russian, .completed): lines.append("Ваши портреты PinGlass готовы: все \(f.made).")
        case (.russian, .partial): lines.append("Ваши портреты PinGlass готовы: \(f.made) из \(f.total). Не удалось сделать: \(missing).")
        case (.russian, .failed) where f.made == 0: lines.append("К сожалению, не удалось сделать ваши портреты PinGlass.")
        case (.russian, .failed):
            lines.append("К сожалению, удалось сделать только \(f.made) из \(f.total) ваших портретов PinGlass: это слишком мало для набора.")
            lines.append(f.released == 0 ? "Мы их не отправляем, и вы не платите ни за один."
                : withheld == 0 ? "Уже отправленные \(f.released) остаются у вас, вы платите только за них."
                : "Уже отправленные \(f.released) остаются у вас, вы платите только за них; остальные \(withheld) отправлены не будут.")
        }
        if f.released > 0 && f.delivered < f.released {
            lines.append(lang == .russian ? "Не удалось отправить в этот чат: \(f.released - f.delivered)."
                                          : "\(f.released - f.delivered) could not be sent to this chat.")
        }
        if f.refundKopecks > 0 {
            let amount = roubles(f.refundKopecks, lang)
            lines.append(lang == .russian ? "Возвращаем на вашу карту \(amount)." : "We are refunding \(amount) to your card.")
        }
        if case .line(let url) = f.galleryLink {
            lines.append(lang == .russian ? "Галерея: \(url)" : "The gallery: \(url)")
        }
        return lines.joined(separator: "\n")
    }

    /// The final message's keyboard: one button to the job's gallery in the Mini App (a
    /// `web_app` button on https, a `url` button on http to the simulator: `InlineButton.miniApp`).
    /// The real Telegram refuses a button to a non-public address, and with it the whole
    /// message: on http with the real Telegram the link is a line of the text (`final`) and
    /// there is no button. The gallery shows released photos only: none when there is none to see.
    public static func finalKeyboard(_ lang: DeliveryLanguage, _ f: Final) -> [[InlineButton]] {
        guard case .button(let url) = f.galleryLink else { return [] }
        return [[.miniApp(lang == .russian ? "Открыть галерею" : "Open the gallery", url: url)]]
    }

    /// An operator alert (`Alerts.raise`) as the admin chat shows it.
    public static func alert(_ text: String) -> String { "PinGlass alert: " + text }

    /// `499 ₽`, `108.47 ₽` (English), `108,47 ₽` (Russian).
    static func roubles(_ kopecks: Int, _ lang: DeliveryLanguage) -> String {
        let whole = kopecks / 100, cents = kopecks % 100
        guard cents != 0 else { return "\(whole) ₽" }
        return "\(whole)\(lang == .russian ? "," : ".")\(cents < 10 ? "0" : "")\(cents) ₽"
    }
}

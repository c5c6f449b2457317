import XCTest
import JSON
import LibCrypto
import ProviderWire
@testable import PinGlass

/// The vendor's documented example, an SDK's vector, self-computed vectors for booleans and
/// numbers, and the original system's Init and notification (docs/providers.md#tbank-token).
final class TBankTokenTests: XCTestCase {
    func testOfficialDocumentationExample() {
        let request: JSON = ["TerminalKey": "MerchantTerminalKey", "Amount": 19200, "OrderId": "21090",
                             "Description": "Подарочная карта на 1000 рублей",
                             "DATA": ["Phone": "+71234567890"], "Receipt": ["Items": [["Name": "x"]]]]
        XCTAssertEqual(TBankToken.sign(request, password: "usaf8fw8fsw21g"),
                       "0024a00af7c350a3a67ca168ce06502aa72772456662e38696d48b56ee9c97d9")
    }

    func testSDKVector() {
        XCTAssertEqual(TBankToken.sign(["TerminalKey": "15180119216597", "PaymentId": "5353155", "Amount": 851500],
                                       password: "asd21dsas2"),
                       "a2804ae88b7a71d6bf831ea497f8df0768864002459eaeef7a0c50835d72810a")
    }

    func testGetStateAndCancelVectors() {
        XCTAssertEqual(TBankToken.sign(["TerminalKey": "TinkoffBankTest", "PaymentId": "13660"], password: "TinkoffBankTest"),
                       "73aa2711ec980262a31b3ade1021827b5672195348e6cc70335ca081a010e4ed")
        XCTAssertEqual(TBankToken.sign(["TerminalKey": "TinkoffBankTest", "PaymentId": "2304882", "Amount": 5000],
                                       password: "TinkoffBankTest"),
                       "7c1bfd4518fd7c7104ae649eed7d52759b0122b0cce809f7581f9fea6fadaedc")
        XCTAssertEqual(TBankToken.sign(["TerminalKey": "TestDEMOTerminalKey", "PaymentId": "test-payment-12345678"],
                                       password: "TestPassword123"),
                       "4acacb2088cafbf8097158d9357480ddeb7e74b729764477912112a9c302874a")
    }

    func testInitVectorOfTheOriginalSystem() {
        let initRequest: JSON = [
            "TerminalKey": "TestDEMOTerminalKey", "Amount": 49900, "OrderId": "u1t123abc",
            "Description": "PinGlass - 7 AI Photos (starter)",
            "SuccessURL": "https://example.app/payment/callback?telegram_user_id=123&tier=starter",
            "FailURL": "https://example.app/payment/fail", "NotificationURL": "https://example.app/api/payment/webhook",
        ]
        XCTAssertEqual(TBankToken.sign(initRequest, password: "TestPassword123"),
                       "be708140ffc872f6a6b34a1246b076e09230b7e42f2f9526a1f67114234ac9da")
    }

    /// A notification with booleans and numbers: `true` renders lowercase; `True` is wrong.
    func testNotificationVerificationAndBooleanRendering() throws {
        let body = #"{"TerminalKey":"TinkoffBankTest","Amount":100000,"OrderId":"21050","Success":true,"Status":"CONFIRMED","PaymentId":13660,"ErrorCode":"0","CardId":10452089,"Pan":"430000******0777","ExpDate":"0229","DATA":{"Route":"ACQ"},"Token":"a9ef71b24c2ed8ab60de3d47762e67d405e318c4f89a45c82505f0f0ff0f9d69"}"#
        let n = try JSON.parse(body)
        XCTAssertTrue(TBankToken.verify(n, password: "12345678"))
        XCTAssertFalse(TBankToken.verify(n, password: "12345679"))
        // The same notification signed by someone who rendered the boolean as "True".
        let pythonStyle = body.replacingOccurrences(of: "a9ef71b24c2ed8ab60de3d47762e67d405e318c4f89a45c82505f0f0ff0f9d69",
                                                    with: Crypto.sha256Hex("100000104520890022921050430000******07771234567813660CONFIRMEDTrueTinkoffBankTest"))
        XCTAssertFalse(TBankToken.verify(try JSON.parse(pythonStyle), password: "12345678"))
        XCTAssertFalse(TBankToken.verify(try JSON.parse(#"{"TerminalKey":"T","Amount":1}"#), password: "p"), "no Token")
    }

    func testOriginalSystemNotificationVector() {
        let n: JSON = ["TerminalKey": "TestDEMOTerminalKey", "OrderId": "u1t123abc", "Success": true, "Status": "CONFIRMED",
                       "PaymentId": "test-payment-12345678", "ErrorCode": "0", "Amount": 49900, "CardId": 123456,
                       "Pan": "430000******0777", "ExpDate": "1224"]
        XCTAssertEqual(TBankToken.sign(n, password: "TestPassword123"),
                       "39ab7c3a51ecefd8e9ad72fc081a53baf31df2a176c7c279e4caa0c747f76a1d")
        XCTAssertTrue(TBankToken.verify(TBankToken.signed(n, password: "TestPassword123"), password: "TestPassword123"))
    }

    func testPaymentIdIsReadAsStringOrNumber() {
        XCTAssertEqual(BankPaymentID.read(.number("13660")), "13660")
        XCTAssertEqual(BankPaymentID.read(.string("3093639567")), "3093639567")
        XCTAssertNil(BankPaymentID.read(.null))
        XCTAssertNil(BankPaymentID.read(.string("")))
    }

    func testReceiptItemsSumToTheAmountAndDueDateFormat() {
        let receipt = PaymentReceipt(email: "a@b.c", description: PaymentReceipt.description(photos: 7, tier: "starter"))
        for amount in [49900, 10847, 1] {
            let r = receipt.json(amount: amount)
            XCTAssertEqual(r["Items"]?.arrayValue?.compactMap { $0["Amount"]?.intValue }.reduce(0, +), amount)
            XCTAssertEqual(r["Items"]?.arrayValue?.first?["Name"]?.stringValue, "PinGlass: 7 AI portraits (starter)")
        }
        XCTAssertEqual(PaymentCreation.bankDate(1662771648), "2022-09-10T01:00:48+00:00")
        XCTAssertEqual(PaymentReceipt.host(of: "https://pay.example.com:8443/x"), "pay.example.com")
        XCTAssertEqual(PaymentReceipt.email(stored: nil, telegramID: 42, publicBaseURL: "https://pay.example.com"), "user42@pay.example.com")
        XCTAssertEqual(PaymentReceipt.email(stored: "a@b.c", telegramID: 42, publicBaseURL: nil), "a@b.c")
    }
}

final class TelegramInitDataTests: XCTestCase {
    let v1Token = "5768337691:AAH5YkoiEuPk8-FZa32hStHTqXiLPtAEhx8"
    let v1 = "query_id=AAHdF6IQAAAAAN0XohDhrOrc&user=%7B%22id%22%3A279058397%2C%22first_name%22%3A%22Vladislav%22%2C%22last_name%22%3A%22Kibenko%22%2C%22username%22%3A%22vdkfrost%22%2C%22language_code%22%3A%22ru%22%2C%22is_premium%22%3Atrue%7D&auth_date=1662771648&hash=c501b71e775f74ce10e377dea85a7ea24ecd640b223ea86dfe453e0eaed2e2b2"
    let v2Token = "7342037359:AAHI25ES9xCOMPokpYoz-p8XVrZUdygo2J4"
    let v2 = "user=%7B%22id%22%3A279058397%2C%22first_name%22%3A%22Vladislav%20%2B%20-%20%3F%20%5C%2F%22%2C%22last_name%22%3A%22Kibenko%22%2C%22username%22%3A%22vdkfrost%22%2C%22language_code%22%3A%22ru%22%2C%22is_premium%22%3Atrue%2C%22allows_write_to_pm%22%3Atrue%2C%22photo_url%22%3A%22https%3A%5C%2F%5C%2Ft.me%5C%2Fi%5C%2Fuserpic%5C%2F320%5C%2F4FPEE4tmP3ATHa57u6MqTDih13LTOiMoKoLDRG4PnSA.svg%22%7D&chat_instance=8134722200314281151&chat_type=private&auth_date=1733509682&signature=TYJxVcisqbWjtodPepiJ6ghziUL94-KNpG8Pau-X7oNNLNBM72APCpi_RKiUlBvcqo5L-LAxIc3dnTzcZX_PDg&hash=a433d8f9847bd6addcc563bff7cc82c89e97ea0d90c11fe5729cae6796a36d73"

    func testPublishedVectors() throws {
        let u1 = try TelegramInitData.validate(v1, botToken: v1Token, now: 1662771648, maxAge: 86400)
        XCTAssertEqual(u1, TelegramUser(id: 279058397, username: "vdkfrost", firstName: "Vladislav", lastName: "Kibenko", languageCode: "ru"))
        let u2 = try TelegramInitData.validate(v2, botToken: v2Token, now: 1733509682, maxAge: 86400)
        XCTAssertEqual(u2.firstName, "Vladislav + - ? /", "hashed raw (with \\/), parsed as JSON afterwards")
    }

    func testSignatureFieldStaysInTheCheckString() {
        // Dropping `signature` (as some libraries wrongly do) must break validation.
        let withoutSignature = v2.split(separator: "&").filter { !$0.hasPrefix("signature=") }.joined(separator: "&")
        XCTAssertThrowsError(try TelegramInitData.validate(withoutSignature, botToken: v2Token, now: 1733509682, maxAge: 86400)) {
            XCTAssertEqual($0 as? TelegramInitData.Failure, .badHash)
        }
    }

    func testExpiryFutureAndTampering() {
        XCTAssertThrowsError(try TelegramInitData.validate(v1, botToken: v1Token, now: 1662771648 + 86401, maxAge: 86400)) {
            XCTAssertEqual($0 as? TelegramInitData.Failure, .expired)
        }
        XCTAssertThrowsError(try TelegramInitData.validate(v1, botToken: v1Token, now: 1662771648 - 3600, maxAge: 86400)) {
            XCTAssertEqual($0 as? TelegramInitData.Failure, .fromTheFuture)
        }
        XCTAssertThrowsError(try TelegramInitData.validate(v1, botToken: v2Token, now: 1662771648, maxAge: 86400)) {
            XCTAssertEqual($0 as? TelegramInitData.Failure, .badHash)
        }
        let tampered = v1.replacingOccurrences(of: "279058397", with: "279058398")
        XCTAssertThrowsError(try TelegramInitData.validate(tampered, botToken: v1Token, now: 1662771648, maxAge: 86400))
        XCTAssertThrowsError(try TelegramInitData.validate(v1 + "&auth_date=1", botToken: v1Token, now: 1662771648, maxAge: 86400)) {
            XCTAssertEqual($0 as? TelegramInitData.Failure, .malformed("duplicate field auth_date"))
        }
        XCTAssertThrowsError(try TelegramInitData.validate("user=1&auth_date=2", botToken: v1Token, now: 2, maxAge: 9)) {
            XCTAssertEqual($0 as? TelegramInitData.Failure, .malformed("no hash"))
        }
    }

    func testSignRoundTrip() throws {
        let raw = TelegramInitData.sign(fields: [("auth_date", "1000"), ("user", #"{"id":42,"first_name":"Ann & Bob"}"#)], botToken: "1:x")
        XCTAssertEqual(try TelegramInitData.validate(raw, botToken: "1:x", now: 1000, maxAge: 10).id, 42)
    }
}

final class BankTransitionTests: XCTestCase {
    func testTheTransitionTable() {
        XCTAssertEqual(BankTransition.forBankStatus("CONFIRMED")?.target, .succeeded)
        XCTAssertEqual(BankTransition.forBankStatus("CONFIRMED")?.from, [.new, .pending, .authorized, .expired])
        XCTAssertEqual(BankTransition.forBankStatus("AUTHORIZED")?.target, .authorized, "a hold is not money")
        XCTAssertEqual(BankTransition.forBankStatus("AUTHORIZED")?.from, [.new, .pending, .expired])
        XCTAssertEqual(BankTransition.forBankStatus("REVERSED")?.target, .canceled)
        XCTAssertEqual(BankTransition.forBankStatus("PARTIAL_REVERSED")?.from, [.new, .pending, .authorized])
        XCTAssertEqual(BankTransition.forBankStatus("REJECTED")?.target, .rejected)
        XCTAssertEqual(BankTransition.forBankStatus("AUTH_FAIL")?.target, .rejected)
        XCTAssertEqual(BankTransition.forBankStatus("CANCELED")?.from, [.new, .pending, .authorized])
        XCTAssertEqual(BankTransition.forBankStatus("DEADLINE_EXPIRED")?.target, .expired)
        XCTAssertEqual(BankTransition.forBankStatus("REFUNDED")?.target, .refunded)
        XCTAssertFalse(BankTransition.forBankStatus("REFUNDED")!.from.contains(.refunded))
        for ignored in ["NEW", "FORM_SHOWED", "3DS_CHECKING", "RECEIPT", "COMPLETED", ""] {
            XCTAssertNil(BankTransition.forBankStatus(ignored), ignored)
        }
        // Nothing leaves a refunded payment; nothing but a refund leaves a succeeded one.
        for status in ["AUTHORIZED", "CONFIRMED", "REJECTED", "AUTH_FAIL", "CANCELED", "REVERSED", "DEADLINE_EXPIRED",
                       "PARTIAL_REFUNDED", "REFUNDED"] {
            let t = BankTransition.forBankStatus(status)!
            XCTAssertFalse(t.from.contains(.refunded), status)
            if !t.isRefund { XCTAssertFalse(t.from.contains(.succeeded), status) }
        }
    }

    func testOnlyHeldMoneyIsPaidAndOnlySucceededIsConsumable() {
        XCTAssertEqual(PaymentStatus.allCases.filter(\.holdsMoney), [.succeeded, .partiallyRefunded])
        XCTAssertEqual(PaymentStatus.allCases.filter(\.awaitsBank), [.new, .pending, .authorized])
        XCTAssertThrowsError(try PaymentStatus(stored: "paid"), "an unknown stored status is an error, not .new")
    }

    /// Late arrivals of earlier steps are normal; a refused money-relevant status is not.
    func testRefusalsThatNeedAPersonAreTold() throws {
        func anomalous(_ status: String, after current: PaymentStatus) throws -> Bool {
            try XCTUnwrap(BankTransition.forBankStatus(status)).isAnomalous(from: current)
        }
        XCTAssertFalse(try anomalous("AUTHORIZED", after: .succeeded))
        XCTAssertFalse(try anomalous("AUTHORIZED", after: .canceled), "REVERSED overtook AUTHORIZED")
        XCTAssertFalse(try anomalous("CONFIRMED", after: .refunded))
        XCTAssertFalse(try anomalous("PARTIAL_REFUNDED", after: .refunded))
        XCTAssertFalse(try anomalous("REJECTED", after: .expired), "no money involved")
        XCTAssertTrue(try anomalous("CONFIRMED", after: .rejected))
        XCTAssertTrue(try anomalous("CONFIRMED", after: .canceled))
        XCTAssertTrue(try anomalous("REVERSED", after: .succeeded))
        XCTAssertTrue(try anomalous("REFUNDED", after: .rejected))
    }
}

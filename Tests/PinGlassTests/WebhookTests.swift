import XCTest
import HTTPCore
import PinGlassTestSupport
@testable import PinGlass

/// The webhook handler in-process, with notifications signed as the bank signs them.
final class WebhookTests: XCTestCase {
    var db: TestDatabase!
    var app: InProcessApp!
    override func setUpWithError() throws {
        db = try TestDatabase()
        app = try InProcessApp(database: db, env: Fixtures.env(simURL: "http://127.0.0.1:9"))
    }
    override func tearDown() { db?.drop() }

    func post(_ n: JSON) -> Response { app.post("/api/payment/webhook", body: n.serialized) }

    func testConfirmedMovesPendingToSucceededAndAnswersPlainOK() throws {
        let c = try db.connect()
        let p = try Fixtures.pendingPayment(c)
        let res = post(Fixtures.notification(paymentID: p.bankID, orderID: p.orderID, status: "CONFIRMED", amount: 49900))
        XCTAssertEqual(res.status, 200)
        XCTAssertEqual(res.bodyText, "OK")
        XCTAssertEqual(res.header("Content-Type"), "text/plain; charset=utf-8")
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "succeeded")
        XCTAssertEqual(try Fixtures.outcomes(c, paymentID: p.id), ["applied"])
        let logged = try c.query("SELECT payload::text AS p, request_id FROM webhook_logs WHERE payment_id = $1", [p.id])[0]
        XCTAssertFalse(logged.requiredString("p").contains("Token"), "the Token is not stored")
        XCTAssertEqual(logged.string("request_id"), "test-req")
        XCTAssertNotNil(try c.query("SELECT paid_at FROM payments WHERE id = $1", [p.id])[0].string("paid_at"))
    }

    func testForgedTokenIs403AndLogged() throws {
        let c = try db.connect()
        let p = try Fixtures.pendingPayment(c)
        let forged = Fixtures.notification(paymentID: p.bankID, orderID: p.orderID, status: "CONFIRMED", amount: 49900, password: "guess")
        XCTAssertEqual(post(forged).status, 403)
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "pending")
        XCTAssertEqual(try c.query("SELECT outcome, reason FROM webhook_logs")[0].string("outcome"), "bad_signature")
        // A notification signed with the other terminal's password, or naming an unknown terminal.
        let otherTerminal = Fixtures.notification(paymentID: p.bankID, orderID: p.orderID, status: "CONFIRMED", amount: 49900,
                                                  terminal: TBankTerminal(key: "Stranger", password: "x"))
        XCTAssertEqual(post(otherTerminal).status, 403)
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM webhook_logs WHERE outcome = 'bad_signature'")[0].int("n"), 2)
    }

    func testPythonStyleBooleanRenderingIsRejected() throws {
        let c = try db.connect()
        let p = try Fixtures.pendingPayment(c)
        var n = Fixtures.notification(paymentID: p.bankID, orderID: p.orderID, status: "CONFIRMED", amount: 49900)
        // Re-sign as a sender that renders true as "True" would.
        let fields = n.objectValue!.filter { $0.0 != "Token" && $0.0 != "DATA" }
            .map { ($0.0, $0.1 == .bool(true) ? "True" : $0.1.scalarText!) } + [("Password", Fixtures.testTerminal.password)]
        let token = Crypto.sha256Hex(fields.sorted { $0.0 < $1.0 }.map(\.1).joined())
        n = .object(n.objectValue!.filter { $0.0 != "Token" } + [("Token", .string(token))])
        XCTAssertEqual(post(n).status, 403)
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "pending")
    }

    func testAmountMismatchIsNotAppliedAndLogged() throws {
        let c = try db.connect()
        let p = try Fixtures.pendingPayment(c)
        let res = post(Fixtures.notification(paymentID: p.bankID, orderID: p.orderID, status: "CONFIRMED", amount: 100))
        XCTAssertEqual(res.status, 200, "signed by the bank: answered, so it is not re-sent forever")
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "pending")
        let log = try c.query("SELECT outcome, reason FROM webhook_logs")[0]
        XCTAssertEqual(log.string("outcome"), "mismatch")
        XCTAssertTrue(log.requiredString("reason").contains("Amount 100"))
        // OrderId of another payment.
        let other = try Fixtures.pendingPayment(c, telegramID: 5002)
        _ = post(Fixtures.notification(paymentID: p.bankID, orderID: other.orderID, status: "CONFIRMED", amount: 49900))
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "pending")
        XCTAssertEqual(try Fixtures.outcomes(c, paymentID: p.id), ["mismatch", "mismatch"])
    }

    func testUnparsableIs400AndUnusedKindsAreAnsweredOK() throws {
        let c = try db.connect()
        XCTAssertEqual(app.post("/api/payment/webhook", body: "{not json").status, 400)
        XCTAssertEqual(try c.query("SELECT outcome FROM webhook_logs")[0].string("outcome"), "malformed")
        let p = try Fixtures.pendingPayment(c)
        // Fiscalisation: nested Receipt, Status RECEIPT; card binding: Status COMPLETED, no Amount.
        let receipt = TBankToken.signed(["TerminalKey": .string(Fixtures.testTerminal.key), "OrderId": .string(p.orderID),
                                         "Success": true, "Status": "RECEIPT", "PaymentId": .number(p.bankID), "ErrorCode": "0",
                                         "Amount": 49900, "FiscalNumber": 1, "Receipt": ["Items": [["Name": "x", "Price": 49900]]]],
                                        password: Fixtures.testTerminal.password)
        XCTAssertEqual(post(receipt).bodyText, "OK")
        let addCard = TBankToken.signed(["TerminalKey": .string(Fixtures.testTerminal.key), "CustomerKey": "c1", "RequestKey": "r1",
                                         "Success": true, "Status": "COMPLETED", "ErrorCode": "0", "CardId": 1, "Pan": "430000******0777"],
                                        password: Fixtures.testTerminal.password)
        XCTAssertEqual(post(addCard).bodyText, "OK")
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "pending")
        XCTAssertEqual(try Fixtures.outcomes(c, paymentID: p.id), ["ignored"])
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM webhook_logs WHERE outcome = 'ignored'")[0].int("n"), 2)
    }

    func testUnknownPaymentIsAnsweredOKAndLogged() throws {
        let c = try db.connect()
        XCTAssertEqual(post(Fixtures.notification(paymentID: "42", orderID: "nope", status: "CONFIRMED", amount: 1)).bodyText, "OK")
        XCTAssertEqual(try Fixtures.outcomes(c, paymentID: nil), ["unknown_payment"])
    }

    /// Every order of a payment's whole life, with duplicates, ends in the same state.
    func testAnyOrderOfDuplicatedNotificationsEndsInTheSameState() throws {
        let c = try db.connect()
        for round in 0..<8 {
            let p = try Fixtures.pendingPayment(c, telegramID: Int64(6000 + round))
            var events: [(String, Int)] = [("AUTHORIZED", 49900), ("CONFIRMED", 49900), ("PARTIAL_REFUNDED", 29900), ("REFUNDED", 0)]
            events = events.flatMap { e in Array(repeating: e, count: Int.random(in: 1...5)) }.shuffled()
            for (status, amount) in events {
                let res = post(Fixtures.notification(paymentID: p.bankID, orderID: p.orderID, status: status, amount: amount))
                XCTAssertEqual(res.bodyText, "OK")
            }
            let state = try Fixtures.paymentState(c, p.id)
            XCTAssertEqual(state.status, "refunded", "round \(round): \(events.map(\.0))")
            XCTAssertEqual(state.refunded, 49900)
            XCTAssertEqual(try Fixtures.outcomes(c, paymentID: p.id).count, events.count, "every notification logged")
        }
    }

    func testPaidPaymentIsNotMovedBackByLateFailures() throws {
        let c = try db.connect()
        let p = try Fixtures.pendingPayment(c)
        for status in ["CONFIRMED", "REJECTED", "CANCELED", "DEADLINE_EXPIRED", "AUTH_FAIL", "AUTHORIZED"] {
            XCTAssertEqual(post(Fixtures.notification(paymentID: p.bankID, orderID: p.orderID, status: status, amount: 49900)).bodyText, "OK")
        }
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "succeeded")
        XCTAssertEqual(try Fixtures.outcomes(c, paymentID: p.id), ["applied", "stale", "stale", "stale", "stale", "duplicate"])
    }

    func testLateConfirmedRevivesAnExpiredPayment() throws {
        let c = try db.connect()
        let p = try Fixtures.pendingPayment(c, status: "expired")
        XCTAssertEqual(post(Fixtures.notification(paymentID: p.bankID, orderID: p.orderID, status: "REJECTED", amount: 49900)).bodyText, "OK")
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "expired")
        _ = post(Fixtures.notification(paymentID: p.bankID, orderID: p.orderID, status: "CONFIRMED", amount: 49900))
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "succeeded")
    }

    /// The notification is checked with the password of the terminal it names (and the
    /// payment's own terminal), whatever mode is in force now.
    func testProductionTerminalNotificationsVerifyWithTheProductionPassword() throws {
        let prodApp = try InProcessApp(database: db, env: Fixtures.env(simURL: "http://127.0.0.1:9", production: true))
        let c = try db.connect()
        let p = try Fixtures.pendingPayment(c, terminal: Fixtures.productionTerminal, mode: "production")
        let n = Fixtures.notification(paymentID: p.bankID, orderID: p.orderID, status: "CONFIRMED", amount: 49900,
                                      terminal: Fixtures.productionTerminal)
        XCTAssertEqual(prodApp.post("/api/payment/webhook", body: n.serialized).bodyText, "OK")
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "succeeded")
        // Signed by the test terminal but naming a production payment: a mismatch.
        let q = try Fixtures.pendingPayment(c, telegramID: 5009, terminal: Fixtures.productionTerminal, mode: "production")
        _ = prodApp.post("/api/payment/webhook", body: Fixtures.notification(paymentID: q.bankID, orderID: q.orderID,
                                                                             status: "CONFIRMED", amount: 49900).serialized)
        XCTAssertEqual(try Fixtures.paymentState(c, q.id).status, "pending")
        XCTAssertEqual(try Fixtures.outcomes(c, paymentID: q.id), ["mismatch"])
    }

    func testDatabaseDownIs503() throws {
        var vars = Fixtures.env(simURL: "http://127.0.0.1:9")
        vars["DATABASE_URL"] = "host=/nonexistent port=1 dbname=x"
        let down = try InProcessApp(config: Config(variables: vars))
        let p = Fixtures.notification(paymentID: "1", orderID: "o", status: "CONFIRMED", amount: 1)
        XCTAssertEqual(down.post("/api/payment/webhook", body: p.serialized).status, 503)
    }
}

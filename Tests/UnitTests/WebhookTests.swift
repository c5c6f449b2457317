import XCTest
import HTTPCore
import PinGlassTesting
import JSON
import LibCrypto
import PinGlassConfig
import ProviderWire
@testable import PinGlass
@testable import PinGlassWeb

/// The webhook handler in-process, with notifications signed as the bank signs them.
final class WebhookTests: DatabaseTestCase {
    var app: InProcessApp!
    override func setUpWithError() throws {
        try super.setUpWithError()
        app = try InProcessApp(database: db, env: Fixtures.env(simURL: "http://127.0.0.1:9"))
    }

    func post(_ n: JSON) throws -> TestClient.Response { try app.client.post("/api/payment/webhook", body: n.serialized) }

    func testConfirmedMovesPendingToSucceededAndAnswersPlainOK() throws {
        let c = try db.connect()
        let p = try Fixtures.pendingPayment(c)
        let res = try post(Fixtures.notification(paymentID: p.bankID, orderID: p.orderID, status: "CONFIRMED", amount: 49900))
        XCTAssertEqual(res.status, 200)
        XCTAssertEqual(res.text, "OK")
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
        XCTAssertEqual(try post(forged).status, 403)
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "pending")
        XCTAssertEqual(try c.query("SELECT outcome, reason FROM webhook_logs")[0].string("outcome"), "bad_signature")
        // A notification signed with the other terminal's password, or naming an unknown terminal.
        let otherTerminal = Fixtures.notification(paymentID: p.bankID, orderID: p.orderID, status: "CONFIRMED", amount: 49900,
                                                  terminal: TBankTerminal(key: "Stranger", password: "x"))
        XCTAssertEqual(try post(otherTerminal).status, 403)
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
        XCTAssertEqual(try post(n).status, 403)
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "pending")
    }

    func testAmountMismatchIsNotAppliedAndLogged() throws {
        let c = try db.connect()
        let p = try Fixtures.pendingPayment(c)
        let res = try post(Fixtures.notification(paymentID: p.bankID, orderID: p.orderID, status: "CONFIRMED", amount: 100))
        XCTAssertEqual(res.status, 200, "signed by the bank: answered, so it is not re-sent forever")
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "pending")
        let log = try c.query("SELECT outcome, reason FROM webhook_logs")[0]
        XCTAssertEqual(log.string("outcome"), "mismatch")
        XCTAssertTrue(log.requiredString("reason").contains("Amount 100"))
        // OrderId of another payment.
        let other = try Fixtures.pendingPayment(c, telegramID: 5002)
        _ = try post(Fixtures.notification(paymentID: p.bankID, orderID: other.orderID, status: "CONFIRMED", amount: 49900))
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "pending")
        XCTAssertEqual(try Fixtures.outcomes(c, paymentID: p.id), ["mismatch", "mismatch"])
    }

    func testUnparsableIs400AndUnusedKindsAreAnsweredOK() throws {
        let c = try db.connect()
        XCTAssertEqual(try app.client.post("/api/payment/webhook", body: "{not json").status, 400)
        XCTAssertEqual(try c.query("SELECT outcome FROM webhook_logs")[0].string("outcome"), "malformed")
        let p = try Fixtures.pendingPayment(c)
        // Fiscalisation: nested Receipt, Status RECEIPT; card binding: Status COMPLETED, no Amount.
        let receipt = TBankToken.signed(["TerminalKey": .string(Fixtures.testTerminal.key), "OrderId": .string(p.orderID),
                                         "Success": true, "Status": "RECEIPT", "PaymentId": .number(p.bankID), "ErrorCode": "0",
                                         "Amount": 49900, "FiscalNumber": 1, "Receipt": ["Items": [["Name": "x", "Price": 49900]]]],
                                        password: Fixtures.testTerminal.password)
        XCTAssertEqual(try post(receipt).text, "OK")
        let addCard = TBankToken.signed(["TerminalKey": .string(Fixtures.testTerminal.key), "CustomerKey": "c1", "RequestKey": "r1",
                                         "Success": true, "Status": "COMPLETED", "ErrorCode": "0", "CardId": 1, "Pan": "430000******0777"],
                                        password: Fixtures.testTerminal.password)
        XCTAssertEqual(try post(addCard).text, "OK")
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "pending")
        XCTAssertEqual(try Fixtures.outcomes(c, paymentID: p.id), ["ignored"])
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM webhook_logs WHERE outcome = 'ignored'")[0].int("n"), 2)
    }

    func testUnknownPaymentIsAnsweredOKAndLogged() throws {
        let c = try db.connect()
        XCTAssertEqual(try post(Fixtures.notification(paymentID: "42", orderID: "nope", status: "CONFIRMED", amount: 1)).text, "OK")
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
                let res = try post(Fixtures.notification(paymentID: p.bankID, orderID: p.orderID, status: status, amount: amount))
                XCTAssertEqual(res.text, "OK")
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
            XCTAssertEqual(try post(Fixtures.notification(paymentID: p.bankID, orderID: p.orderID, status: status, amount: 49900)).text, "OK")
        }
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "succeeded")
        XCTAssertEqual(try Fixtures.outcomes(c, paymentID: p.id), ["applied", "refused", "refused", "refused", "refused", "stale"])
        XCTAssertEqual(try Counters.value(c, "payments.refused_transitions"), 4, "counted for the alerts")
    }

    func testLateConfirmedRevivesAnExpiredPayment() throws {
        let c = try db.connect()
        let p = try Fixtures.pendingPayment(c, status: "expired")
        XCTAssertEqual(try post(Fixtures.notification(paymentID: p.bankID, orderID: p.orderID, status: "REJECTED", amount: 49900)).text, "OK")
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "expired")
        _ = try post(Fixtures.notification(paymentID: p.bankID, orderID: p.orderID, status: "CONFIRMED", amount: 49900))
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
        XCTAssertEqual(try prodApp.client.post("/api/payment/webhook", body: n.serialized).text, "OK")
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "succeeded")
        // Signed by the test terminal but naming a production payment: a mismatch.
        let q = try Fixtures.pendingPayment(c, telegramID: 5009, terminal: Fixtures.productionTerminal, mode: "production")
        _ = try prodApp.client.post("/api/payment/webhook", body: Fixtures.notification(paymentID: q.bankID, orderID: q.orderID,
                                                                             status: "CONFIRMED", amount: 49900).serialized)
        XCTAssertEqual(try Fixtures.paymentState(c, q.id).status, "pending")
        XCTAssertEqual(try Fixtures.outcomes(c, paymentID: q.id), ["mismatch"])
    }

    func testDatabaseDownIs503() throws {
        var vars = Fixtures.env(simURL: "http://127.0.0.1:9")
        vars["DATABASE_URL"] = "host=/nonexistent port=1 dbname=x"
        let down = try InProcessApp(config: Config(variables: vars))
        let p = Fixtures.notification(paymentID: "1", orderID: "o", status: "CONFIRMED", amount: 1)
        XCTAssertEqual(try down.client.post("/api/payment/webhook", body: p.serialized).status, 503)
    }

    /// Only allow-listed fields are stored, on every path; a refused request keeps only its
    /// size, hash and a short prefix.
    func testTheLogKeepsNoCardDataNoTokenOnAnyPath() throws {
        let c = try db.connect()
        let p = try Fixtures.pendingPayment(c)
        let valid = Fixtures.notification(paymentID: p.bankID, orderID: p.orderID, status: "CONFIRMED", amount: 49900,
                                          extra: [("RebillId", 145919), ("Receipt", ["Items": []])])
        XCTAssertEqual(try post(valid).text, "OK")
        let forged = Fixtures.notification(paymentID: p.bankID, orderID: p.orderID, status: "CONFIRMED", amount: 49900, password: "guess")
        XCTAssertEqual(try post(forged).status, 403)
        let stranger = Fixtures.notification(paymentID: p.bankID, orderID: p.orderID, status: "CONFIRMED", amount: 49900,
                                             terminal: TBankTerminal(key: "Stranger", password: "x"))
        let forbidden = try post(stranger)
        XCTAssertEqual(forbidden.status, 403)
        XCTAssertEqual(forbidden.text, try post(forged).text, "one answer for an unknown terminal and a bad Token")
        let broken = #"{"TerminalKey":"PinGlassTestDEMO","Pan":"430000******0777","CardId":10452089,"#
        XCTAssertEqual(try app.client.post("/api/payment/webhook", body: broken).status, 400)

        let rows = try c.query("SELECT outcome, payload::text AS p FROM webhook_logs ORDER BY id")
        XCTAssertEqual(rows.map { $0.requiredString("outcome") }, ["applied", "bad_signature", "bad_signature", "bad_signature", "malformed"])
        for r in rows {
            let stored = r.requiredString("p")
            for secret in ["Pan", "430000", "ExpDate", "CardId", "10452089", "RebillId", "DATA", "Receipt", "Token", "Route"] {
                XCTAssertFalse(stored.contains(secret), "\(secret) stored: \(stored)")
            }
        }
        let applied = try JSON.parse(rows[0].requiredString("p"))
        XCTAssertEqual(Set(applied.objectValue!.map(\.0)), ["TerminalKey", "OrderId", "Success", "Status", "PaymentId", "ErrorCode", "Amount"])
        let refused = try JSON.parse(rows[4].requiredString("p"))
        XCTAssertEqual(refused["size"]?.intValue, broken.utf8.count)
        XCTAssertEqual(refused["sha256"]?.stringValue, Crypto.sha256Hex(broken))
        XCTAssertLessThanOrEqual(refused["prefix"]?.stringValue?.count ?? 99, 24)
    }

    /// NUL in a JSON string or a raw NUL byte is a 400 on every JSON endpoint, never a 500
    /// and never a value cut short.
    func testNulIsRefusedWith400() throws {
        let c = try db.connect()
        let p = try Fixtures.pendingPayment(c)
        var n = Fixtures.notification(paymentID: p.bankID, orderID: p.orderID, status: "CONFIRMED", amount: 49900)
        n = .object(n.objectValue!.map { $0.0 == "Message" ? ($0.0, .string("a\u{0}b")) : $0 } + [("Message", .string("x\u{0}y"))])
        XCTAssertEqual(try post(n).status, 400)
        var raw = Array(Fixtures.notification(paymentID: p.bankID, orderID: p.orderID, status: "CONFIRMED", amount: 49900).serialized.utf8)
        raw.insert(0, at: raw.count - 1)
        XCTAssertEqual(try app.client.execute("POST", "/api/payment/webhook", body: raw).status, 400)
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "pending")
        let create = try app.client.post("/api/payment/create", body: #"{"tierId":"start\u0000er"}"#,
                                         headers: [Fixtures.auth(telegramID: 5001)])
        XCTAssertEqual(create.status, 400, create.text)
        XCTAssertTrue(create.text.contains("NUL"), create.text)
    }

    /// Money moves only on `Success: true` with `ErrorCode "0"`.
    func testPositiveTransitionsNeedSuccessAndErrorCodeZero() throws {
        let c = try db.connect()
        let p = try Fixtures.pendingPayment(c)
        let pw = Fixtures.testTerminal.password
        func signed(success: JSON, code: JSON) -> JSON {
            TBankToken.signed(["TerminalKey": .string(Fixtures.testTerminal.key), "OrderId": .string(p.orderID), "Success": success,
                               "Status": "CONFIRMED", "PaymentId": .number(p.bankID), "ErrorCode": code, "Amount": 49900], password: pw)
        }
        XCTAssertEqual(try post(signed(success: false, code: "0")).text, "OK")
        XCTAssertEqual(try post(signed(success: true, code: "1051")).text, "OK")
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "pending")
        XCTAssertEqual(try Fixtures.outcomes(c, paymentID: p.id), ["ignored", "ignored"])
        XCTAssertEqual(try post(signed(success: true, code: 0)).text, "OK", "ErrorCode as a number is the same code")
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "succeeded")
    }

    /// AUTHORIZED is a hold: not paid, not consumable; CONFIRMED after REJECTED is refused,
    /// logged at error level and counted.
    func testAuthorizedIsNotMoneyAndRefusalsAreCounted() throws {
        let c = try db.connect()
        let p = try Fixtures.pendingPayment(c)
        XCTAssertEqual(try post(Fixtures.notification(paymentID: p.bankID, orderID: p.orderID, status: "AUTHORIZED", amount: 49900)).text, "OK")
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "authorized")
        let auth = Fixtures.auth(telegramID: 5001)
        let status = try JSON.parse(try app.client.get("/api/payment/status", query: "payment_id=\(p.bankID)", headers: [auth]).body)
        XCTAssertEqual(status["paid"], false)
        XCTAssertEqual(status["usable"], false)
        XCTAssertThrowsError(try c.execute("UPDATE payments SET consumed_by_job = 1 WHERE id = $1", [p.id])) { error in
            XCTAssertTrue("\(error)".contains("only a succeeded payment can be consumed"), "the database refuses consuming a hold: \(error)")
        }
        let r = try Fixtures.pendingPayment(c, telegramID: 5003)
        _ = try post(Fixtures.notification(paymentID: r.bankID, orderID: r.orderID, status: "REJECTED", amount: 49900))
        XCTAssertEqual(try post(Fixtures.notification(paymentID: r.bankID, orderID: r.orderID, status: "CONFIRMED", amount: 49900)).text, "OK")
        XCTAssertEqual(try Fixtures.paymentState(c, r.id).status, "rejected")
        XCTAssertEqual(try post(Fixtures.notification(paymentID: r.bankID, orderID: r.orderID, status: "CONFIRMED", amount: 49900)).text, "OK")
        XCTAssertEqual(try Fixtures.outcomes(c, paymentID: r.id), ["applied", "refused", "refused"])
        XCTAssertEqual(try Counters.value(c, "payments.refused_transitions"), 1, "the bank repeating itself is one refusal")
    }

    /// Only a succeeded payment can be consumed, once; a refunded or partly refunded one never.
    func testTheDatabaseConsumesOnlySucceededPayments() throws {
        let c = try db.connect()
        for status in ["pending", "authorized", "partially_refunded", "refunded", "canceled"] {
            let p = try Fixtures.pendingPayment(c, telegramID: Int64(7000 + status.count), status: status,
                                                refunded: status == "refunded" ? 49900 : status == "partially_refunded" ? 100 : 0)
            XCTAssertThrowsError(try c.execute("UPDATE payments SET consumed_by_job = 1 WHERE id = $1", [p.id]), status) { error in
                XCTAssertTrue("\(error)".contains("only a succeeded payment can be consumed"), "\(error)")
            }
        }
        // A succeeded payment is consumed by a real job, once: a second job cannot take it.
        let ready = try GenerationFixtures.readyToGenerate(c, telegramID: 7100)
        let userID = try c.query("SELECT user_id FROM payments WHERE id = $1", [ready.paymentID])[0].requiredInt("user_id")
        func job() throws -> Int {
            try c.query("""
                INSERT INTO generation_jobs (user_id, avatar_id, payment_id, style_id, total_photos, deadline_at)
                VALUES ($1, $2, $3, 'pinglass', 7, now() + interval '1 hour') RETURNING id
                """, [userID, ready.avatarID, ready.paymentID])[0].requiredInt("id")
        }
        let first = try job()
        XCTAssertEqual(try c.execute("UPDATE payments SET consumed_by_job = $1 WHERE id = $2", [first, ready.paymentID]), 1)
        try c.execute("DELETE FROM generation_jobs WHERE id <> $1 AND payment_id = $2", [first, ready.paymentID])
        XCTAssertThrowsError(try c.execute("UPDATE payments SET consumed_by_job = $1 + 1000 WHERE id = $2", [first, ready.paymentID])) { error in
            XCTAssertTrue("\(error)".contains("already consumed"), "\(error)")
        }
        // Refunded later (the job failed): still consumed by the same job, allowed.
        XCTAssertEqual(try c.execute("UPDATE payments SET status = 'refunded', refunded_kopecks = amount_kopecks WHERE id = $1", [ready.paymentID]), 1)
    }

    /// S6: a PARTIAL_REFUNDED notification (or GetState) moves the status forward only; its
    /// Amount is not read as a refunded sum (the bank does not say what it means, docs/providers.md#A1, and a wrong
    /// reading would overstate `refunded_kopecks` forever and cut every later refund). Only
    /// REFUNDED, which is unambiguous, sets the refunded sum (to all of it).
    func testAPartialRefundStatusMovesTheStatusOnlyAndRefundedSetsTheWholeSum() throws {
        let c = try db.connect()
        let p = try Fixtures.pendingPayment(c, status: "succeeded")
        XCTAssertEqual(try post(Fixtures.notification(paymentID: p.bankID, orderID: p.orderID, status: "PARTIAL_REFUNDED", amount: 29_900)).text, "OK")
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "partially_refunded")
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).refunded, 0, "the Amount is no refunded sum")
        XCTAssertEqual(try c.query("SELECT refund_headroom($1) AS h", [p.id])[0].int("h"), 49_900, "later refunds are not cut")
        for amount in [0, 100, 49_900] {
            XCTAssertEqual(try post(Fixtures.notification(paymentID: p.bankID, orderID: p.orderID, status: "PARTIAL_REFUNDED", amount: amount)).text, "OK")
        }
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).refunded, 0)
        XCTAssertEqual(try Fixtures.outcomes(c, paymentID: p.id), ["applied", "duplicate", "duplicate", "duplicate"])
        XCTAssertNotNil(try c.query("SELECT paid_at FROM payments WHERE id = $1", [p.id])[0].string("paid_at"))
        _ = try post(Fixtures.notification(paymentID: p.bankID, orderID: p.orderID, status: "REFUNDED", amount: 0))
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "refunded")
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).refunded, 49_900)

        // GetState (the status endpoint, the reconciler) takes the same path.
        let late = try Fixtures.pendingPayment(c, telegramID: 5002, status: "pending")
        let record = try XCTUnwrap(try PaymentLedger.find(c, id: late.id))
        XCTAssertEqual(try PaymentCheck.apply(app.deps, record, BankState(paymentID: late.bankID, status: "PARTIAL_REFUNDED",
                                                                           amount: 100, orderID: late.orderID)), .applied)
        XCTAssertEqual(try Fixtures.paymentState(c, late.id).status, "partially_refunded")
        XCTAssertEqual(try Fixtures.paymentState(c, late.id).refunded, 0)
    }

    /// A status the payment cannot take is refused, logged and counted once per payment and
    /// status, however often it comes.
    func testARefusedStatusIsCountedOnce() throws {
        let c = try db.connect()
        let p = try Fixtures.pendingPayment(c, status: "rejected")
        for _ in 0..<3 {
            XCTAssertEqual(try post(Fixtures.notification(paymentID: p.bankID, orderID: p.orderID, status: "CONFIRMED", amount: 49_900)).text, "OK")
        }
        XCTAssertEqual(try Fixtures.paymentState(c, p.id).status, "rejected")
        XCTAssertEqual(try Fixtures.outcomes(c, paymentID: p.id), ["refused", "refused", "refused"])
        XCTAssertEqual(try Counters.value(c, "payments.refused_transitions"), 1)
        // A signed CONFIRMED for an order we never made is counted too.
        _ = try post(Fixtures.notification(paymentID: "777", orderID: "never-made", status: "CONFIRMED", amount: 100))
        XCTAssertEqual(try Counters.value(c, "payments.unknown_notifications"), 1)
    }
}

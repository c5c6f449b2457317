import PinGlassTesting
import PropertyBased
import Testing
@testable import PinGlass
@testable import PinGlassWeb

/// docs/reliability.md#I4, as a property: the notifications of a payment's life,
/// each delivered 1–4 times in any order, leave the payment exactly as the real order does.
@Suite(.serialized) struct PaymentLifeProperties {
    /// Lives the bank can report for one payment: (Status, Amount) in the order they happen.
    static let lives: [[(String, Int)]] = [
        [("CONFIRMED", 49900)],
        [("AUTHORIZED", 49900), ("CONFIRMED", 49900)],
        [("AUTHORIZED", 49900), ("CONFIRMED", 49900), ("REFUNDED", 0)],
        [("AUTHORIZED", 49900), ("CONFIRMED", 49900), ("PARTIAL_REFUNDED", 29900), ("REFUNDED", 0)],
        [("AUTHORIZED", 49900), ("CONFIRMED", 49900), ("PARTIAL_REFUNDED", 29900), ("PARTIAL_REFUNDED", 9900)],
        [("AUTHORIZED", 49900), ("REVERSED", 49900)],
        [("AUTHORIZED", 49900), ("PARTIAL_REVERSED", 49900)],
        [("REJECTED", 49900)],
        [("AUTH_FAIL", 49900)],
        [("DEADLINE_EXPIRED", 49900)],
    ]

    @Test func anyOrderWithDuplicatesEndsLikeTheRealOrder() async throws {
        let db = try TestDatabase()   // swift-testing: no XCTestCase, so no makeDatabase()
        defer { db.drop() }
        let app = try InProcessApp(database: db, env: Fixtures.env(simURL: "http://127.0.0.1:9"))
        let c = try db.connect()
        var telegramID: Int64 = 90_000

        func deliver(_ events: [(String, Int)]) throws -> (status: String, refunded: Int) {
            telegramID += 1
            let p = try Fixtures.pendingPayment(c, telegramID: telegramID)
            for (status, amount) in events {
                let n = Fixtures.notification(paymentID: p.bankID, orderID: p.orderID, status: status, amount: amount)
                let res = try app.client.post("/api/payment/webhook", body: n.serialized)
                #expect(res.text == "OK", "every valid notification is answered OK")
            }
            let outcomes = try Fixtures.outcomes(c, paymentID: p.id)
            #expect(outcomes.count == events.count, "every notification is logged")
            #expect(!outcomes.contains("refused"), "a reordering of a real life is never an anomaly: \(outcomes)")
            return try Fixtures.paymentState(c, p.id)
        }

        await propertyCheck(count: 120, input: Gen.int(in: 0...(Self.lives.count - 1)), Gen.int(in: 1...4).array(of: 4),
                            Gen.int(in: 0...1_000_000).array(of: 16)) { lifeIndex, copies, sortKeys in
            let life = Self.lives[lifeIndex]
            let expected = try deliver(life)
            var events = life.enumerated().flatMap { i, e in Array(repeating: e, count: copies[i]) }
            events = zip(events, sortKeys).enumerated().sorted { ($0.1.1, $0.0) < ($1.1.1, $1.0) }.map { $0.1.0 }
            let got = try deliver(events)
            #expect(got == expected, "life \(life.map(\.0)) delivered as \(events.map(\.0))")
        }
    }
}

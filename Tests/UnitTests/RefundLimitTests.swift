import Foundation
import PinGlassTesting
import Postgres
import XCTest
@testable import PinGlass

/// The database refuses refunding more than was paid, counting refunds in flight and what
/// the bank reports refunded, whoever inserts and however concurrently (migration 0009).
final class RefundLimitTests: DatabaseTestCase {
    // The schema's refund guard is tested with rows written directly, not through the
    // refund duty, so the bank's side of the money is never recorded on the payment.
    override var auditsOnDrop: Bool { false }
    var c: Connection!

    override func setUpWithError() throws {
        try super.setUpWithError()
        c = try db.connect()
    }

    static func insert(_ paymentID: Int, _ amount: Int, on conn: some Queryable) throws -> Int {
        try conn.query("""
            INSERT INTO refunds (payment_id, amount_kopecks, reason, requested_by) VALUES ($1, $2, 'test', 'test') RETURNING id
            """, [paymentID, amount])[0].requiredInt("id")
    }

    /// The trigger's refusal: SQLSTATE 23514 naming what was refused.
    func assertRefused(_ body: @autoclosure () throws -> Any, _ text: String, line: UInt = #line) {
        XCTAssertThrowsError(try body(), line: line) { error in
            guard case PostgresError.server(let state, let message) = error else { return XCTFail("\(error)", line: line) }
            XCTAssertEqual(state, "23514", line: line)
            XCTAssertTrue(message.contains(text), message, line: line)
        }
    }

    func testRefundsInFlightAndDoneCountAgainstThePayment() throws {
        let p = try Fixtures.pendingPayment(c, telegramID: 6101, status: "succeeded")
        let first = try Self.insert(p.id, 30_000, on: c)
        assertRefused(try Self.insert(p.id, 20_000, on: c), "exceeds what payment \(p.id) can still refund: 19900 kopecks")
        let second = try Self.insert(p.id, 19_900, on: c)
        XCTAssertEqual(try c.query("SELECT refund_headroom($1) AS h", [p.id])[0].int("h"), 0)
        // A failed refund gives its share back; re-queuing it claims it again.
        try c.execute("UPDATE refunds SET state = 'requested' WHERE id = $1", [first])
        try c.execute("UPDATE refunds SET state = 'failed', finished_at = now() WHERE id = $1", [first])
        let third = try Self.insert(p.id, 30_000, on: c)
        assertRefused(try c.execute("UPDATE refunds SET state = 'pending', finished_at = NULL WHERE id = $1", [first]), "exceeds")
        // A succeeded refund still counts, also before the payment heard of it.
        try c.execute("UPDATE refunds SET state = 'requested' WHERE id = ANY($1::bigint[])", ["{\(second),\(third)}"])
        try c.execute("""
            UPDATE refunds SET state = 'succeeded', finished_at = now(), bank_original_kopecks = 1, bank_remaining_kopecks = 0
            WHERE id = $1
            """, [second])
        assertRefused(try Self.insert(p.id, 1, on: c), "exceeds")
        XCTAssertEqual(try c.query("SELECT refund_headroom($1) AS h", [p.id])[0].int("h"), 0)
    }

    /// A refund made in the bank's dashboard has no row here: the bank's own figure counts.
    func testWhatTheBankAlreadyRefundedCounts() throws {
        let p = try Fixtures.pendingPayment(c, telegramID: 6102, status: "partially_refunded", refunded: 40_000)
        _ = try Self.insert(p.id, 9_000, on: c)
        assertRefused(try Self.insert(p.id, 901, on: c), "can still refund: 900 kopecks")
        _ = try Self.insert(p.id, 900, on: c)
    }

    func testOnlyAPaidPaymentCanBeRefunded() throws {
        for (n, status) in ["pending", "authorized", "refunded", "canceled"].enumerated() {
            let p = try Fixtures.pendingPayment(c, telegramID: Int64(6110 + n), status: status, refunded: status == "refunded" ? 49_900 : 0)
            assertRefused(try Self.insert(p.id, 100, on: c), "payment \(p.id) is \(status): only a succeeded or partially refunded payment")
        }
    }

    /// Forward only, and what the bank may already hold never changes.
    func testRefundRowsMoveForwardAndKeepTheirAmountAndKey() throws {
        let p = try Fixtures.pendingPayment(c, telegramID: 6103, status: "succeeded")
        let id = try Self.insert(p.id, 1_000, on: c)
        assertRefused(try c.execute("UPDATE refunds SET amount_kopecks = 900 WHERE id = $1", [id]), "never change")
        assertRefused(try c.execute("UPDATE refunds SET external_request_id = gen_random_uuid() WHERE id = $1", [id]), "never change")
        assertRefused(try c.execute("UPDATE refunds SET state = 'succeeded', finished_at = now() WHERE id = $1", [id]),
                      "pending → succeeded is not a refund transition")
        try c.execute("UPDATE refunds SET state = 'requested' WHERE id = $1", [id])
        assertRefused(try c.execute("UPDATE refunds SET state = 'pending' WHERE id = $1", [id]), "requested → pending")
        try c.execute("""
            UPDATE refunds SET state = 'succeeded', finished_at = now(), bank_original_kopecks = 49900, bank_remaining_kopecks = 48900
            WHERE id = $1
            """, [id])
        assertRefused(try c.execute("UPDATE refunds SET state = 'failed' WHERE id = $1", [id]), "succeeded → failed")
        // A succeeded refund carries the bank's answer.
        let other = try Self.insert(p.id, 1_000, on: c)
        try c.execute("UPDATE refunds SET state = 'requested' WHERE id = $1", [other])
        XCTAssertThrowsError(try c.execute("UPDATE refunds SET state = 'succeeded', finished_at = now() WHERE id = $1", [other]))
    }

    /// An operator's refund: found by bank id or order id, written with its audit row and a
    /// wake-up for the sender; refused with the reason an operator needs.
    func testManualRefundsGoThroughTheSameRows() throws {
        let p = try Fixtures.pendingPayment(c, telegramID: 6106, status: "succeeded")
        let listener = Listener(conninfo: db.url, channels: ["refund"])
        XCTAssertFalse(listener.wait(timeout: 0), "listening, nothing yet")
        let q = try ManualRefunds.request(c, payment: p.orderID, amount: Money(kopecks: 9_900), reason: "  goodwill  ", ticket: "T-1", actor: "cli:anna")
        XCTAssertEqual(q.paymentID, p.id)
        XCTAssertEqual(q.headroomAfter, Money(kopecks: 40_000))
        let row = try c.query("SELECT reason, requested_by, state, job_id FROM refunds WHERE id = $1", [q.refundID])[0]
        XCTAssertEqual(row.string("reason"), "goodwill")
        XCTAssertEqual(row.string("requested_by"), "cli:anna")
        XCTAssertEqual(row.string("state"), "pending")
        XCTAssertNil(row.int("job_id"))
        XCTAssertEqual(try c.query("SELECT actor, action, target FROM admin_audit").map { [$0.string("actor"), $0.string("action"), $0.string("target")] },
                       [["cli:anna", "refund.manual", "refund:\(q.refundID)"]])
        XCTAssertEqual(try ManualRefunds.request(c, payment: p.bankID, amount: Money(kopecks: 100), reason: "x", ticket: "T-2",
                                                 force: true, actor: "a").inFlight,
                       Money(kopecks: 9_900))
        XCTAssertThrowsError(try ManualRefunds.request(c, payment: p.bankID, amount: Money(kopecks: 40_000), reason: "x", ticket: "T-3",
                                                       force: true, actor: "a")) {
            XCTAssertEqual("\($0)", "refused by the database: refund of 40000 kopecks exceeds what payment \(p.id) can still refund: 39900 kopecks")
        }
        XCTAssertThrowsError(try ManualRefunds.request(c, payment: p.bankID, amount: Money(kopecks: 1), reason: " ", ticket: "T-4", actor: "a")) {
            XCTAssertEqual($0 as? ManualRefunds.Refusal, .badInput("a reason is required (it goes to the audit trail)"))
        }
        XCTAssertThrowsError(try ManualRefunds.requeue(c, refundID: q.refundID, actor: "a")) {
            XCTAssertEqual($0 as? ManualRefunds.Refusal, .notFailed(refundID: q.refundID, state: "pending"))
        }
        XCTAssertEqual(try c.query("SELECT count(*)::int AS n FROM admin_audit")[0].int("n"), 2, "refusals leave no audit row")
        XCTAssertTrue(listener.wait(timeout: 10), "the sender is woken")
    }

    /// Two connections refund one payment at once: the second waits for the first's lock and
    /// then sees its row. Twice: two manual refunds, then a manual one racing the automatic
    /// refund of a failed job (which takes only what is left).
    func testConcurrentRefundsFromTwoConnectionsNeverExceedThePayment() throws {
        let p = try Fixtures.pendingPayment(c, telegramID: 6104, status: "succeeded")
        let second = try raceWhileHolding { tx in _ = try Self.insert(p.id, 30_000, on: tx) } against: { other in
            _ = try Self.insert(p.id, 30_000, on: other)
        }
        guard case .failure(PostgresError.server(let state, let message))? = second else { return XCTFail("\(String(describing: second))") }
        XCTAssertEqual(state, "23514")
        XCTAssertTrue(message.contains("can still refund: 19900 kopecks"), message)
        XCTAssertEqual(try c.query("SELECT sum(amount_kopecks)::int AS s FROM refunds WHERE payment_id = $1", [p.id])[0].int("s"), 30_000)

        // Manual (holding the payment) against the automatic refund of a job that failed completely.
        let deps = try PollFixtures.deps(db)
        let job = try JobFixtures.running(deps, telegramID: 6105, photos: 3)
        try JobFixtures.settle(c, job, succeeded: 0, failed: 3)
        let (jobID, paymentID) = (job.id, job.paymentID)
        let finished = try raceWhileHolding { tx in _ = try Self.insert(paymentID, 40_000, on: tx) } against: { other in
            try JobFinish.finish(other, jobID: jobID)?.refundKopecks ?? -1
        }
        XCTAssertEqual(try finished?.get(), 9_900, "the automatic refund takes what the manual one left")
        let rows = try c.query("SELECT amount_kopecks, job_id FROM refunds WHERE payment_id = $1 ORDER BY id", [job.paymentID])
        XCTAssertEqual(rows.map { $0.int("amount_kopecks") }, [40_000, 9_900])
        XCTAssertEqual(try InvariantAudit.run(c), [])
    }

    /// Runs `holding` in a transaction on this test's connection and, while it is still
    /// open, `other` on a second connection in another thread; commits once `other` waits for
    /// a lock (seen in pg_locks: no sleep), then returns what `other` got.
    func raceWhileHolding<T>(_ holding: (Transaction) throws -> Void,
                             against other: @escaping @Sendable (Connection) throws -> T) throws -> Result<T, Error>? {
        let url = db.url
        let done = DispatchSemaphore(value: 0)
        let box = ResultBox<T>()
        let watcher = try db.connect()
        try c.withTransaction { tx in
            try holding(tx)
            Thread.detachNewThread {
                box.result = Result { try other(try Connection(url)) }
                done.signal()
            }
            try Subprocess.waitUntil("the second connection waiting for the payment's lock") {
                try watcher.query("SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted")[0].requiredInt("n") > 0
            }
        }
        done.wait()
        return box.result
    }
}

final class ResultBox<T>: @unchecked Sendable {
    var result: Result<T, Error>?
}

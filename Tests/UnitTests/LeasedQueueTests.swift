import Foundation
import PinGlassTesting
import Postgres
import XCTest
@testable import PinGlass

/// The lease life cycle every leased queue shares (`LeasedQueue`, `LeaseRescuer`) against
/// real PostgreSQL: claim with a token, renew, write under the lease, lose it, give it back,
/// and the rescue of leases that ran out. Each assertion names the guard it proves: drop
/// that guard from the statement and the test fails.
final class LeasedQueueTests: PipelineTestCase {
    let queue = LeasedQueue.deliveries

    /// Claims one `pending` delivery the way a claim does: held state and `grant` in one
    /// guarded statement, the token returned.
    func claim(_ id: Int, seconds: Int = 60) throws -> String? {
        try c.query("""
            UPDATE telegram_deliveries SET state = 'sending', \(LeasedQueue.grant(seconds: "$2"))
            WHERE id = $1 AND state = 'pending' AND \(LeasedQueue.free)
            RETURNING \(LeasedQueue.token())
            """, [id, seconds]).first?.string("lease")
    }

    func row(_ id: Int) throws -> (state: String, lease: String?, leftSeconds: Double?, error: String?) {
        let r = try c.query("""
            SELECT state, lease_token::text AS lease, extract(epoch FROM lease_until - now())::float8 AS left_s, last_error
            FROM telegram_deliveries WHERE id = $1
            """, [id])[0]
        return (r.requiredString("state"), r.string("lease"), r.double("left_s"), r.string("last_error"))
    }

    func testClaimRenewAndRecordUnderTheLease() throws {
        let id = try SweepFixtures.delivery(c, state: "pending", leaseIn: nil)
        let lease = try XCTUnwrap(try claim(id, seconds: 30))
        XCTAssertNil(try claim(id), "a held row is not claimed twice")
        XCTAssertEqual(try row(id).lease, lease)
        XCTAssertLessThanOrEqual(try XCTUnwrap(row(id).leftSeconds), 30, "the lease runs from PostgreSQL's now()")

        XCTAssertTrue(try queue.renew(c, id: id, lease: lease, seconds: 600))
        XCTAssertGreaterThan(try XCTUnwrap(row(id).leftSeconds), 500, "renew extends the lease from now()")

        XCTAssertEqual(try queue.write(c, id: id, lease: lease, set: "last_error = $3", ["noted"], releasing: false), .recorded)
        XCTAssertEqual(try row(id).lease, lease, "a write that does not release keeps the lease")
        XCTAssertEqual(try queue.write(c, id: id, lease: lease, set: "state = 'sent', sent_at = now()", releasing: true), .recorded)
        let done = try row(id)
        XCTAssertEqual(done.state, "sent")
        XCTAssertNil(done.lease, "release clears the token")
        XCTAssertNil(done.leftSeconds, "release clears lease_until")
        XCTAssertEqual(done.error, "noted")
    }

    /// The token guard: another holder's token (or a stale one) writes nothing.
    func testAnotherTokenIsALostLease() throws {
        let id = try SweepFixtures.delivery(c, state: "pending", leaseIn: nil)
        let lease = try XCTUnwrap(try claim(id))
        let stranger = UUID().uuidString.lowercased()
        XCTAssertFalse(try queue.renew(c, id: id, lease: stranger, seconds: 600))
        XCTAssertEqual(try queue.write(c, id: id, lease: stranger, set: "state = 'failed'", releasing: true), .lost)
        let after = try row(id)
        XCTAssertEqual(after.state, "sending")
        XCTAssertEqual(after.lease, lease, "the holder's lease is untouched")
        XCTAssertLessThanOrEqual(try XCTUnwrap(after.leftSeconds), 60, "a stranger's renew extended nothing")
    }

    /// The state guard: a row that left the held state keeps whatever it became, even
    /// when its token is still the writer's.
    func testARowThatLeftTheHeldStateIsALostLease() throws {
        let id = try SweepFixtures.delivery(c, state: "pending", leaseIn: nil)
        let lease = try XCTUnwrap(try claim(id))
        try c.execute("UPDATE telegram_deliveries SET state = 'failed', last_error = 'ended elsewhere' WHERE id = $1", [id])
        XCTAssertFalse(try queue.renew(c, id: id, lease: lease, seconds: 600))
        XCTAssertEqual(try queue.write(c, id: id, lease: lease, set: "state = 'sent', sent_at = now()", releasing: true), .lost)
        XCTAssertEqual(try row(id).state, "failed")
        XCTAssertEqual(try row(id).error, "ended elsewhere")
    }

    /// Give back, then rescue: a lease that ran out is handed back by the rescuer, the
    /// holder that comes back afterwards finds it lost, and the row is claimable again.
    func testARescuedLeaseIsLostToItsOldHolderAndClaimableAgain() throws {
        let id = try SweepFixtures.delivery(c, state: "pending", leaseIn: nil)
        let lease = try XCTUnwrap(try claim(id, seconds: 60))
        try c.execute("UPDATE telegram_deliveries SET lease_until = now() - interval '1 second' WHERE id = $1", [id])
        let rescuer = LeaseRescuer(maxAttempts: 8, alertChat: nil)
        let step = try XCTUnwrap(rescuer.steps(of: .deliveries).first)
        XCTAssertEqual(try step.run(c, 10).rows, 1)
        let rescued = try row(id)
        XCTAssertEqual(rescued.state, "pending")
        XCTAssertNil(rescued.lease)
        XCTAssertEqual(try step.run(c, 10).rows, 0, "nothing left to rescue")

        XCTAssertFalse(try queue.renew(c, id: id, lease: lease, seconds: 600), "the old holder's renew finds the lease lost")
        XCTAssertEqual(try queue.write(c, id: id, lease: lease, set: "state = 'sent'", releasing: true), .lost)
        let again = try XCTUnwrap(try claim(id))
        XCTAssertNotEqual(again, lease, "a new claim gets a new token")
        XCTAssertEqual(try queue.write(c, id: id, lease: again, set: "state = 'pending'", releasing: true), .recorded,
                       "giving back under the lease")
        XCTAssertNil(try row(id).lease)
    }

    /// The rescue's guards: a live lease is its holder's, a terminal row is never touched,
    /// a refund keeps its state, and a row another transaction holds is skipped, not waited on.
    func testTheRescuerTouchesOnlyExpiredLeasesInLeasedStates() throws {
        let expired = try SweepFixtures.delivery(c, state: "sending", leaseIn: -1)
        let live = try SweepFixtures.delivery(c, state: "sending", leaseIn: 60)
        let sent = try SweepFixtures.delivery(c, state: "sent", leaseIn: -60)
        let payment = try JobFixtures.running(deps, telegramID: 6901, photos: 1).paymentID
        let requested = try SweepFixtures.refund(c, paymentID: payment, state: "requested", leaseIn: -1, runIn: 300)
        let refused = try SweepFixtures.refund(c, paymentID: payment, state: "failed", leaseIn: -60)
        let rescuer = LeaseRescuer(maxAttempts: 8, alertChat: nil)

        // A row locked by another transaction: SKIP LOCKED passes it over at once (without
        // it this statement would wait, and the lock timeout would throw).
        try c.execute("SET lock_timeout = '2s'")
        let other = try db.connect()
        let whileLocked = try other.withTransaction { tx -> Int in
            try tx.execute("SELECT 1 FROM telegram_deliveries WHERE id = $1 FOR UPDATE", [expired])
            return try rescuer.steps(of: .deliveries)[0].run(c, 10).rows
        }
        XCTAssertEqual(whileLocked, 0, "a row another transaction holds is skipped")

        XCTAssertEqual(try rescuer.steps(of: .deliveries)[0].run(c, 10).rows, 1)
        XCTAssertEqual(try row(expired).state, "pending")
        XCTAssertEqual(try row(live).state, "sending", "a live lease is its holder's")
        XCTAssertNotNil(try row(live).lease)
        XCTAssertEqual(try row(sent).state, "sent", "a terminal row is never touched")
        XCTAssertNotNil(try row(sent).lease, "not even its stale lease columns")

        XCTAssertEqual(try rescuer.steps(of: .refunds)[0].run(c, 10).rows, 1)
        let refunds = try c.query("""
            SELECT id, state, lease_token IS NULL AS free, run_at <= now() AS due FROM refunds WHERE id = ANY($1::bigint[]) ORDER BY id
            """, [[String(requested), String(refused)]]).map { ($0.requiredString("state"), $0.bool("free"), $0.bool("due")) }
        XCTAssertEqual(refunds.map(\.0), ["requested", "failed"], "a refund's state is the refund duty's; a failed one is untouched")
        XCTAssertEqual(refunds.map(\.1), [true, false])
        XCTAssertEqual(refunds.first?.2, true, "the rescued refund is due now (it was due in 300 s)")
    }

    /// The submit queue's two steps split on attempts: with attempts left back to `queued`,
    /// on the last one `failed`.
    func testSubmitsGoBackOrAreAbandonedByTheirAttempts() throws {
        let job = try JobFixtures.running(deps, telegramID: 6902, photos: 3)
        try SweepFixtures.submitting(c, taskID: job.tasks[0].id, leaseIn: -10, attempts: 2)
        try SweepFixtures.submitting(c, taskID: job.tasks[1].id, leaseIn: -5, attempts: 2)
        try SweepFixtures.submitting(c, taskID: job.tasks[2].id, leaseIn: -1, attempts: 3)
        let steps = LeaseRescuer(maxAttempts: 3, alertChat: nil).steps(of: .taskSubmits)
        XCTAssertEqual(steps.map(\.kind), [.submitsBack, .submitsAbandoned])
        let states = { try self.c.query("SELECT state FROM generation_tasks WHERE job_id = $1 ORDER BY prompt_index", [job.id])
            .map { $0.requiredString("state") } }
        XCTAssertEqual(try steps[0].run(c, 10).rows, 2)
        XCTAssertEqual(try states(), ["queued", "queued", "submitting"], "the last attempt is not put back")
        let abandoned = try steps[1].run(c, 10)
        XCTAssertEqual(abandoned.rows, 1)
        XCTAssertEqual(try states(), ["queued", "queued", "failed"])
        XCTAssertEqual(try c.query("SELECT fail_code FROM generation_tasks WHERE id = $1", [job.tasks[2].id])[0].string("fail_code"),
                       "submit_abandoned")
    }
}

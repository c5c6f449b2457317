import Postgres

/// The lease rescues of the delivery and refund queues. Their duties own the state
/// machines; a rescue only hands a row whose owner is presumed dead (its lease ran out)
/// back to the queue, so the next claim, by any worker, picks it up. Each is one guarded
/// statement: only rows still in the leased state with a lease in the past move, rows
/// another transaction holds are skipped, and nothing terminal is ever touched. A duty
/// that re-claims expired leases itself does the same thing, so whichever runs first,
/// the row is claimed once more and nothing else changes. The attempt was counted when
/// the row was claimed; the rescue does not count it again.
extension Sweeper {
    /// `sending` → `pending`, due now. The send's outcome is unknown (Telegram has no
    /// idempotency key): sending again may show that batch twice (the residual risk
    /// of docs/reliability.md#R9, one batch wide); not sending would lose it. `give_up_at` is left as
    /// it is: the deliver duty decides whether the row is still worth a try.
    public static func rescueDeliveryLeases(_ db: some Queryable, limit: Int) throws -> Int {
        try db.execute("""
            UPDATE telegram_deliveries d SET state = 'pending', lease_token = NULL, lease_until = NULL, run_at = now(),
                   last_error = 'lease ran out during the send; its outcome is unknown'
            WHERE d.id IN (SELECT id FROM telegram_deliveries
                           WHERE state = 'sending' AND lease_until < now()
                           ORDER BY lease_until LIMIT $1 FOR UPDATE SKIP LOCKED)
              AND d.state = 'sending' AND d.lease_until < now()
            """, [limit], retry: .idempotent)
    }

    /// The lease cleared and the refund due now; its state stays (`requested`: the Cancel
    /// may have reached the bank, so the refund duty asks `GetState` or repeats `Cancel`
    /// with the same `ExternalRequestId`, which the bank answers without refunding twice;
    /// `pending`: nothing was sent yet). The refund state machine is the refund duty's.
    public static func rescueRefundLeases(_ db: some Queryable, limit: Int) throws -> Int {
        try db.execute("""
            UPDATE refunds r SET lease_token = NULL, lease_until = NULL, run_at = now()
            WHERE r.id IN (SELECT id FROM refunds
                           WHERE state IN ('pending', 'requested') AND lease_until < now()
                           ORDER BY lease_until LIMIT $1 FOR UPDATE SKIP LOCKED)
              AND r.state IN ('pending', 'requested') AND r.lease_until < now()
            """, [limit], retry: .idempotent)
    }
}

import Postgres
import Platform

/// Expiry without a blind spot (review item 5): a payment past its RedirectDueDate may
/// still have been paid (the webhook lost, the payer finishing 3-D Secure at the last
/// second), so it is expired only after a last `GetState` says it was not.
extension Reconciler {
    /// Bank states of a payment nobody paid: created (`NEW`) or with the form open
    /// (`FORM_SHOWED`). Past the RedirectDueDate the bank no longer accepts the form, so such a
    /// payment is dead. Every other state (3DS_CHECKING, AUTHORIZING, CONFIRMING, an unknown
    /// one) means money may be on its way: the payment stays pending and is asked again.
    /// DEADLINE_EXPIRED, REJECTED, CONFIRMED… are the transition table's business.
    static let unpaidBankStatuses: Set<String> = ["NEW", "FORM_SHOWED"]

    /// Step 2 of a pass. Due payments the bank never heard of are expired at once; the others
    /// get a last look, and the bank's answer decides:
    ///
    /// - a status of the transition table is applied like a webhook (CONFIRMED → `succeeded`,
    ///   AUTHORIZED → `authorized`, DEADLINE_EXPIRED → `expired`, …);
    /// - `NEW`/`FORM_SHOWED`: expired by one guarded statement;
    /// - anything else, or no answer (a bank error, a terminal no longer configured): the
    ///   payment stays pending and is asked again after `recheckSeconds`.
    ///
    /// No grace period ends in a blind expiry: a payment the bank may still confirm stays
    /// pending however long the bank is unreachable. Holding it costs nothing (it cannot be
    /// consumed, and the payer sees it as not paid), whereas expiring a paid payment loses
    /// money; past `unansweredWarningSeconds` each failed look logs a warning for a person.
    func expireDuePayments(now: Double, deadline: Double, _ report: inout Report) throws {
        report.expired += try expireUnsentPayments(now: now)
        try forEachClaimed(limit: config.batchSize, deadline: deadline, &report, claim: {
            try claimNext("""
                status IN ('new', 'pending') AND tbank_payment_id IS NOT NULL AND redirect_due_at < to_timestamp($1)
                AND (last_checked_at IS NULL OR last_checked_at < to_timestamp($1) - make_interval(secs => $2))
                """, now: now, [config.recheckSeconds])
        }) { payment, report in
            guard let (state, outcome) = try askAndApply(payment, deadline: deadline, &report) else {
                report.keptPending += 1
                if payment.redirectDueAt < now - Double(config.unansweredWarningSeconds) {
                    log.warning("a payment past its due date still has no answer from the bank: kept pending, needs a look",
                                metadata: Trace.payment(deps, payment.id,
                                                        ["payment_id": "\(payment.id)", "due": "\(System.iso8601(payment.redirectDueAt))"]))
                }
                return
            }
            if outcome == .applied || BankTransition.forBankStatus(state.status) != nil { return }
            guard Self.unpaidBankStatuses.contains(state.status) else {
                report.keptPending += 1
                log.info("a due payment is still in progress at the bank: kept pending",
                         metadata: Trace.payment(deps, payment.id, ["payment_id": "\(payment.id)", "bank_status": "\(state.status)"]))
                return
            }
            if try expire(payment, bankStatus: state.status, now: now) {
                report.expired += 1
                log.info("payment expired", metadata: Trace.payment(deps, payment.id,
                                                                    ["payment_id": "\(payment.id)", "bank_status": "\(state.status)"]))
            }
        }
    }

    /// Expires one due payment the bank reported unpaid. Guarded (docs/reliability.md#R3): only from
    /// `new`/`pending`, so a CONFIRMED applied by the webhook since the look wins. Should the
    /// payer still pay after it, the late CONFIRMED revives the payment (expired → succeeded).
    func expire(_ payment: PaymentRecord, bankStatus: String, now: Double) throws -> Bool {
        try deps.db().execute("""
            UPDATE payments SET status = 'expired', bank_status = $2, updated_at = now()
            WHERE id = $1 AND status IN ('new', 'pending') AND redirect_due_at < to_timestamp($3)
            """, [payment.id, bankStatus, now]) == 1
    }

    /// Due payments whose Init never returned a bank id: nobody ever saw a payment link, so
    /// nobody can have paid. Should the bank know them after all, a notification finds them
    /// by OrderId and the transition table revives them.
    func expireUnsentPayments(now: Double) throws -> Int {
        try deps.db().execute("""
            UPDATE payments SET status = 'expired', updated_at = now()
            WHERE status = 'new' AND tbank_payment_id IS NULL AND redirect_due_at < to_timestamp($1)
            """, [now])
    }
}

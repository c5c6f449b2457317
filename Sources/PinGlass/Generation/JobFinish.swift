import Postgres

/// What finishing a job did.
public struct FinishedJob: Equatable, Sendable {
    public let jobID: Int
    public let outcome: JobOutcome
    /// Photos made.
    public let photos: Int
    public let total: Int
    /// Photos made but never delivered: those of a `failed` job not released before its end.
    public let withheld: Int
    /// The refund row's amount (kopecks); nil when nothing is refunded.
    public let refundKopecks: Int?
    /// Delivery rows created by the finish: the photo batches not already made while the
    /// job ran (`DeliveryBatches`), plus the final message.
    public let deliveries: Int
}

/// Ends a job once every task is terminal (docs/architecture.md#flow-finish). The ONE place that
/// finishes jobs: the poller calls it after each task it ends, the sweeper after it fails
/// tasks past their deadline. In one transaction it locks the job, moves it with a
/// compare-and-set to `completed`, `partial` or `failed` (`RefundRule`), and creates what
/// follows from that: the Telegram delivery rows for this job's photos still in no row
/// (none for a failed job: they are withheld), the final message and, when photos are
/// missing, the refund row. Finishing twice, or from two connections at once, changes
/// nothing the second time: the job lock serialises them and the CAS sees the job finished
/// (docs/reliability.md#R3).
///
/// ```swift
/// if let done = try JobFinish.finish(db, jobID: 42) { log.info("job \(done.jobID) \(done.outcome)") }
/// ```
public enum JobFinish {
    /// Finishes the job in its own transaction; nil when it is not finishable (a task is
    /// unfinished, or the job already ended or was canceled). `adminChatID` receives the
    /// alert of a refund cut below what the rule owes (nil: logged only).
    @discardableResult
    public static func finish(_ db: Connection, jobID: Int, rule: RefundRule = .standard,
                              adminChatID: Int64? = nil) throws -> FinishedJob? {
        try db.withTransaction { tx in try finish(tx, jobID: jobID, rule: rule, adminChatID: adminChatID) }
    }

    /// The same inside the caller's transaction (the sweeper fails tasks and finishes the
    /// job in one). The notifications go out when that transaction commits.
    @discardableResult
    public static func finish(_ tx: Transaction, jobID: Int, rule: RefundRule = .standard,
                              adminChatID: Int64? = nil) throws -> FinishedJob? {
        // The lock serialises finishers of this job (and pollers batching its photos):
        // whoever comes second sees it ended.
        guard let job = try tx.query("""
            SELECT j.total_photos, j.payment_id, u.telegram_user_id
            FROM generation_jobs j JOIN users u ON u.id = j.user_id
            WHERE j.id = $1 AND j.status IN ('queued', 'processing')
            \(DeliveryBatches.jobLock)
            """, [jobID]).first else { return nil }
        let unfinished = try tx.query("""
            SELECT count(*)::int AS n FROM generation_tasks WHERE job_id = $1 AND state IN ('queued', 'submitting', 'running')
            """, [jobID])[0].requiredInt("n")
        guard unfinished == 0 else { return nil }

        let total = job.requiredInt("total_photos")
        let made = try tx.query("""
            SELECT count(*)::int AS n, count(*) FILTER (WHERE released_at IS NOT NULL)::int AS released
            FROM generated_photos WHERE job_id = $1
            """, [jobID])[0]
        let photos = made.requiredInt("n"), released = made.requiredInt("released")
        let outcome = rule.outcome(photos: photos, total: total)
        let delivered = rule.delivered(photos: photos, released: released, total: total)
        // The compare-and-set (docs/reliability.md#I3: a job ends once); under the lock it always moves.
        // finished_at is the statement's time, taken under the lock, so it comes after every
        // release committed before (a sweep's transaction may have begun before a poller's
        // batch; its now() would then put the end before that release).
        guard try tx.execute("""
            UPDATE generation_jobs SET status = $2, succeeded = $3, failed = $4, finished_at = clock_timestamp(), updated_at = now()
            WHERE id = $1 AND status IN ('queued', 'processing')
            """, [jobID, outcome.rawValue, photos, max(0, total - photos)]) == 1 else { return nil }

        let refund = try createRefund(tx, jobID: jobID, paymentID: job.requiredInt("payment_id"), photos: photos,
                                      released: released, total: total, rule: rule, adminChatID: adminChatID)
        let deliveries = try DeliveryBatches.addRemainder(
            tx, jobID: jobID, chatID: job.requiredInt("telegram_user_id"), releasing: outcome != .failed, message: [
                "jobId": .int(jobID), "outcome": .string(outcome.rawValue), "photoCount": .int(photos),
                "released": .int(delivered), "total": .int(total), "refundKopecks": .int(refund ?? 0)])
        try tx.execute("SELECT pg_notify('deliver', $1)", [String(jobID)])
        if refund != nil {
            try tx.execute("SELECT pg_notify('refund', $1)", [String(jobID)])
            try alertRepeatedRefunds(tx, jobID: jobID, adminChatID: adminChatID)
        }
        return FinishedJob(jobID: jobID, outcome: outcome, photos: photos, total: total, withheld: photos - delivered,
                           refundKopecks: refund, deliveries: deliveries)
    }

    /// What finishing one job came to, when one job's failure must not stop the others.
    public enum Isolated: Equatable, Sendable {
        case finished(FinishedJob)
        /// A task is unfinished, or the job already ended or was canceled.
        case notFinishable
        /// Its finish threw: rolled back, alerted, left for the next pass (`isolate`).
        case failed
    }

    /// `finish` inside the caller's transaction, in a savepoint: a finish that fails for
    /// this job alone is undone alone, and the caller's other work commits (`isolate`).
    public static func finishIsolated(_ tx: Transaction, jobID: Int, alertChat: Int64?,
                                      rule: RefundRule = .standard) throws -> Isolated {
        do {
            return try tx.withSavepoint { try finish($0, jobID: jobID, rule: rule, adminChatID: alertChat) }.map(Isolated.finished) ?? .notFinishable
        } catch {
            try isolate(error, jobID: jobID, tx, alertChat: alertChat)
            return .failed
        }
    }

    /// `finish` in its own transaction; a finish that fails for this job alone is reported
    /// (`isolate`) instead of thrown.
    public static func finishIsolated(_ db: Connection, jobID: Int, alertChat: Int64?,
                                      rule: RefundRule = .standard) throws -> Isolated {
        do {
            return try finish(db, jobID: jobID, rule: rule, adminChatID: alertChat).map(Isolated.finished) ?? .notFinishable
        } catch {
            try isolate(error, jobID: jobID, db, alertChat: alertChat)
            return .failed
        }
    }

    /// The ONE rule for a job whose finish throws (a conflict, a trigger's refusal, bad
    /// data): it must not block the other jobs of a sweep or a poll pass, pass after pass.
    /// It is logged, counted (`jobs.finish_failed`) and alerted (`job-finish-failed:<id>`,
    /// once an hour), and stays unfinished, its tasks terminal: the stranded step tries it
    /// again on every pass, so it finishes once the cause is fixed. Rethrown instead: an
    /// unavailable database (every other job would fail the same way) and a serialization
    /// failure (the transaction's own retry is the remedy).
    static func isolate(_ error: Error, jobID: Int, _ db: some Queryable, alertChat: Int64?) throws {
        if let pg = error as? PostgresError {
            if pg.isUnavailable { throw error }
            if case .serializationFailure = pg { throw error }
        }
        try Counters.increment(db, "jobs.finish_failed")
        try Alerts.raise(db, chatID: alertChat, key: "job-finish-failed:\(jobID)",
                         text: "Job \(jobID) could not be finished (no delivery or refund rows yet); retried every sweep: \(error)")
    }

    /// What one `finishStranded` call did.
    public struct StrandedBatch: Equatable, Sendable {
        public var finished: [FinishedJob] = []
        /// Jobs whose finish failed (`isolate`): alerted, tried again next pass.
        public var failed: [Int] = []
        /// Jobs looked at: a full batch (`limit`) means there may be more after `lastJobID`.
        public var examined = 0
        /// The highest job id looked at: the next batch of the same pass starts after it, so
        /// jobs that keep failing never hide the ones behind them.
        public var lastJobID = 0
    }

    /// Finishes up to `limit` active jobs with ids above `after` whose tasks are all terminal
    /// but which nobody finished (a poller killed between its commit and its finish, or a
    /// finish that failed before), each in its own transaction, isolated.
    public static func finishStranded(_ db: Connection, limit: Int, after: Int = 0, alertChat: Int64?,
                                      rule: RefundRule = .standard) throws -> StrandedBatch {
        let ids = try db.query("""
            SELECT j.id FROM generation_jobs j
            WHERE j.status IN ('queued', 'processing') AND j.id > $2
              AND NOT EXISTS (SELECT 1 FROM generation_tasks t
                              WHERE t.job_id = j.id AND t.state IN ('queued', 'submitting', 'running'))
            ORDER BY j.id LIMIT $1
            """, [limit, after], retry: .idempotent).map { $0.requiredInt("id") }
        var batch = StrandedBatch(examined: ids.count, lastJobID: ids.last ?? after)
        for id in ids {
            switch try finishIsolated(db, jobID: id, alertChat: alertChat, rule: rule) {
            case .finished(let done): batch.finished.append(done)
            case .failed: batch.failed.append(id)
            case .notFinishable: break
            }
        }
        return batch
    }

    /// The refund row when photos are missing (docs/reliability.md#I2: exactly one per job, `job_id`
    /// unique, and never beyond what was paid). The amount is kopecks from the payment's own
    /// amount by `rule` (the share of the photos the customer does not get), cut to what the
    /// payment can still give back (`refund_headroom`, migration 0009: what the bank already
    /// refunded, also in its dashboard, and our refunds in flight are taken off); the
    /// trigger on refunds checks the same limit. A cut below
    /// what the rule owes (an operator's refund done or in flight, a refund in the bank's
    /// dashboard) raises an alert per job, logged too: a person checks that the customer
    /// got everything owed. nil when nothing is to be refunded.
    static func createRefund(_ tx: Transaction, jobID: Int, paymentID: Int, photos: Int, released: Int, total: Int,
                             rule: RefundRule, adminChatID: Int64?) throws -> Int? {
        guard photos < total else { return nil }
        // Locked first, in its own statement: the headroom read next then sees whatever a
        // refund inserted meanwhile committed (the trigger takes the same lock).
        let paid = try tx.query("SELECT amount_kopecks FROM payments WHERE id = $1 FOR UPDATE", [paymentID])[0].requiredInt("amount_kopecks")
        let headroom = try tx.query("SELECT refund_headroom($1) AS left", [paymentID])[0].int("left") ?? 0
        let owed = rule.refund(amount: Money(kopecks: paid), photos: photos, released: released, total: total).kopecks
        let amount = max(0, min(owed, headroom))
        if amount < owed {
            try Alerts.raise(tx, chatID: adminChatID, key: "refund-cut:job:\(jobID)", text: """
                Job \(jobID) owes \(Money(kopecks: owed)) back by the refund rule, but payment \(paymentID) can only refund \
                \(Money(kopecks: amount)) more (refunds done or in flight take the rest): its refund is \
                \(amount > 0 ? "cut to \(Money(kopecks: amount))" : "not made"). Check that the customer got everything owed.
                """)
        }
        guard amount > 0 else { return nil }
        let delivered = rule.delivered(photos: photos, released: released, total: total)
        let reason = switch rule.outcome(photos: photos, total: total) {
        case .failed where photos == 0: "generation failed: no photo of \(total)"
        case .failed: "generation failed: \(photos) of \(total) photos made, below the threshold; "
            + "\(delivered) delivered before the end, \(photos - delivered) withheld, \(total - delivered) refunded"
        default: "generation partial: \(total - photos) of \(total) photos missing"
        }
        let inserted = try tx.execute("""
            INSERT INTO refunds (payment_id, job_id, amount_kopecks, reason, requested_by)
            VALUES ($1, $2, $3, $4, 'system') ON CONFLICT (job_id) DO NOTHING
            """, [paymentID, jobID, amount, reason])
        return inserted == 1 ? amount : nil
    }

    /// How many refunded jobs of one user within `repeatedRefundDays` days make the operator
    /// look at that user (jobs failed on purpose, or references the generation keeps failing on).
    public static let repeatedRefundJobs = 3
    public static let repeatedRefundDays = 7

    /// After a refund row: when the job's user has `repeatedRefundJobs` or more refunded
    /// jobs in the last `repeatedRefundDays` days (this one included), the operator is
    /// alerted, once a day per user (`Alerts.raise` with a daily key).
    static func alertRepeatedRefunds(_ tx: Transaction, jobID: Int, adminChatID: Int64?) throws {
        let r = try tx.query("""
            SELECT j.user_id, u.telegram_user_id,
                   (SELECT count(*)::int FROM generation_jobs k JOIN refunds f ON f.job_id = k.id
                    WHERE k.user_id = j.user_id AND f.created_at > now() - make_interval(days => $2)) AS refunded
            FROM generation_jobs j JOIN users u ON u.id = j.user_id WHERE j.id = $1
            """, [jobID, repeatedRefundDays])[0]
        let refunded = r.requiredInt("refunded")
        guard refunded >= repeatedRefundJobs else { return }
        try Alerts.raise(tx, chatID: adminChatID, key: "repeated-refunds:user:\(r.requiredInt("user_id"))", once: .perDay, text: """
            User \(r.requiredInt("user_id")) (Telegram \(r.requiredInt("telegram_user_id"))) has \(refunded) refunded jobs in \
            \(repeatedRefundDays) days, the latest job \(jobID): check for abuse or a generation problem with their references.
            """)
    }
}

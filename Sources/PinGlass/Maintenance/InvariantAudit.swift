import Postgres

/// `pinglass audit`: the invariants of the money and the queue checked on a live database,
/// each as one read-only query that returns the offending ids. Cheap enough for an hourly cron
/// line; a violation alerts the admin chat (`alert`), and the command exits non-zero so cron
/// mail (or a monitor) sees it too.
///
/// ```swift
/// let violations = try InvariantAudit.run(db)
/// for v in violations { print(v.rule, v.ids) }
/// ```
public enum InvariantAudit {
    public struct Violation: Equatable, Sendable {
        /// What should hold.
        public let rule: String
        /// The rows that break it (payment, job, task, … ids as the rule says).
        public let ids: [Int]

        /// The rule in a few words for alert keys: "a-succeeded-task-has-its-photo".
        public var key: String {
            let words = rule.prefix { $0 != "(" }.lowercased().split { !($0.isLetter || $0.isNumber) }
            return words.joined(separator: "-")
        }
    }

    /// A rule and the query returning the ids (column `id`) that break it.
    static let rules: [(String, String)] = [
        ("every job consumes exactly its own payment (job ids)", """
            SELECT j.id FROM generation_jobs j JOIN payments p ON p.id = j.payment_id
            WHERE p.consumed_by_job IS DISTINCT FROM j.id
            """),
        ("a consumed payment has a job (payment ids)", """
            SELECT p.id FROM payments p LEFT JOIN generation_jobs j ON j.id = p.consumed_by_job
            WHERE p.consumed_by_job IS NOT NULL AND j.id IS NULL
            """),
        ("a job's payment was paid (job ids)", """
            SELECT j.id FROM generation_jobs j JOIN payments p ON p.id = j.payment_id
            WHERE p.status NOT IN ('succeeded', 'partially_refunded', 'refunded')
            """),
        ("refunds never exceed the payment (payment ids)", """
            SELECT p.id FROM payments p JOIN refunds r ON r.payment_id = p.id AND r.state <> 'failed'
            GROUP BY p.id, p.amount_kopecks HAVING sum(r.amount_kopecks) > p.amount_kopecks
            """),
        ("our succeeded refunds are within what the bank reports refunded (payment ids)", """
            SELECT p.id FROM payments p JOIN refunds r ON r.payment_id = p.id AND r.state = 'succeeded'
            GROUP BY p.id, p.refunded_kopecks HAVING sum(r.amount_kopecks) > p.refunded_kopecks
            """),
        ("a payment with money given back is marked (partially) refunded (payment ids)", """
            SELECT p.id FROM payments p WHERE p.refunded_kopecks > 0 AND p.status NOT IN ('partially_refunded', 'refunded')
            """),
        ("a finished job with missing photos has its refund row (job ids)", """
            SELECT j.id FROM generation_jobs j JOIN payments p ON p.id = j.payment_id
            WHERE j.status IN ('partial', 'failed') AND p.refunded_kopecks < p.amount_kopecks
              AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.job_id = j.id)
            """),
        // The customer never both keeps a photo and gets its price back (`RefundRule`). Jobs
        // that ended before migration 0013 are left out: until then a job below the
        // threshold sent its photos and refunded everything.
        ("a job's refund is at most the share of the photos its customer does not get (job ids)", """
            SELECT j.id FROM generation_jobs j JOIN payments p ON p.id = j.payment_id
            JOIN refunds r ON r.job_id = j.id AND r.state <> 'failed'
            WHERE j.finished_at >= coalesce((SELECT applied_at FROM schema_migrations WHERE version = '0013'), '-infinity')
              AND r.amount_kopecks::bigint * j.total_photos > p.amount_kopecks::bigint
                  * (j.total_photos - (SELECT count(*) FROM generated_photos g WHERE g.job_id = j.id AND g.released_at IS NOT NULL))
            """),
        ("a failed job released no photo at or after its end (photo ids)", """
            SELECT g.id FROM generated_photos g JOIN generation_jobs j ON j.id = g.job_id
            WHERE j.status = 'failed' AND g.released_at >= j.finished_at
            """),
        ("a completed job has no refund row (job ids)", """
            SELECT j.id FROM generation_jobs j JOIN refunds r ON r.job_id = j.id WHERE j.status = 'completed'
            """),
        ("a finished job's counts match its tasks and photos (job ids)", """
            SELECT j.id FROM generation_jobs j
            WHERE j.status IN ('completed', 'partial', 'failed')
              AND (j.succeeded <> (SELECT count(*) FROM generated_photos g WHERE g.job_id = j.id)
                   OR j.succeeded + j.failed <> j.total_photos
                   OR EXISTS (SELECT 1 FROM generation_tasks t WHERE t.job_id = j.id AND t.state NOT IN ('succeeded', 'failed')))
            """),
        // Within the shortest delivery retention: `pinglass prune` deletes older delivery rows.
        ("a finished job with photos has its delivery rows (job ids)", """
            SELECT j.id FROM generation_jobs j
            WHERE j.status IN ('completed', 'partial') AND j.finished_at > now() - interval '\(PrunerDefaults.minimumDeliveryDays) days'
              AND NOT EXISTS (SELECT 1 FROM telegram_deliveries d WHERE d.job_id = j.id)
            """),
        ("every photo of a finished job is in one of its delivery rows (photo ids)", """
            SELECT p.id FROM generated_photos p JOIN generation_jobs j ON j.id = p.job_id
            WHERE j.status IN ('completed', 'partial') AND p.delivery_id IS NULL
              AND EXISTS (SELECT 1 FROM telegram_deliveries d WHERE d.job_id = j.id AND d.kind = 'message')
            """),
        ("a job whose tasks have all ended is finished (job ids)", """
            SELECT j.id FROM generation_jobs j
            WHERE j.status IN ('queued', 'processing') AND j.updated_at < now() - interval '10 minutes'
              AND NOT EXISTS (SELECT 1 FROM generation_tasks t WHERE t.job_id = j.id AND t.state NOT IN ('succeeded', 'failed'))
            """),
        ("a succeeded task has its photo (task ids)", """
            SELECT t.id FROM generation_tasks t
            WHERE t.state = 'succeeded' AND NOT EXISTS (SELECT 1 FROM generated_photos g WHERE g.task_id = t.id)
            """),
        // A removal marks a photo only with its deliveries locked and none of them waiting
        // (`MediaRemoval`), and a re-queue refuses removed photos (`DeliveryRequeue`): a
        // delivery that waits for a removed photo would fail "stored photo missing".
        ("a waiting delivery's photos are still stored (delivery ids)", """
            SELECT DISTINCT d.id FROM telegram_deliveries d JOIN generated_photos g ON g.delivery_id = d.id
            WHERE d.state IN ('pending', 'sending') AND g.media_removed_at IS NOT NULL
            """),
        ("no submit lease expired long ago is left behind (task ids)", """
            SELECT t.id FROM generation_tasks t WHERE t.state = 'submitting' AND t.lease_until < now() - interval '10 minutes'
            """),
        ("no delivery or refund lease expired long ago is left behind (delivery ids, then refund ids)", """
            SELECT d.id FROM telegram_deliveries d WHERE d.state = 'sending' AND d.lease_until < now() - interval '10 minutes'
            UNION ALL
            SELECT r.id FROM refunds r WHERE r.state = 'requested' AND r.lease_until < now() - interval '10 minutes'
            """),
    ]

    /// Every violation found (empty: the database keeps every invariant checked here).
    public static func run(_ db: some Queryable) throws -> [Violation] {
        try rules.compactMap { rule, sql in
            let ids = try db.query(sql + " LIMIT 1000", retry: .idempotent).map { $0.requiredInt("id") }
            return ids.isEmpty ? nil : Violation(rule: rule, ids: ids)
        }
    }

    /// Tells the operator about each broken rule: an alert to the admin chat per rule, at most
    /// once per rule and hour (`Alerts`' key `audit:<rule>`), so an hourly audit that keeps
    /// finding the same rows repeats itself hourly, never more. Returns how many alerts were new.
    @discardableResult
    public static func alert(_ db: some Queryable, chatID: Int64?, violations: [Violation]) throws -> Int {
        try violations.reduce(0) { count, v in
            let shown = v.ids.prefix(20).map(String.init).joined(separator: ", ")
            let more = v.ids.count > 20 ? " and \(v.ids.count - 20) more" : ""
            let raised = try Alerts.raise(db, chatID: chatID, key: "audit:" + v.key,
                                          text: "pinglass audit: broken rule \"\(v.rule)\": \(shown)\(more)")
            return count + (raised ? 1 : 0)
        }
    }

    /// How many rules there are (for the summary line).
    public static var ruleCount: Int { rules.count }
}

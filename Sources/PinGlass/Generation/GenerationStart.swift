import Postgres

/// Why a generation did not start (`Web/` maps these to answers).
public enum GenerationError: Error, Equatable, CustomStringConvertible {
    case avatarNotFound
    case noReferenceImages
    case unknownStyle(String)
    /// No succeeded payment of this user may be used (none, or a test payment in production).
    case paymentRequired(String)
    /// The user's succeeded payments are all consumed already.
    case paymentConsumed
    case tooManyActiveJobs(Int)
    /// Generate calls come at most once per `GenerationStart.minInterval`.
    case tooSoon(retryAfter: Int)
    case jobNotFound

    public var description: String {
        switch self {
        case .avatarNotFound: return "avatar not found"
        case .noReferenceImages: return "upload at least one reference photo before generating"
        case .unknownStyle(let id): return "unknown style '\(id)'"
        case .paymentRequired(let why): return why
        case .paymentConsumed: return "this payment has already been used for a generation; buy another set"
        case .tooManyActiveJobs(let n): return "at most \(n) generations at a time; wait for one to finish"
        case .tooSoon(let s): return "one generation per minute; try again in \(s) s"
        case .jobNotFound: return "job not found"
        }
    }
}

/// A queued generation as `POST /api/generate` answers it.
public struct StartedJob: Equatable, Sendable {
    public let jobID: Int
    public let totalPhotos: Int
}

/// `POST /api/generate` in ONE transaction (docs/architecture.md#flow-generate): consume one
/// succeeded, unconsumed payment of the user with a guarded UPDATE, insert the job with the
/// PAYMENT's photo count and one task per photo, notify `dispatch`, commit. Two concurrent
/// calls with one payment make exactly one job: the user row is locked first, and the
/// consume is `… WHERE consumed_by_job IS NULL` whose row count decides.
///
/// ```swift
/// let job = try GenerationStart(deps: deps).start(user: user, avatarID: 7, styleID: "pinglass", paymentBankID: nil)
/// ```
public struct GenerationStart {
    public static let maxActiveJobs = 3
    public static let minIntervalSeconds = 60

    let deps: Dependencies

    public init(deps: Dependencies) { self.deps = deps }

    /// `requestID` (the HTTP request's) is kept on the job for the duties' log lines.
    public func start(user: AuthenticatedUser, avatarID: Int, styleID: String, paymentBankID: String?,
                      requestID: String? = nil) throws -> StartedJob {
        let db = try deps.db()
        return try db.withTransaction { tx in
            // One generate at a time per user: the limits and the consume below see a stable state.
            try tx.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", [user.id])
            // The terminal mode decides whether a test payment may be consumed: read here, with
            // the setting's row share-locked until commit, so an admin's switch either committed
            // before (and is seen) or waits for this generate; never a mode read before a switch
            // deciding a consume after it.
            let mode = try PaymentSettings.terminalMode(tx, lock: true)
            let allowTest = PaymentEligibility.allowsTestPayments(mode: mode, telegramID: user.telegramID, config: deps.config)
            guard try tx.query("SELECT 1 FROM avatars WHERE id = $1 AND user_id = $2 AND status <> 'deleted' FOR UPDATE",
                               [avatarID, user.id]).first != nil else { throw GenerationError.avatarNotFound }
            // The id itself, else the style the original client's id stands for.
            guard let style = try tx.query("""
                SELECT id FROM styles WHERE active AND id IN ($1, $2) ORDER BY id = $1 DESC LIMIT 1
                """, [styleID, Catalogue.aliasedStyleID(styleID)]).first?.requiredString("id") else {
                throw GenerationError.unknownStyle(styleID)
            }
            let refs = try tx.query("SELECT count(*)::int AS n FROM reference_photos WHERE avatar_id = $1", [avatarID])[0]
            guard refs.requiredInt("n") > 0 else { throw GenerationError.noReferenceImages }

            let jobID = try tx.query("SELECT nextval('generation_jobs_id_seq')::bigint AS id")[0].requiredInt("id")
            // The user's candidate payments locked first, in their own statement: the refund
            // check of the consume below then sees every refund committed before, and none
            // can be added until this commits (the refunds trigger takes the same lock).
            try tx.execute("""
                SELECT 1 FROM payments WHERE user_id = $1 AND status = 'succeeded' AND consumed_by_job IS NULL FOR UPDATE
                """, [user.id])
            // The consume: only a succeeded, unconsumed payment of this user (a trigger refuses
            // anything else too) that no refund has touched (`PaymentEligibility`); its row
            // count decides (docs/reliability.md#R3).
            guard let payment = try tx.query("""
                UPDATE payments SET consumed_by_job = $1, updated_at = now()
                WHERE id = (SELECT id FROM payments
                            WHERE user_id = $2 AND status = 'succeeded' AND consumed_by_job IS NULL
                              AND (terminal = 'production' OR $3) AND ($4::text IS NULL OR tbank_payment_id = $4)
                              AND \(PaymentEligibility.untouchedByRefunds)
                            ORDER BY created_at, id LIMIT 1 FOR UPDATE)
                  AND consumed_by_job IS NULL
                RETURNING id, photo_count
                """, [jobID, user.id, allowTest, paymentBankID]).first else {
                throw try whyNoPayment(tx, userID: user.id, bankID: paymentBankID, allowTest: allowTest)
            }
            // The limits after the consume: a user with no usable payment hears that first, and
            // a refusal here rolls the consume back with everything else.
            try checkLimits(tx, userID: user.id)
            let photos = payment.requiredInt("photo_count")
            try tx.execute("""
                INSERT INTO generation_jobs (id, user_id, avatar_id, payment_id, style_id, total_photos, deadline_at, request_id)
                VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7), left($8, 64))
                """, [jobID, user.id, avatarID, payment.requiredInt("id"), style, photos, GenerationPolicy().jobDeadlineSeconds, requestID])
            try insertTasks(tx, jobID: jobID, avatarID: avatarID, styleID: style, count: photos)
            try tx.execute("SELECT pg_notify('dispatch', $1)", [String(jobID)])
            Crashpoint.hit("generate.before-commit")
            return StartedJob(jobID: jobID, totalPhotos: photos)
        }
    }

    func checkLimits(_ tx: Transaction, userID: Int) throws {
        let r = try tx.query("""
            SELECT count(*) FILTER (WHERE status IN ('queued', 'processing'))::int AS active,
                   ceil(extract(epoch FROM max(created_at) + make_interval(secs => $2) - now()))::int AS wait
            FROM generation_jobs WHERE user_id = $1
            """, [userID, Self.minIntervalSeconds])[0]
        if let wait = r.int("wait"), wait > 0 { throw GenerationError.tooSoon(retryAfter: wait) }
        if r.requiredInt("active") >= Self.maxActiveJobs { throw GenerationError.tooManyActiveJobs(Self.maxActiveJobs) }
    }

    /// One task per photo with the style's prompts, never reusing a prompt already used for
    /// this avatar while unused ones remain (then the least used, in order).
    func insertTasks(_ tx: Transaction, jobID: Int, avatarID: Int, styleID: String, count: Int) throws {
        let inserted = try tx.execute("""
            WITH ranked AS (
                SELECT p.id, p.text, row_number() OVER (ORDER BY uses.n, p.position) - 1 AS rank
                FROM prompts p
                CROSS JOIN LATERAL (SELECT count(*) AS n FROM generation_tasks t JOIN generation_jobs j ON j.id = t.job_id
                                    WHERE j.avatar_id = $2 AND t.prompt_id = p.id) uses
                WHERE p.style_id = $3
            ), total AS (SELECT count(*) AS n FROM ranked)
            INSERT INTO generation_tasks (job_id, prompt_index, prompt_id, prompt_text)
            SELECT $1, i, r.id, r.text
            FROM generate_series(0, $4 - 1) AS i, total, ranked r
            WHERE total.n > 0 AND r.rank = i % total.n
            """, [jobID, avatarID, styleID, count])
        guard inserted == count else { throw GenerationError.unknownStyle(styleID) }
    }

    /// Tells "never paid" from "already used" (and a test payment in production, and one
    /// being refunded).
    func whyNoPayment(_ tx: Transaction, userID: Int, bankID: String?, allowTest: Bool) throws -> GenerationError {
        let r = try tx.query("""
            SELECT count(*) FILTER (WHERE consumed_by_job IS NOT NULL)::int AS consumed,
                   count(*) FILTER (WHERE consumed_by_job IS NULL AND terminal = 'test')::int AS test_only,
                   count(*) FILTER (WHERE consumed_by_job IS NULL AND NOT \(PaymentEligibility.untouchedByRefunds))::int AS refunding
            FROM payments WHERE user_id = $1 AND status = 'succeeded' AND ($2::text IS NULL OR tbank_payment_id = $2)
            """, [userID, bankID])[0]
        if !allowTest && r.requiredInt("test_only") > 0 {
            return .paymentRequired("test payments cannot be used here (the production terminal is in force, or this is a public install)")
        }
        // Answered as "no usable payment": PAYMENT_REQUIRED (docs/http-api.md), not PAYMENT_CONSUMED.
        if r.requiredInt("refunding") > 0 { return .paymentRequired("this payment is being refunded; it cannot start a generation") }
        if r.requiredInt("consumed") > 0 { return .paymentConsumed }
        return .paymentRequired(bankID == nil ? "pay for a photo set first" : "no such paid payment")
    }
}

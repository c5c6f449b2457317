import XCTest
import HTTPCore
import Postgres
import PinGlassTesting
@testable import PinGlass
@testable import PinGlassWeb

/// `GET /metrics` in-process over a database holding rows in known states: every database
/// series has its exact value.
final class MetricsEndpointTests: DatabaseTestCase {
    var app: InProcessApp!
    var c: Connection!
    override func setUpWithError() throws {
        try super.setUpWithError()
        app = try InProcessApp(database: db)
        c = try db.connect()
    }

    /// The database's clock now (the ages are measured against it).
    func dbNow() throws -> Double { try XCTUnwrap(c.query("SELECT extract(epoch FROM clock_timestamp())::float8 AS t")[0].double("t")) }

    func payment(_ user: Int, _ status: String, refunded: Int = 0) throws -> Int {
        try c.query("""
            INSERT INTO payments (user_id, order_id, terminal, terminal_key, tbank_payment_id, tier, photo_count, amount_kopecks,
                                  status, refunded_kopecks, redirect_due_at)
            VALUES ($1, 'm' || md5(random()::text), 'test', 'k', md5(random()::text), 'starter', 7, 49900, $2, $3, now())
            RETURNING id
            """, [user, status, refunded])[0].requiredInt("id")
    }

    func testEveryDatabaseSeriesHasItsExactValue() throws {
        db.auditOnDrop = false   // rows in every state, written directly: counted, not consistent stories
        let t0 = try dbNow()
        let user = try c.query("INSERT INTO users (telegram_user_id) VALUES (9001) RETURNING id")[0].requiredInt("id")
        let avatar = try c.query("INSERT INTO avatars (user_id, name) VALUES ($1, 'a') RETURNING id", [user])[0].requiredInt("id")
        let (p1, p2) = (try payment(user, "succeeded"), try payment(user, "succeeded"))
        _ = try payment(user, "pending")
        _ = try payment(user, "canceled")
        let p5 = try payment(user, "partially_refunded", refunded: 3500)
        func job(_ paymentID: Int, _ status: String) throws -> Int {
            try c.query("""
                INSERT INTO generation_jobs (user_id, avatar_id, payment_id, style_id, total_photos, status, deadline_at, finished_at)
                VALUES ($1, $2, $3, 'pinglass', 7, $4, now() + interval '1 hour',
                        CASE WHEN $4 IN ('completed', 'partial', 'failed', 'canceled') THEN now() END)
                RETURNING id
                """, [user, avatar, paymentID, status])[0].requiredInt("id")
        }
        let j1 = try job(p1, "processing"), j2 = try job(p2, "completed")

        // Tasks: 3 queued (the oldest due 100 s ago, two waiting out a backoff), 2 running
        // (submitted 50 s and 20 s ago), 1 succeeded, 1 failed, none submitting.
        func task(_ index: Int, _ state: String, runAt: Double, submittedAt: Double? = nil) throws {
            try c.execute("""
                INSERT INTO generation_tasks (job_id, prompt_index, prompt_text, state, kie_task_id, run_at, submitted_at, finished_at)
                VALUES ($1, $2, 'p', $3, $6, to_timestamp($4::float8),
                        to_timestamp($5::float8), CASE WHEN $3 IN ('succeeded', 'failed') THEN now() END)
                """, [j1, index, state, runAt, submittedAt, state == "running" ? "kie-\(index)" : nil])
        }
        try task(0, "queued", runAt: t0 - 100)
        try task(1, "queued", runAt: t0 + 3600)
        try task(2, "queued", runAt: t0 + 3600)
        try task(3, "running", runAt: t0 + 10, submittedAt: t0 - 50)
        try task(4, "running", runAt: t0 + 10, submittedAt: t0 - 20)
        try task(5, "succeeded", runAt: t0 - 500, submittedAt: t0 - 400)
        try task(6, "failed", runAt: t0 - 500, submittedAt: t0 - 400)

        // Deliveries: 2 pending (created 200 s and 10 s ago), 1 sent, 1 failed.
        func delivery(_ batch: Int?, _ state: String, createdAt: Double) throws {
            try c.execute("""
                INSERT INTO telegram_deliveries (job_id, chat_id, kind, batch_no, payload, state, give_up_at, created_at, sent_at)
                VALUES ($1, 42, 'album', $2, '{}', $3, now() + interval '1 day', to_timestamp($4::float8),
                        CASE WHEN $3 = 'sent' THEN now() END)
                """, [batch == nil ? nil : j2, batch ?? 0, state, createdAt])
        }
        try delivery(0, "pending", createdAt: t0 - 200)
        try delivery(1, "pending", createdAt: t0 - 10)
        try delivery(2, "sent", createdAt: t0 - 900)
        try delivery(nil, "failed", createdAt: t0 - 900)

        // Refunds: 1 pending (created 300 s ago), 2 succeeded (1000 + 2500 kopecks), 1 failed.
        func refund(_ state: String, _ amount: Int, createdAt: Double) throws {
            try c.execute("""
                INSERT INTO refunds (payment_id, amount_kopecks, reason, requested_by, state, created_at, finished_at,
                                     bank_original_kopecks, bank_remaining_kopecks)
                VALUES ($1, $2, 'test', 'test', $3, to_timestamp($4::float8), CASE WHEN $3 IN ('succeeded', 'failed') THEN now() END,
                        CASE WHEN $3 = 'succeeded' THEN 49900 END, CASE WHEN $3 = 'succeeded' THEN 49900 - $2::int END)
                """, [p5, amount, state, createdAt])
        }
        try refund("pending", 700, createdAt: t0 - 300)
        try refund("succeeded", 1000, createdAt: t0 - 900)
        try refund("succeeded", 2500, createdAt: t0 - 900)
        try refund("failed", 900, createdAt: t0 - 900)

        for (name, value) in [("kie.rate_limited", 3), ("kie.poll_rate_limited", 2), ("storage.upload_failures", 4),
                              ("telegram.blocked", 5), ("telegram.server_errors", 6), ("telegram.sent", 7), ("odd \"name\"\\with\nnewline", 1)] {
            try Counters.increment(c, name, by: value)
        }
        try c.execute("""
            INSERT INTO worker_runs (name, host, started_at, finished_at, ok) VALUES
                ('poll-kie', 'vm-1', to_timestamp(1700000000), to_timestamp(1700000005.25), true),
                ('poll-kie', 'vm-2', to_timestamp(1700000100), to_timestamp(1700000101), false),
                ('deliver', 'vm-1', to_timestamp(1700000200), NULL, NULL)
            """)

        let res = try app.client.get("/metrics")
        let t1 = try dbNow()
        XCTAssertEqual(res.status, 200)
        XCTAssertEqual(res.header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8")
        let scrape = PrometheusScrape(res.text)
        XCTAssertEqual(scrape.problems, [])

        let expected: [String: Double] = [
            #"pinglass_database_up"#: 1,
            #"pinglass_queue_depth{queue="generation_tasks",state="queued"}"#: 3,
            #"pinglass_queue_depth{queue="generation_tasks",state="submitting"}"#: 0,
            #"pinglass_queue_depth{queue="generation_tasks",state="running"}"#: 2,
            #"pinglass_queue_depth{queue="telegram_deliveries",state="pending"}"#: 2,
            #"pinglass_queue_depth{queue="telegram_deliveries",state="sending"}"#: 0,
            #"pinglass_queue_depth{queue="telegram_deliveries",state="sent"}"#: 1,
            #"pinglass_queue_depth{queue="telegram_deliveries",state="failed"}"#: 1,
            #"pinglass_queue_depth{queue="refunds",state="pending"}"#: 1,
            #"pinglass_queue_depth{queue="refunds",state="requested"}"#: 0,
            #"pinglass_queue_depth{queue="refunds",state="succeeded"}"#: 2,
            #"pinglass_queue_depth{queue="refunds",state="failed"}"#: 1,
            #"pinglass_queue_oldest_age_seconds{queue="generation_tasks",state="submitting"}"#: 0,
            #"pinglass_queue_oldest_age_seconds{queue="telegram_deliveries",state="sending"}"#: 0,
            #"pinglass_queue_oldest_age_seconds{queue="refunds",state="requested"}"#: 0,
            #"pinglass_jobs{status="queued"}"#: 0,
            #"pinglass_jobs{status="processing"}"#: 1,
            #"pinglass_jobs{status="completed"}"#: 1,
            #"pinglass_jobs{status="partial"}"#: 0,
            #"pinglass_jobs{status="failed"}"#: 0,
            #"pinglass_jobs{status="canceled"}"#: 0,
            #"pinglass_payments{status="succeeded"}"#: 2,
            #"pinglass_payments{status="pending"}"#: 1,
            #"pinglass_payments{status="canceled"}"#: 1,
            #"pinglass_payments{status="partially_refunded"}"#: 1,
            #"pinglass_payments{status="new"}"#: 0,
            #"pinglass_payments{status="authorized"}"#: 0,
            #"pinglass_kie_rate_limited_total{call="create_task"}"#: 3,
            #"pinglass_kie_rate_limited_total{call="record_info"}"#: 2,
            #"pinglass_storage_upload_failures_total"#: 4,
            #"pinglass_telegram_failures_total{reason="blocked"}"#: 5,
            #"pinglass_telegram_failures_total{reason="server_errors"}"#: 6,
            #"pinglass_refunds_total{outcome="sent"}"#: 2,
            #"pinglass_refunds_total{outcome="failed"}"#: 1,
            #"pinglass_refunded_kopecks_total"#: 3500,
            #"pinglass_events_total{name="kie.rate_limited"}"#: 3,
            #"pinglass_events_total{name="telegram.blocked"}"#: 5,
            #"pinglass_events_total{name="odd \"name\"\\with\nnewline"}"#: 1,
            #"pinglass_worker_last_run_timestamp_seconds{duty="poll-kie",host="vm-1"}"#: 1_700_000_005.25,
            #"pinglass_worker_last_run_timestamp_seconds{duty="poll-kie",host="vm-2"}"#: 1_700_000_101,
            #"pinglass_worker_last_run_ok{duty="poll-kie",host="vm-1"}"#: 1,
            #"pinglass_worker_last_run_ok{duty="poll-kie",host="vm-2"}"#: 0,
            #"pinglass_worker_last_start_timestamp_seconds{duty="deliver",host="vm-1"}"#: 1_700_000_200,
        ]
        for (series, value) in expected.sorted(by: { $0.key < $1.key }) {
            XCTAssertEqual(scrape[series], value, series)
        }
        XCTAssertEqual(scrape.family("pinglass_payments").count, PaymentStatus.allCases.count, "every status, zeros included")
        XCTAssertEqual(scrape.family("pinglass_payments").values.reduce(0, +), 5)
        XCTAssertEqual(scrape.family("pinglass_events_total").count, 7)
        XCTAssertEqual(scrape.family("pinglass_telegram_failures_total").count, 2, "a sent message is no failure: \(scrape.family("pinglass_telegram_failures_total"))")
        XCTAssertEqual(scrape[#"pinglass_events_total{name="telegram.sent"}"#], 7)
        XCTAssertEqual(scrape.family("pinglass_worker_last_run_timestamp_seconds").count, 2, "a run still going has no finish")
        XCTAssertEqual(scrape.family("pinglass_http_requests_total"), [:], "no pool, no request table")

        // Ages: the scrape's clock lies between t0 and t1, so each age lies in a known window.
        for (series, since) in [(#"{queue="generation_tasks",state="queued"}"#, 100.0), (#"{queue="generation_tasks",state="running"}"#, 50),
                                (#"{queue="telegram_deliveries",state="pending"}"#, 200), (#"{queue="refunds",state="pending"}"#, 300)] {
            let age = try XCTUnwrap(scrape["pinglass_queue_oldest_age_seconds" + series], series)
            XCTAssertGreaterThanOrEqual(age, since - 0.001, series)
            XCTAssertLessThanOrEqual(age, since + (t1 - t0) + 0.001, series)
        }
        XCTAssertEqual(scrape.family("pinglass_queue_oldest_age_seconds").count, 7, "open states only")
        XCTAssertEqual(scrape.family("pinglass_queue_depth").count, 11, "finished tasks are not counted (kept forever)")
        XCTAssertNotNil(scrape["pinglass_metrics_query_seconds"])
        for (name, type) in scrape.types where name.hasSuffix("_total") { XCTAssertEqual(type, "counter", name) }
    }

    /// A fresh database: every family is there, counters at zero, no sample invented.
    func testAnEmptyDatabaseGivesZerosNotGaps() throws {
        let scrape = PrometheusScrape(try app.client.get("/metrics").text)
        XCTAssertEqual(scrape.problems, [])
        XCTAssertEqual(scrape["pinglass_storage_upload_failures_total"], 0)
        XCTAssertEqual(scrape[#"pinglass_refunds_total{outcome="sent"}"#], 0)
        XCTAssertEqual(scrape[#"pinglass_queue_depth{queue="refunds",state="pending"}"#], 0)
        XCTAssertEqual(scrape.family("pinglass_telegram_failures_total"), [:])
        XCTAssertEqual(scrape.types["pinglass_telegram_failures_total"], "counter")
        XCTAssertEqual(scrape.types["pinglass_http_requests_total"], "counter")
    }

    /// The database down: still 200, with database_up 0 and the request counts.
    func testWithTheDatabaseDownTheRequestCountsStillAnswer() throws {
        let config = try db.config(["DATABASE_URL": "host=/nonexistent-socket-dir dbname=x connect_timeout=1"])
        let down = try InProcessApp(config: config)
        down.deps.requestMetrics = try RequestMetrics.forApp()
        XCTAssertEqual(try down.client.get("/api/health").status, 503)
        let res = try down.client.get("/metrics")
        XCTAssertEqual(res.status, 200)
        let scrape = PrometheusScrape(res.text)
        XCTAssertEqual(scrape.problems, [])
        XCTAssertEqual(scrape["pinglass_database_up"], 0)
        XCTAssertEqual(scrape[#"pinglass_http_requests_total{method="GET",route="/api/health",status="503"}"#], 1)
        XCTAssertNil(scrape.types["pinglass_jobs"])
    }

    /// nginx guards exactly `/metrics`; `/metrics/` would reach the app through the open
    /// location, so the app answers only the exact path.
    func testOnlyTheExactPathAnswers() {
        XCTAssertEqual(try app.client.get("/metrics/").status, 404)
        XCTAssertEqual(try app.client.get("//metrics").status, 404)
        XCTAssertEqual(try app.client.get("/metrics").status, 200)
    }

    func testNoSecretInTheAnswer() throws {
        let a = try InProcessApp(database: db, env: ["TBANK_TEST_TERMINAL_KEY": "DEMO", "TBANK_TEST_PASSWORD": "s3cret-pw",
                                                     "KIE_API_KEY": "kie-secret", "MEDIA_KEY_SECRET": "media-secret-0123456789"])
        let body = try a.client.get("/metrics").text
        for secret in ["s3cret-pw", "kie-secret", "media-secret-0123456789", db.url] { XCTAssertFalse(body.contains(secret), secret) }
    }
}

import Foundation
import HTTPClient
import PinGlassTesting
import Postgres
import XCTest
import JSON
import LibCrypto
@testable import PinGlass

/// The whole story a customer lives, end to end: real nginx and pool, the
/// simulator as T-Bank, Kie and Telegram, and the real cron commands (`pinglass dispatch`,
/// `poll-kie`, `deliver` as cron runs them — looping processes woken by NOTIFY — and one
/// pass of `refund`, `audit`).
/// The customer creates an avatar, uploads a reference photo, pays on the bank's page (the
/// form a person submits) and starts the generation; the photos arrive in the simulated chat
/// of that Telegram user — checked on its inbox page, byte for byte against the photos we
/// stored — and then the message linking to the web app. When Kie fails photos, the refund
/// the rule gives lands at the bank: its payment page, its control API and our database
/// agree. `pinglass audit` is clean after every story.
final class FullStoryTests: DatabaseTestCase {
    var stack: Stack!
    var c: Connection!
    var bank: BankSimulator!
    var kie: KieSimulator!
    var telegram: TelegramSimulator!
    let http = HTTPClient()

    override func setUpWithError() throws {
        try super.setUpWithError()
        let simPort = Subprocess.freePort()
        let simURL = "http://127.0.0.1:\(simPort)"
        var env = Fixtures.env(simURL: simURL).merging(Fixtures.kieEnv(simURL: simURL)) { $1 }
        env["MEDIA_KEY_SECRET"] = GenerationFixtures.mediaSecret
        env["LOG_FORMAT"] = "text"
        stack = try Stack(database: db, workers: 2, env: env, withSimulator: true, simPort: simPort)
        c = try db.connect()
        bank = BankSimulator(simURL: simURL)
        kie = KieSimulator(simURL: simURL)
        telegram = TelegramSimulator(simURL: simURL)
        try kie.set(["waitingSeconds": .double(0.1), "queuingSeconds": .double(0.1), "generatingSeconds": .double(0.3)])
    }

    override func tearDown() {
        stack?.stop()
        super.tearDown()
    }

    // MARK: the stories

    /// Every photo made: the chat shows the seven photos as one album, then "all 7" with the
    /// link to the web app; nothing is refunded.
    func testPaidPhotosArriveInTheCustomersChat() throws {
        let paid = try customerPays(61_001, tier: "starter")
        let job = try generate(paid)
        XCTAssertEqual(try cli(["dispatch"]).0, 0)
        XCTAssertEqual(try number("SELECT count(*)::int AS n FROM generation_tasks WHERE job_id = $1 AND state = 'running'", job), 7,
                       "dispatch submitted the job's seven photos")
        try runDuties(["poll-kie"], until: "the job to complete") { try self.jobStatus(job) == "completed" }
        try runDuties(["deliver"], until: "the photos and the message to reach the chat") { try self.allSent(job) }

        let message = try chatShowsTheJob(job, chat: paid.user, albums: [7])
        XCTAssertTrue(message.contains("Your PinGlass portraits are ready: all 7."), message)
        // The gallery button: a `url` button on this http base (web_app needs https), shown on
        // the chat page as a link that opens the Mini App as this user.
        let gallery = "\(stack.baseURL)/?job=\(job)"
        XCTAssertEqual(try telegram.messages(chat: paid.user).last?["replyMarkup"],
                       JSON.object([("inline_keyboard", [[["text": "Open the gallery", "url": .string(gallery)]]])]))
        XCTAssertTrue(try telegram.inbox(chat: paid.user).html.contains("/sim/telegram/open?user=\(paid.user)&amp;path=%2F%3Fjob%3D\(job)"),
                      "the chat page opens the gallery through the simulator")
        XCTAssertFalse(message.contains("refund"), message)
        XCTAssertEqual(try number("SELECT count(*)::int AS n FROM refunds WHERE payment_id = $1", paid.paymentID), 0)
        XCTAssertEqual(try bank.payment(paid.bankID)["refunded"]?.intValue, 0)
        XCTAssertEqual(try customerAPI("GET", "/api/jobs/\(job)", as: paid.user)["refund"], .null)
        try auditIsClean()
    }

    /// Kie fails 5 of the 7 photos: 2 of 7 is below 70 %, so the job fails. None of its
    /// photos had gone out (the starter set's one batch is all 7), so both are withheld —
    /// not in the chat, not in the API — and the whole 499 ₽ goes back: the customer never
    /// keeps a photo and its price. The message says so; `pinglass refund` sends the Cancel;
    /// the bank's page shows the money back, the payment is refunded.
    func testKieFailingMostPhotosWithholdsThemAndRefundsEverythingAtTheBank() throws {
        let paid = try customerPays(61_002, tier: "starter")
        try kie.set(["failNext": 5])
        let job = try generate(paid)
        try runDuties(["dispatch", "poll-kie"], until: "the job to finish") { try self.jobStatus(job) == "failed" }
        let owed = RefundRule.standard.refund(amount: Money(kopecks: paid.amount), photos: 2, released: 0, total: 7).kopecks
        XCTAssertEqual(owed, 49_900, "below 70 % of the photos and none sent: everything back")
        XCTAssertEqual(try number("SELECT amount_kopecks AS n FROM refunds WHERE job_id = $1", job), owed)
        XCTAssertEqual(try number("SELECT count(*)::int AS n FROM generated_photos WHERE job_id = $1", job), 2, "made, but withheld")
        XCTAssertEqual(try customerAPI("GET", "/api/jobs/\(job)", as: paid.user)["photos"]?.arrayValue?.count, 0, "the API shows none")

        try runDuties(["deliver"], until: "the message to reach the chat") { try self.allSent(job) }
        let message = try chatShowsTheJob(job, chat: paid.user, albums: [])
        XCTAssertTrue(message.contains("only 2 of your 7"), message)
        XCTAssertTrue(message.contains("None of them will be sent, and you pay for none."), message)
        XCTAssertTrue(message.contains("We are refunding 499 ₽ to your card."), message)
        XCTAssertEqual(try telegram.messages(chat: paid.user).last?["replyMarkup"], .null, "no gallery button with no photo to show")

        let (status, out, err) = try cli(["refund"])
        XCTAssertEqual(status, 0, out + err)
        try bankShowsTheRefund(paid, job: job, kopecks: owed, paymentStatus: "refunded")
        try auditIsClean()
    }

    /// The premium set of 23 with 5 failed at Kie: the job is `partial`, the refund is
    /// 1 499 ₽ × 5 / 23 rounded down to the kopeck (325.86 ₽), the 18 photos arrive as three
    /// albums, the short one of 3 and one of 10 while the job still runs and the other 5 at
    /// its end, then the message.
    /// The chat's pace held (an album of N counts N seconds) and Telegram never said 429.
    func testTwentyThreePhotosFiveFailedPartialRefundThreeAlbums() throws {
        let paid = try customerPays(61_003, tier: "premium")
        XCTAssertEqual(paid.amount, 149_900)
        try kie.set(["failNext": 5])
        let job = try generate(paid)
        try runDuties(["dispatch", "poll-kie", "deliver"], timeout: 120, until: "the job to finish and reach the chat") {
            try self.jobStatus(job) != "processing" && self.allSent(job)
        }
        XCTAssertEqual(try jobStatus(job), "partial")
        let owed = 149_900 * 5 / 23
        XCTAssertEqual(owed, 32_586)
        XCTAssertEqual(RefundRule.standard.refund(amount: Money(kopecks: paid.amount), photos: 18, released: 13, total: 23).kopecks, owed)
        XCTAssertEqual(try number("SELECT amount_kopecks AS n FROM refunds WHERE job_id = $1", job), owed)

        let message = try chatShowsTheJob(job, chat: paid.user, albums: [3, 10, 5])
        XCTAssertTrue(message.contains("18 of 23. 5 could not be made."), message)
        XCTAssertTrue(message.contains("We are refunding 325.86 ₽ to your card."), message)
        XCTAssertEqual(try number("""
            SELECT count(*)::int AS n FROM telegram_deliveries d JOIN generation_jobs j ON j.id = d.job_id
            WHERE d.job_id = $1 AND d.batch_no = 0 AND d.sent_at < j.finished_at
            """, job), 1, "the first album reached the chat while the last photos were still being made")

        let (status, out, err) = try cli(["refund"])
        XCTAssertEqual(status, 0, out + err)
        try bankShowsTheRefund(paid, job: job, kopecks: owed, paymentStatus: "partially_refunded")
        try auditIsClean()
    }

    // MARK: the customer (through nginx, signed as a Telegram user)

    struct Paid {
        let user: Int64
        let avatarID: Int
        let bankID: String
        let paymentID: Int
        let amount: Int
    }

    func customerAPI(_ method: String, _ path: String, _ body: String = "", as user: Int64) throws -> JSON {
        let r = try stack.client.execute(method, path, headers: [("Content-Type", "application/json"), Fixtures.auth(telegramID: user)], body: Array(body.utf8))
        XCTAssertLessThan(r.status, 300, "\(method) \(path): \(r.text)")
        return try JSON.parse(r.body)
    }

    /// Avatar → reference photo → payment → the bank's page, where the customer presses Pay
    /// (the form's POST, as a browser sends it) → the bank's notification reached our
    /// webhook: the payment succeeded.
    func customerPays(_ user: Int64, tier: String) throws -> Paid {
        let avatarID = try XCTUnwrap(customerAPI("POST", "/api/avatars", #"{"name":"me"}"#, as: user)["avatar"]?["id"]?.intValue)
        let upload = try stack.client.post("/api/avatars/\(avatarID)/references", body: GenerationFixtures.jpeg(Int(user % 251), size: 4096),
                                           headers: [("Content-Type", "image/jpeg"), Fixtures.auth(telegramID: user)])
        XCTAssertEqual(upload.status, 201, upload.text)
        let created = try customerAPI("POST", "/api/payment/create", #"{"tierId":"\#(tier)","avatarId":\#(avatarID)}"#, as: user)
        let bankID = try XCTUnwrap(created["paymentId"]?.stringValue)
        let amount = try XCTUnwrap(created["amount"]?.intValue)
        let page = try XCTUnwrap(created["confirmationUrl"]?.stringValue)
        XCTAssertEqual(page, stack.simURL + "/pay/" + bankID)
        XCTAssertTrue(try http.send(HTTPRequest(url: page)).text.contains("Pay \(Money(kopecks: amount))"))
        let pressed = try http.send(HTTPRequest(method: "POST", url: page, headers: [("Content-Type", "application/x-www-form-urlencoded")],
                                                body: Array("action=pay".utf8)))
        XCTAssertEqual(pressed.status, 303, pressed.text)
        XCTAssertEqual(pressed.header("location"), stack.baseURL + "/payment/success?order=" + (created["orderId"]?.stringValue ?? ""))
        try Subprocess.waitUntil(timeout: 20, "payment \(bankID) to succeed") {
            try self.customerAPI("GET", "/api/payment/status?payment_id=\(bankID)", as: user)["status"]?.stringValue == "succeeded"
        }
        let id = try c.query("SELECT id FROM payments WHERE tbank_payment_id = $1", [bankID])[0].requiredInt("id")
        return Paid(user: user, avatarID: avatarID, bankID: bankID, paymentID: id, amount: amount)
    }

    func generate(_ paid: Paid) throws -> Int {
        let started = try stack.client.post("/api/generate", body: #"{"avatarId":\#(paid.avatarID)}"#,
                                     headers: [Fixtures.auth(telegramID: paid.user)])
        XCTAssertEqual(started.status, 202, started.text)
        return try XCTUnwrap(JSON.parse(started.body)["jobId"]?.intValue)
    }

    // MARK: the cron duties

    func cli(_ args: [String]) throws -> (Int32, String, String) {
        try Subprocess.capture(TestEnvironment.binDir() + "/pinglass", args, environment: stack.environment)
    }

    /// The duties as cron runs them (cron.d/pinglass): each its own looping process
    /// (`--for`, `--every`), woken at once by NOTIFY (a new job, a Kie callback, a finished
    /// job), until `done` holds; then they are stopped (all idle by then).
    func runDuties(_ duties: [String], timeout: Double = 60, until what: String, _ done: () throws -> Bool) throws {
        let processes = try duties.map { duty in
            try Subprocess.start(TestEnvironment.binDir() + "/pinglass", [duty, "--for", "\(Int(timeout) + 30)s", "--every", "2s"],
                                 environment: stack.environment, logPath: stack.dir + "/\(duty).log")
        }
        defer { for p in processes { p.terminate(); p.wait() } }
        try Subprocess.waitUntil(timeout: timeout, interval: 0.1, "\(what) (duty logs in \(stack.dir))", done)
        for (duty, p) in zip(duties, processes) { XCTAssertTrue(p.isRunning, "\(duty) ended early: see \(stack.dir)/\(duty).log") }
    }

    // MARK: what the customer and the operator see

    /// The column `n` of the first row.
    func number(_ sql: String, _ id: Int) throws -> Int? { try c.query(sql, [id]).first?.int("n") }

    func jobStatus(_ job: Int) throws -> String? {
        try c.query("SELECT status FROM generation_jobs WHERE id = $1", [job]).first?.string("status")
    }

    /// The job has finished and every delivery row of it was sent (the message is the last).
    func allSent(_ job: Int) throws -> Bool {
        try c.query("""
            SELECT bool_and(d.state = 'sent') AND bool_or(d.kind = 'message') AS done
            FROM telegram_deliveries d WHERE d.job_id = $1
            """, [job]).first?.bool("done") == true
    }

    /// The customer's chat as a person sees it on the simulator's inbox page: exactly the
    /// job's released photos (SHA-256 of the images on the page = of the files in our media
    /// store), in albums of the given sizes in that order, then the final message, last. The
    /// message ids we recorded are Telegram's. Consecutive sends were paced (an album of N
    /// counts N seconds) and none was answered 429. Returns the final message's text.
    func chatShowsTheJob(_ job: Int, chat: Int64, albums: [Int]) throws -> String {
        let stored = try c.query("""
            SELECT storage_key, encode(sha256, 'hex') AS sha FROM generated_photos WHERE job_id = $1 AND released_at IS NOT NULL
            """, [job])
        let storedDigests = try stored.map { row -> String in
            let digest = Crypto.hex(Crypto.sha256(try stack.media.get(key: row.requiredString("storage_key"))))
            XCTAssertEqual(digest, row.string("sha"), "the stored file is the photo recorded")
            return digest
        }
        XCTAssertEqual(storedDigests.count, albums.reduce(0, +))
        XCTAssertEqual(Set(storedDigests).count, storedDigests.count, "distinct portraits")

        let (page, images) = try telegram.inbox(chat: chat)
        XCTAssertEqual(images.map { Crypto.hex(Crypto.sha256($0)) }.sorted(), storedDigests.sorted(),
                       "the chat shows every photo of the job and nothing else")
        for (i, n) in albums.enumerated() {
            let first = albums.prefix(i).reduce(0, +) + 1
            XCTAssertTrue(page.contains("(album of \(n))"), "album of \(n) on the page")
            XCTAssertTrue(page.contains("PinGlass · portraits \(first)–\(first + n - 1)"), "its caption on the page")
        }

        let messages = try telegram.messages(chat: chat)
        var groups: [Int] = []
        var lastGroup: String?
        for m in messages.dropLast() {
            XCTAssertEqual(m["kind"]?.stringValue, "photo")
            let group = m["mediaGroupId"]?.stringValue
            if group != nil && group == lastGroup { groups[groups.count - 1] += 1 } else { groups.append(1) }
            lastGroup = group
        }
        XCTAssertEqual(groups, albums, "the photos came as these albums, in order")
        let final = try XCTUnwrap(messages.last)
        XCTAssertEqual(final["kind"]?.stringValue, "text", "the final message comes last")
        let text = try XCTUnwrap(final["text"]?.stringValue)
        XCTAssertTrue(page.contains(text.split(separator: "\n")[0]), "the message is on the page")

        let recorded = try c.query("""
            SELECT array_to_string(telegram_message_ids, ',') AS ids FROM telegram_deliveries WHERE job_id = $1 ORDER BY batch_no
            """, [job]).flatMap { ($0.string("ids") ?? "").split(separator: ",").compactMap { Int($0) } }
        XCTAssertEqual(recorded, messages.compactMap { $0["messageId"]?.intValue }, "the ids Telegram gave, each recorded once")

        let calls = try telegram.calls().filter { $0["chatId"]?.intValue == Int(chat) }
        XCTAssertEqual(calls.filter { $0["status"]?.intValue == 429 }.count, 0, "Telegram never had to hold us back")
        for (a, b) in zip(calls, calls.dropFirst()) {
            let gap = (b["atMs"]?.intValue ?? 0) - (a["atMs"]?.intValue ?? 0)
            XCTAssertGreaterThanOrEqual(gap, 1000 * (a["messages"]?.intValue ?? 1), "one message per second in the chat, an album of N counting N")
        }
        return text
    }

    /// The refund as the bank shows it — the payment page a person opens and the control
    /// API — agrees with our refund row, the payment and the customer's job and status answers.
    func bankShowsTheRefund(_ paid: Paid, job: Int, kopecks: Int, paymentStatus: String) throws {
        let refunds = try c.query("""
            SELECT state, amount_kopecks, external_request_id::text AS k FROM refunds WHERE payment_id = $1
            """, [paid.paymentID])
        XCTAssertEqual(refunds.count, 1, "one refund for the job")
        let refund = try XCTUnwrap(refunds.first)
        XCTAssertEqual(refund.string("state"), "succeeded")
        XCTAssertEqual(refund.int("amount_kopecks"), kopecks)
        let key = refund.requiredString("k")

        let atBank = try bank.payment(paid.bankID)
        XCTAssertEqual(atBank["refunded"]?.intValue, kopecks)
        XCTAssertEqual(atBank["charged"]?.intValue, paid.amount - kopecks)
        XCTAssertEqual(atBank["status"]?.stringValue, kopecks == paid.amount ? "REFUNDED" : "PARTIAL_REFUNDED")
        XCTAssertEqual(atBank["cancels"]?.arrayValue?.map { $0["externalRequestId"]?.stringValue }, [key], "one Cancel, with the refund's own key")
        let page = try bank.page(paid.bankID)
        XCTAssertTrue(page.contains("Refunded \(Money(kopecks: kopecks))"), page)
        XCTAssertTrue(page.contains("Still charged: \(Money(kopecks: paid.amount - kopecks))"), page)
        XCTAssertTrue(page.contains(key), page)

        XCTAssertEqual(try Fixtures.paymentState(c, paid.paymentID).status, paymentStatus)
        XCTAssertEqual(try Fixtures.paymentState(c, paid.paymentID).refunded, kopecks)
        let status = try customerAPI("GET", "/api/payment/status?payment_id=\(paid.bankID)", as: paid.user)
        XCTAssertEqual(status["status"]?.stringValue, paymentStatus)
        let seen = try customerAPI("GET", "/api/jobs/\(job)", as: paid.user)["refund"]
        XCTAssertEqual(seen?["amount"]?.intValue, kopecks)
        XCTAssertEqual(seen?["status"]?.stringValue, "succeeded")
    }

    func auditIsClean() throws {
        let (status, out, err) = try cli(["audit"])
        XCTAssertEqual(status, 0, out + err)
        XCTAssertTrue(out.contains("0 violated"), out)
    }
}

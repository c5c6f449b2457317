import Foundation
import HTTPClient
import PinGlass
import Postgres
import JSON

/// A customer's paid story against a real stack: nginx, the FastCGI pool and the simulator
/// as bank, Kie and Telegram. An avatar with a reference photo, a starter payment (7 photos,
/// 499 ₽) paid on the bank (whose notification reaches our webhook), a generation started;
/// the cron duties (`Quiesce`) do the rest. The pool may be started armed with a crash
/// point and restarted without it.
///
/// ```swift
/// let story = try PaidStory(database: db, telegramID: 61_001)
/// defer { story.stop() }
/// try story.prepareAvatar()
/// try story.pay()
/// let job = try story.startJob()
/// try Quiesce(environment: story.cliEnvironment).run()
/// let facts = try story.facts(job: job)
/// ```
public final class PaidStory {
    public let stack: Stack
    public let bank: BankSimulator
    public let kie: KieSimulator
    public let telegram: TelegramSimulator
    /// The customer, and so the private chat the photos go to.
    public let telegramID: Int64
    public private(set) var avatarID = 0
    /// T-Bank's PaymentId and our row's id.
    public private(set) var bankPaymentID = ""
    public private(set) var paymentID = 0
    public let db: Connection

    /// Kie as fast as the simulator goes while keeping its stages: a task finishes half a
    /// second after it was created.
    public static let quickKie: JSON = ["waitingSeconds": .double(0.1), "queuingSeconds": .double(0.1),
                                        "generatingSeconds": .double(0.3)]

    /// `poolEnvironment` goes to the pool only (e.g. `CRASHPOINT`), not to the simulator or
    /// the command line; `environment` to all three (e.g. another `DATABASE_URL`).
    public init(database: TestDatabase, telegramID: Int64, poolEnvironment: [String: String] = [:], kie: JSON = quickKie,
                environment: [String: String] = [:]) throws {
        let simPort = Subprocess.freePort()
        let simURL = "http://127.0.0.1:\(simPort)"
        let env = Fixtures.env(simURL: simURL).merging(Fixtures.kieEnv(simURL: simURL)) { $1 }.merging(environment) { $1 }
        stack = try Stack(database: database, workers: 2, env: env, withSimulator: true, simPort: simPort, withPool: false)
        do {
            stack.environment.merge(poolEnvironment) { $1 }
            try stack.startPool()
            bank = BankSimulator(simURL: simURL)
            self.kie = KieSimulator(simURL: simURL)
            telegram = TelegramSimulator(simURL: simURL)
            self.telegramID = telegramID
            db = try database.connect()
            try self.kie.set(kie)
            // Telegram's pacing is not under test here (DeliveryPacingTests, TelegramSimulatorTests).
            try telegram.set(["floodControl": false])
        } catch {
            stack.stop()
            throw error
        }
    }

    /// The variables the cron duties run with: the stack's, without the pool's `CRASHPOINT`.
    public var cliEnvironment: [String: String] {
        var env = stack.environment
        env["CRASHPOINT"] = nil
        return env
    }

    public func stop() {
        db.close()
        stack.stop()
    }

    /// The pool stopped and started again with `environment` changed (nil removes a variable).
    public func restartPool(_ changes: [String: String?]) throws {
        stack.stopPool()
        for (k, v) in changes { stack.environment[k] = v }
        try stack.startPool()
    }

    /// An answer the story did not expect.
    public struct Unexpected: Error, CustomStringConvertible {
        public let step: String
        public let status: Int
        public let body: String
        public var description: String { "\(step): HTTP \(status) \(body.prefix(500))" }
    }

    func send(_ method: String, _ path: String, _ body: [UInt8], type: String = "application/json") throws -> TestClient.Response {
        try stack.client.execute(method, path, headers: [("Content-Type", type), Fixtures.auth(telegramID: telegramID)], body: body)
    }

    func expect(_ step: String, _ r: TestClient.Response, _ status: Int) throws -> JSON {
        guard r.status == status else { throw Unexpected(step: step, status: r.status, body: r.text) }
        return try JSON.parse(r.body)
    }

    /// An avatar with one reference photo, through nginx.
    public func prepareAvatar() throws {
        let created = try expect("create avatar", try send("POST", "/api/avatars", Array(#"{"name":"me"}"#.utf8)), 201)
        guard let id = created["avatar"]?["id"]?.intValue else { throw Unexpected(step: "create avatar", status: 201, body: "\(created)") }
        avatarID = id
        _ = try expect("upload reference", try send("POST", "/api/avatars/\(id)/references", GenerationFixtures.jpeg(Int(telegramID % 251), size: 2048),
                                                    type: "image/jpeg"), 201)
    }

    /// Creates the starter payment and pays it on the simulated bank, which notifies our
    /// webhook at once (whatever the webhook answers: a crashing pool answers 502).
    public func pay() throws {
        let created = try expect("create payment", try send("POST", "/api/payment/create", Array(#"{"tierId":"starter"}"#.utf8)), 200)
        guard let id = created["paymentId"]?.stringValue else { throw Unexpected(step: "create payment", status: 200, body: "\(created)") }
        bankPaymentID = id
        paymentID = try db.query("SELECT id FROM payments WHERE tbank_payment_id = $1", [id])[0].requiredInt("id")
        try bank.pay(id)
    }

    /// Our payment row's status and refunded sum.
    public func payment() throws -> (status: String, refunded: Int, consumed: Bool) {
        let r = try db.query("SELECT status, refunded_kopecks, consumed_by_job IS NOT NULL AS consumed FROM payments WHERE id = $1", [paymentID])[0]
        return (r.requiredString("status"), r.requiredInt("refunded_kopecks"), r.bool("consumed") ?? false)
    }

    /// POST /api/generate for the avatar, as it answered.
    public func generate() throws -> TestClient.Response {
        try send("POST", "/api/generate", Array(#"{"avatarId":\#(avatarID)}"#.utf8))
    }

    /// Starts the generation (202) and returns the job's id.
    public func startJob() throws -> Int {
        let started = try expect("generate", try generate(), 202)
        guard let job = started["jobId"]?.intValue else { throw Unexpected(step: "generate", status: 202, body: "\(started)") }
        return job
    }

    /// One pinglass command as cron runs it (`CRASHPOINT` only when given).
    public func cli(_ args: [String], crashAt point: String? = nil) throws -> (status: Int32, output: String) {
        var env = cliEnvironment
        env["CRASHPOINT"] = point
        let (status, out, err) = try Subprocess.capture(TestEnvironment.binDir() + "/pinglass", args, environment: env)
        return (status, out + err)
    }

    /// What the story left, read from our database and from the simulator's records.
    public func facts(job: Int) throws -> StoryFacts {
        let j = try db.query("SELECT status, total_photos FROM generation_jobs WHERE id = $1", [job])[0]
        let tasks = try db.query("""
            SELECT t.id, t.state, (SELECT count(*) FROM generated_photos p WHERE p.task_id = t.id)::int AS photos
            FROM generation_tasks t WHERE t.job_id = $1 ORDER BY t.id
            """, [job]).map { (id: $0.requiredInt("id"), state: $0.requiredString("state"), photos: $0.requiredInt("photos")) }
        let photos = try db.query("""
            SELECT id, encode(sha256, 'hex') AS sha, released_at IS NOT NULL AS released FROM generated_photos WHERE job_id = $1 ORDER BY id
            """, [job]).map { (id: $0.requiredInt("id"), sha: $0.requiredString("sha"), released: $0.bool("released") == true) }
        let deliveries = try db.query("SELECT state, count(*)::int AS n FROM telegram_deliveries WHERE job_id = $1 GROUP BY state", [job])
        let refunds = try db.query("""
            SELECT id, state, amount_kopecks, external_request_id::text AS erid FROM refunds WHERE payment_id = $1 ORDER BY id
            """, [paymentID]).map { StoryFacts.Refund(id: $0.requiredInt("id"), state: $0.requiredString("state"),
                                                      amount: $0.requiredInt("amount_kopecks"), externalRequestID: $0.requiredString("erid")) }
        let pay = try payment()
        let atBank = try bank.payment(bankPaymentID)
        let chat = try telegram.messages(chat: telegramID)
        var shown: [String: Int] = [:]
        for m in chat { if let sha = m["photoSha256"]?.stringValue { shown[sha.lowercased(), default: 0] += 1 } }
        return StoryFacts(
            jobStatus: j.requiredString("status"), totalPhotos: j.requiredInt("total_photos"),
            tasks: tasks.map { StoryFacts.Task(id: $0.id, state: $0.state, photos: $0.photos) },
            photoSHA256: photos.map(\.sha),
            releasedSHA256: photos.filter(\.released).map(\.sha),
            deliveryStates: Dictionary(uniqueKeysWithValues: deliveries.map { ($0.requiredString("state"), $0.requiredInt("n")) }),
            refunds: refunds,
            paymentStatus: pay.status, paymentRefunded: pay.refunded, paymentAmount: 49_900,
            bankRefunded: atBank["refunded"]?.intValue ?? -1,
            bankCancels: (atBank["cancels"]?.arrayValue ?? []).map {
                StoryFacts.Cancel(externalRequestID: $0["externalRequestId"]?.stringValue ?? "", amount: $0["amount"]?.intValue ?? -1)
            },
            cancelRequests: try bank.requests("Cancel").compactMap { $0["ExternalRequestId"]?.stringValue },
            chatPhotos: shown,
            chatTexts: chat.filter { $0["photoSha256"]?.stringValue == nil }.compactMap { $0["text"]?.stringValue })
    }
}

/// What a paid story left behind, for the tests' assertions (`PaidStory.facts(job:)`).
public struct StoryFacts {
    public struct Task: Equatable {
        public let id: Int
        public let state: String
        /// Photo rows of this task.
        public let photos: Int
    }
    public struct Refund: Equatable {
        public let id: Int
        public let state: String
        public let amount: Int
        public let externalRequestID: String
    }
    /// A refund the bank made (its record of an effective Cancel).
    public struct Cancel: Equatable {
        public let externalRequestID: String
        public let amount: Int
    }

    public let jobStatus: String
    public let totalPhotos: Int
    public let tasks: [Task]
    /// The job's photos, SHA-256 in hex, in id order.
    public let photoSHA256: [String]
    /// Those released to the customer (in a delivery row); the others are withheld.
    public let releasedSHA256: [String]
    /// Delivery rows of the job by state.
    public let deliveryStates: [String: Int]
    /// Every refund row of the payment.
    public let refunds: [Refund]
    public let paymentStatus: String
    public let paymentRefunded: Int
    public let paymentAmount: Int
    /// The bank's side: what it gave back, its effective cancels, and every Cancel request it
    /// received (by ExternalRequestId, repeats included).
    public let bankRefunded: Int
    public let bankCancels: [Cancel]
    public let cancelRequests: [String]
    /// The customer's chat: how often each photo (by SHA-256) was shown, and the texts.
    public let chatPhotos: [String: Int]
    public let chatTexts: [String]

    public var photosMade: Int { photoSHA256.count }
}

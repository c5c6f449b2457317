import HTTPClient
import HTTPCore
import Postgres
import JSON
import LibCrypto
import Platform
import WebURL

/// Where the simulated Kie lives and whom it lets in (from the simulator's environment).
struct KieSimOptions: Sendable {
    /// `KIE_API_KEY`: the one key accepted; unset, any non-empty Bearer key is.
    var apiKey: String?
    /// Base of the result URLs, e.g. `http://127.0.0.1:8081/kie` → `…/kie/results/<taskId>.png`.
    var resultsURL: String
    /// `KIE_WEBHOOK_HMAC_KEY`: signs callbacks unless the `webhookHmacKey` setting overrides it.
    var webhookHmacKey: String?
}

/// The Kie.ai part of the simulator (docs/providers.md#kie-simulator), under `/kie`
/// (and at the root, as on api.kie.ai): `POST /api/v1/jobs/createTask`,
/// `GET /api/v1/jobs/recordInfo?taskId=`, and the result images at `/kie/results/<id>.png`.
/// The envelope is Kie's `{code, msg, data}`; the Bearer key is checked (401); createTask has
/// a sliding 20-per-10-s limiter per account that answers HTTP 429 + code 429 and drops the
/// request; recordInfo has its own 10-per-second limiter; credits run out (402); tasks walk
/// waiting → queuing → generating → success | fail by the clock. Knobs: `KieSettings`.
struct KieSim {
    let db: Connection
    let options: KieSimOptions

    func handle(_ request: Request, _ path: [String]) throws -> Response {
        switch (request.method, path.joined(separator: "/")) {
        case ("POST", "api/v1/jobs/createTask"): return try createTask(request)
        case ("GET", "api/v1/jobs/recordInfo"): return try recordInfo(request)
        case ("GET", let p) where p.hasPrefix("results/") && path.count == 2: return try result(path[1])
        default: return .json(["code": 404, "msg": "Not Found"], status: 404)
        }
    }

    func settings() throws -> KieSettings { try KieSettings(db, defaultHmacKey: options.webhookHmacKey) }

    /// Kie's envelope. 429 is always in both places (documented); other errors in the HTTP
    /// status or only in the body, as `errorsIn` says (Kie does not document which).
    func answer(_ code: Int, _ message: String, data: JSON? = nil, _ s: KieSettings) -> Response {
        var fields: [(String, JSON)] = [("code", .int(code)), (s.messageField == "message" ? "message" : "msg", .string(message))]
        if let data { fields.append(("data", data)) }
        let status = code == 200 || (code != 429 && s.errorsIn == "body") ? 200 : code
        return .json(.object(fields), status: status)
    }

    /// The limiter's account: a hash of the key (Kie limits per account; one key here).
    func account(_ request: Request) -> String? {
        guard let h = request.header("authorization"), h.hasPrefix("Bearer ") else { return nil }
        guard let key = h.dropFirst("Bearer ".count).split(separator: " ").first.map(String.init) else { return nil }
        if let expected = options.apiKey, !Crypto.constantTimeEqual(Array(key.utf8), Array(expected.utf8)) { return nil }
        return String(Crypto.sha256Hex(key).prefix(16))
    }

    /// Both API calls start alike: latency, the call counter, the key (401), injected errors;
    /// `body` runs only for an admitted call, with the caller's account.
    func admit(_ call: String, _ request: Request, _ s: KieSettings, _ body: (String) throws -> Response) throws -> Response {
        if s.latencyMs > 0 { System.sleep(seconds: s.latencyMs / 1000) }
        try KieStore.count(db, call)
        guard let account = account(request) else {
            try KieStore.count(db, call + ".401")
            return answer(401, "You do not have access permissions", s)
        }
        if s.errorOn == "any" || s.errorOn == call, try KieStore.take(db, "errorNext") {
            try KieStore.count(db, call + ".injected")
            return answer(s.errorCode, s.errorCode == 455 ? "Service unavailable: maintenance" : "Server error", s)
        }
        return try body(account)
    }

    func createTask(_ request: Request) throws -> Response {
        let s = try settings()
        return try admit("createTask", request, s) { account in try createTask(request, account, s) }
    }

    func createTask(_ request: Request, _ account: String, _ s: KieSettings) throws -> Response {
        guard let body = try? JSON.parse(request.body), let model = body["model"]?.stringValue, !model.isEmpty,
              let prompt = body["input"]?["prompt"]?.stringValue, !prompt.isEmpty, prompt.count <= 5000 else {
            try KieStore.count(db, "createTask.422")
            return answer(422, "model and input.prompt (at most 5000 characters) are required", s)
        }
        let images = body["input"]?["image_urls"]
        let callback = body["callBackUrl"]
        guard images == nil || (images?.arrayValue.map { $0.count <= 14 && $0.allSatisfy { $0.stringValue != nil } } ?? false),
              callback == nil || callback?.stringValue.flatMap(HTTPURL.init) != nil else {
            try KieStore.count(db, "createTask.422")
            return answer(422, "image_urls must be at most 14 URLs and callBackUrl a URL", s)
        }
        switch try insertTask(account: account, model: model, param: body.serialized, callback: callback?.stringValue, s) {
        case .limited:
            try KieStore.count(db, "createTask.429")
            return answer(429, "Rate limit exceeded: at most \(s.createLimit) new generation requests per \(s.createWindowSeconds) seconds", s)
        case .noCredits:
            try KieStore.count(db, "createTask.402")
            return answer(402, "Credits insufficient", s)
        case .created(let id):
            try KieStore.count(db, "tasks")
            return answer(200, "success", data: ["taskId": .string(id)], s)
        }
    }

    enum Creation { case created(String), limited, noCredits }

    /// One transaction under a per-account lock, so concurrent sim workers never let the
    /// window's limit + 1 through: count the window, take a credit, decide the task's fate,
    /// insert. A refused call changes nothing (Kie: "rejected requests will not enter the queue").
    func insertTask(account: String, model: String, param: String, callback: String?, _ s: KieSettings) throws -> Creation {
        try db.withTransaction { tx in
            try tx.query("SELECT pg_advisory_xact_lock(hashtext('kie-create:' || $1))", [account])
            let recent = try tx.query("""
                SELECT count(*)::int AS n FROM sim.kie_tasks
                WHERE account = $1 AND created_at > clock_timestamp() - make_interval(secs => $2::float8)
                """, [account, s.createWindowSeconds])[0].requiredInt("n")
            if recent >= s.createLimit { return .limited }
            if try Switches.value(tx, "kie.credits") != nil, try !KieStore.take(tx, "credits") { return .noCredits }
            let never = try KieStore.take(tx, "neverFinishNext") || Double.random(in: 0..<1) < s.neverFinishFraction
            let fail = try !never && (KieStore.take(tx, "failNext") || Double.random(in: 0..<1) < s.failFraction)
            let seq = try tx.query("SELECT nextval('sim.kie_task_ids')::bigint AS n")[0].requiredInt("n")
            let id = "task_sim_\(seq)_" + Crypto.hex(Crypto.randomBytes(3))
            try tx.query("""
                INSERT INTO sim.kie_tasks (task_id, seq, account, model, param, callback_url, created_at, queuing_at,
                                           generating_at, finishes_at, outcome, fail_code, fail_msg, result_ttl,
                                           callback_due_at, callback_copies)
                SELECT $1, $2, $3, $4, $5, $6, t, t + make_interval(secs => $7::float8),
                       t + make_interval(secs => $7::float8 + $8::float8),
                       CASE WHEN $9::bool THEN NULL ELSE t + make_interval(secs => $7::float8 + $8::float8 + $10::float8) END,
                       $11, $12, $13, make_interval(secs => $14::float8),
                       CASE WHEN $6::text IS NULL OR $9::bool OR NOT $15::bool THEN NULL
                            ELSE t + make_interval(secs => greatest(0, $7::float8 + $8::float8 + $10::float8 - $16::float8)) END,
                       $17
                FROM (SELECT clock_timestamp() AS t) now
                """, [id, seq, account, model, param, callback, s.waitingSeconds, s.queuingSeconds, never,
                      s.generatingSeconds, fail ? "fail" : "success", fail ? s.failCode : nil, fail ? s.failMsg : nil,
                      s.resultTTLSeconds, s.callbacks, s.callbackEarlySeconds, 1 + max(0, s.callbackDuplicates)])
            return .created(id)
        }
    }

    func recordInfo(_ request: Request) throws -> Response {
        let s = try settings()
        return try admit("recordInfo", request, s) { account in try recordInfo(request, account, s) }
    }

    func recordInfo(_ request: Request, _ account: String, _ s: KieSettings) throws -> Response {
        guard let id = request.query["taskId"], !id.isEmpty else { return answer(400, "taskId parameter is required", s) }
        let allowed = try db.withTransaction { tx in
            try tx.query("SELECT pg_advisory_xact_lock(hashtext('kie-poll:' || $1))", [account])
            try tx.query("DELETE FROM sim.kie_polls WHERE account = $1 AND at < clock_timestamp() - interval '5 minutes'", [account])
            let recent = try tx.query("""
                SELECT count(*)::int AS n FROM sim.kie_polls
                WHERE account = $1 AND at > clock_timestamp() - make_interval(secs => $2::float8)
                """, [account, s.recordWindowSeconds])[0].requiredInt("n")
            if recent >= s.recordLimit { return false }
            try tx.query("INSERT INTO sim.kie_polls VALUES ($1, clock_timestamp())", [account])
            return true
        }
        guard allowed else {
            try KieStore.count(db, "recordInfo.429")
            return answer(429, "Rate limit exceeded", s)
        }
        guard let task = try KieStore.task(db, id), task.account == account else {
            return answer(404, "Task not found", s)
        }
        return answer(200, "success", data: Self.data(task, final: false, resultsURL: options.resultsURL), s)
    }

    /// recordInfo's `data` (the callback body carries the same). `final` shows the outcome
    /// even while recordInfo still says `generating` (an early callback).
    static func data(_ t: KieStore.Task, final: Bool, resultsURL: String) -> JSON {
        let state = final ? t.outcome : t.state
        let finished = state == "success" || state == "fail"
        let resultJSON: JSON = ["resultUrls": [.string(resultURL(t.id, base: resultsURL))]]
        return [
            "taskId": .string(t.id), "model": .string(t.model), "state": .string(state), "param": .string(t.param),
            "resultJson": .string(state == "success" ? resultJSON.serialized : ""),
            "failCode": .string(state == "fail" ? t.failCode ?? "" : ""), "failMsg": .string(state == "fail" ? t.failMessage ?? "" : ""),
            "costTime": .int(finished ? (t.finishedMS ?? t.createdMS) - t.createdMS : 0),
            "completeTime": finished ? .int(t.finishedMS ?? t.createdMS) : .null,
            "createTime": .int(t.createdMS), "updateTime": .int(finished ? t.finishedMS ?? t.createdMS : t.createdMS),
        ]
    }

    static func resultURL(_ id: String, base: String) -> String { base + "/results/" + id + ".png" }

    /// A finished task's image while its URL lives; 404 before success and after the TTL.
    func result(_ name: String) throws -> Response {
        guard name.hasSuffix(".png"), let t = try KieStore.task(db, String(name.dropLast(4))), t.state == "success", !t.expired else {
            try KieStore.count(db, "results.404")
            return Response(status: 404, contentType: "text/plain; charset=utf-8", body: "Not Found")
        }
        try KieStore.count(db, "results")
        // A real result is a few MB from Kie's CDN: `resultLatencyMs` lets a benchmark feel that.
        let latency = try settings().resultLatencyMs
        if latency > 0 { System.sleep(seconds: latency / 1000) }
        return Response(status: 200, headers: [("Content-Type", "image/png"), ("Cache-Control", "no-store")], body: Self.image(t.id))
    }

    /// A 48×64 (3:4) PNG whose two colours come from the task id's hash and whose `tEXt`
    /// chunk names the task: valid, small, and different for every task.
    static func image(_ taskID: String) -> [UInt8] {
        let h = Crypto.sha256(Array(taskID.utf8))
        return PNG.encode(width: 48, height: 64, text: [("pinglass-task", taskID)]) { _, y in
            y < 32 ? (h[0], h[1], h[2]) : (h[3], h[4], h[5])
        }
    }
}

import Postgres

/// The simulated Kie's knobs. Tests set them with `POST /sim/control/kie/settings`
/// (`{"generatingSeconds": 0.2, "failNext": 2, "credits": null}`; null restores the default);
/// they live as `kie.<name>` rows of `sim.switches`, so every sim worker sees them. The
/// defaults are Kie as documented (docs/providers.md#kie-limits): 20 new tasks per 10 s, 10 recordInfo per second.
struct KieSettings {
    /// Every name the control API accepts, with what it does.
    static let documentation: [(String, String)] = [
        ("waitingSeconds", "time a new task stays `waiting` (default 0.5)"),
        ("queuingSeconds", "then `queuing` (default 0.5)"),
        ("generatingSeconds", "then `generating`, before success or fail (default 3)"),
        ("createLimit", "createTask calls accepted per sliding window per account (default 20)"),
        ("createWindowSeconds", "that window (default 10)"),
        ("recordLimit", "recordInfo calls per sliding window per key (default 10)"),
        ("recordWindowSeconds", "that window (default 1)"),
        ("credits", "balance; each created task costs 1, none left → 402 (unset: unlimited)"),
        ("failNext", "the next N created tasks end `fail`"),
        ("failFraction", "share of created tasks that end `fail` (0…1, random)"),
        ("failCode", "failCode of failed tasks (default \"500\")"),
        ("failMsg", "failMsg of failed tasks"),
        ("neverFinishNext", "the next N created tasks stay `generating` forever"),
        ("neverFinishFraction", "share of created tasks that never finish"),
        ("errorNext", "the next N API calls (see errorOn) answer errorCode without doing anything"),
        ("errorCode", "the injected error (default 500; 455 = maintenance)"),
        ("errorOn", "which calls errorNext hits: createTask, recordInfo or any (default any)"),
        ("errorsIn", "where non-429 errors show: status (HTTP status = code, default) or body (HTTP 200 + code)"),
        ("messageField", "envelope text field: msg (default) or message (both occur at Kie)"),
        ("resultTTLSeconds", "result URLs answer 404 this long after the task finished (default 3600)"),
        ("latencyMs", "delay before answering createTask and recordInfo (default 0)"),
        ("resultLatencyMs", "delay before serving a result image (default 0; a real portrait is a few MB from a CDN)"),
        ("callbacks", "POST the result to callBackUrl when a task finishes (default true)"),
        ("callbackDuplicates", "extra copies of each callback (default 0)"),
        ("callbackEarlySeconds", "send the callback this long before recordInfo shows the outcome (default 0)"),
        ("webhookHmacKey", "sign callbacks with this key (default KIE_WEBHOOK_HMAC_KEY; empty: unsigned)"),
    ]
    static func isKnown(_ name: String) -> Bool { documentation.contains { $0.0 == name } }

    var waitingSeconds = 0.5
    var queuingSeconds = 0.5
    var generatingSeconds = 3.0
    var createLimit = 20
    var createWindowSeconds = 10.0
    var recordLimit = 10
    var recordWindowSeconds = 1.0
    var failFraction = 0.0
    var failCode = "500"
    var failMsg = "Internal Error, Please try again later."
    var neverFinishFraction = 0.0
    var errorCode = 500
    var errorOn = "any"
    var errorsIn = "status"
    var messageField = "msg"
    var resultTTLSeconds = 3600.0
    var latencyMs = 0.0
    var resultLatencyMs = 0.0
    var callbacks = true
    var callbackDuplicates = 0
    var callbackEarlySeconds = 0.0
    var webhookHmacKey: String?

    init() {}

    init(_ db: some Queryable, defaultHmacKey: String?) throws {
        var v: [String: String] = [:]
        for r in try db.query("SELECT name, value FROM sim.switches WHERE name LIKE 'kie.%'", retry: .idempotent) {
            v[String(r.requiredString("name").dropFirst(4))] = r.requiredString("value")
        }
        func d(_ k: String, _ x: inout Double) { if let s = v[k], let n = Double(s) { x = n } }
        func i(_ k: String, _ x: inout Int) { if let s = v[k], let n = Int(s) { x = n } }
        func s(_ k: String, _ x: inout String) { if let t = v[k] { x = t } }
        d("waitingSeconds", &waitingSeconds); d("queuingSeconds", &queuingSeconds); d("generatingSeconds", &generatingSeconds)
        i("createLimit", &createLimit); d("createWindowSeconds", &createWindowSeconds)
        i("recordLimit", &recordLimit); d("recordWindowSeconds", &recordWindowSeconds)
        d("failFraction", &failFraction); s("failCode", &failCode); s("failMsg", &failMsg)
        d("neverFinishFraction", &neverFinishFraction)
        i("errorCode", &errorCode); s("errorOn", &errorOn); s("errorsIn", &errorsIn); s("messageField", &messageField)
        d("resultTTLSeconds", &resultTTLSeconds); d("latencyMs", &latencyMs)
        d("resultLatencyMs", &resultLatencyMs)
        callbacks = v["callbacks"].map { $0 != "false" } ?? true
        i("callbackDuplicates", &callbackDuplicates); d("callbackEarlySeconds", &callbackEarlySeconds)
        webhookHmacKey = v["webhookHmacKey"] ?? defaultHmacKey
    }
}

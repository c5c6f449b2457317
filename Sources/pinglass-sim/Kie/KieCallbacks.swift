#if canImport(Glibc)
import Glibc
#endif
import HTTPClient
import Postgres
import JSON
import Platform
import ProviderWire

/// Kie's callbacks (docs/providers.md#kie-callback): when a task with a `callBackUrl` finishes (or `callbackEarlySeconds`
/// before), POST the recordInfo-shaped body there, signed with `X-Webhook-Timestamp` and
/// `X-Webhook-Signature` when a key is set, 15 s timeout, sent once (plus `callbackDuplicates`
/// copies) and never retried, as far as Kie documents.
///
/// Tasks finish by the clock, not by a request, so something must notice: each sim worker
/// runs one sender thread that claims due callbacks with `SKIP LOCKED` (each is sent by one
/// worker) every 100 ms. The thread blocks every signal, so stop signals still reach the
/// worker's main thread, which owns the graceful-stop logic.
enum KieCallbacks {
    static let interval = 0.1

    /// Starts the sender thread of this worker process (call after fork).
    static func startThread(databaseURL: String, options: KieSimOptions) {
        let box = Unmanaged.passRetained(Sender(databaseURL: databaseURL, options: options)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { arg in
            var all = sigset_t()
            sigfillset(&all)
            pthread_sigmask(SIG_BLOCK, &all, nil)
            Unmanaged<Sender>.fromOpaque(arg!).takeRetainedValue().run()
            return nil
        }, box)
        if rc == 0 { pthread_detach(thread) } else { writeLog("Kie callbacks: pthread_create failed (\(rc))") }
    }

    final class Sender {
        let database: Database
        let options: KieSimOptions
        let http = HTTPClient()

        init(databaseURL: String, options: KieSimOptions) {
            database = Database(url: databaseURL, applicationName: "pinglass-sim-kie-callbacks")
            self.options = options
        }

        func run() {
            while true {
                do {
                    while try deliverDue(database.connection()) > 0 {}
                } catch {
                    writeLog("Kie callbacks: \(error)")
                    database.close()
                }
                database.finishRequest()
                System.sleep(seconds: KieCallbacks.interval)
            }
        }

        /// Claims (commits) up to 20 due callbacks, then sends them: claimed first, so a
        /// crash mid-send loses a callback rather than sending it twice unasked, like a
        /// sender without retries.
        func deliverDue(_ db: Connection) throws -> Int {
            let ids = try db.query("""
                UPDATE sim.kie_tasks SET callback_sent_at = clock_timestamp()
                WHERE task_id IN (SELECT task_id FROM sim.kie_tasks
                                  WHERE callback_sent_at IS NULL AND callback_due_at <= clock_timestamp()
                                  ORDER BY callback_due_at LIMIT 20 FOR UPDATE SKIP LOCKED)
                RETURNING task_id
                """).map { $0.requiredString("task_id") }
            guard !ids.isEmpty else { return 0 }
            let settings = try KieSettings(db, defaultHmacKey: options.webhookHmacKey)
            for id in ids {
                guard let task = try KieStore.task(db, id), let url = task.callbackURL else { continue }
                let body: JSON = ["code": 200, "msg": "success",
                                  "data": KieSim.data(task, final: true, resultsURL: options.resultsURL)]
                var headers: [(String, String)] = []
                if let key = settings.webhookHmacKey, !key.isEmpty {
                    let ts = String(Int(System.now()))
                    headers = [(KieWebhookSignature.timestampHeader, ts),
                               (KieWebhookSignature.signatureHeader, KieWebhookSignature.sign(taskID: id, timestamp: ts, key: key))]
                }
                var status = 0
                for _ in 0..<task.callbackCopies {
                    status = (try? http.send(.json("POST", url, body: body.bytes, headers: headers, timeout: 15)).status) ?? 0
                    try KieStore.count(db, "callbacks")
                }
                try db.execute("UPDATE sim.kie_tasks SET callback_status = $2 WHERE task_id = $1", [id, status], retry: .idempotent)
            }
            return ids.count
        }
    }
}

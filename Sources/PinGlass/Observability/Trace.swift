import Logging
import Postgres

/// The request ids a purchase was made with, for every log line about its payment or job:
/// `payment_request_id` (the `POST /api/payment/create` that made the payment) and
/// `job_request_id` (the `POST /api/generate` that made the job). Searching the logs of
/// the pool and of every duty for either id shows the purchase from its creation to its
/// last photo or refund. A payment or job made before the ids were kept (or by an operator)
/// has none, and a failed look-up adds nothing: a log line never fails the work.
///
/// The look-up takes a `Connection`, never a `Transaction`: a failed SELECT inside a
/// transaction would abort it and roll back the work the line reports. Inside a transaction
/// look the ids up first, or log after the commit. (A connection with a transaction open
/// refuses the statement without sending it, so it adds nothing then either.)
///
/// ```swift
/// log.info("photo stored", metadata: ["task_id": "\(task.id)"].merging(Trace.job(db, task.jobID)) { $1 })
/// ```
public enum Trace {
    /// The ids of a job and its payment.
    public static func job(_ db: Connection, _ jobID: Int?) -> Logger.Metadata {
        guard let jobID else { return [:] }
        return lookup(db, "FROM generation_jobs j LEFT JOIN payments p ON p.id = j.payment_id WHERE j.id = $1", jobID)
    }

    /// The ids of a payment and of the job it paid for, if any (one job per payment).
    public static func payment(_ db: Connection, _ paymentID: Int?) -> Logger.Metadata {
        guard let paymentID else { return [:] }
        return lookup(db, "FROM payments p LEFT JOIN generation_jobs j ON j.payment_id = p.id WHERE p.id = $1", paymentID)
    }

    /// `metadata` with the ids of `jobID` added.
    public static func job(_ db: Connection, _ jobID: Int?, _ metadata: Logger.Metadata) -> Logger.Metadata {
        metadata.merging(job(db, jobID)) { $1 }
    }

    /// `metadata` with the ids of `paymentID` added.
    public static func payment(_ db: Connection, _ paymentID: Int?, _ metadata: Logger.Metadata) -> Logger.Metadata {
        metadata.merging(payment(db, paymentID)) { $1 }
    }

    /// The same on this process's connection (none when it cannot be had).
    public static func job(_ deps: Dependencies, _ jobID: Int?, _ metadata: Logger.Metadata) -> Logger.Metadata {
        (try? deps.db()).map { job($0, jobID, metadata) } ?? metadata
    }

    public static func payment(_ deps: Dependencies, _ paymentID: Int?, _ metadata: Logger.Metadata) -> Logger.Metadata {
        (try? deps.db()).map { payment($0, paymentID, metadata) } ?? metadata
    }

    static func lookup(_ db: Connection, _ from: String, _ id: Int) -> Logger.Metadata {
        guard let row = try? db.query("SELECT p.request_id AS p, j.request_id AS j " + from, [id], retry: .idempotent).first else {
            return [:]
        }
        return ids(row)
    }

    static func ids(_ row: Row) -> Logger.Metadata {
        var m: Logger.Metadata = [:]
        if let p = row.string("p") { m["payment_request_id"] = "\(p)" }
        if let j = row.string("j") { m["job_request_id"] = "\(j)" }
        return m
    }
}

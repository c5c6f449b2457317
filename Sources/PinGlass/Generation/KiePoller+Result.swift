import WebURL
import Postgres
import LibCrypto
import ProviderWire

/// One recordInfo answer: what it means for the task.
extension KiePoller {
    /// Counts the answer and ends a task Kie failed; the result URL to download when Kie
    /// says success (nil otherwise: nothing to take now).
    func handleAnswer(_ task: ClaimedTask, _ answer: Result<KieTaskInfo, KieError>, _ report: inout Report) throws -> String? {
        let info: KieTaskInfo
        switch answer {
        case .failure(let error):
            // The task is already due again one interval later (the claim): nothing to undo.
            report.errors += 1
            try Counters.increment(deps.db(), error == .rateLimited ? "kie.poll_rate_limited" : "kie.poll_errors")
            log.warning("recordInfo failed", metadata: Trace.job(deps, task.jobID, [
                "task_id": "\(task.id)", "job_id": "\(task.jobID)", "error": "\(error)"]))
            return nil
        case .success(let answered):
            info = answered
        }
        report.polled += 1
        switch info.state {
        case .waiting, .queuing, .generating:
            if !task.overdue { report.stillRunning += 1 }
        case .fail:
            try fail(task, code: info.failCode ?? "kie_fail", message: info.failMessage ?? "Kie reported the task failed", &report)
        case .success:
            guard let url = info.resultURLs.first else {
                try fail(task, code: "no_result_url", message: "Kie reported success without a result URL", &report)
                return nil
            }
            return url
        }
        return nil
    }

    /// Takes a downloaded result (fetched at once, `poll`): stores it under its
    /// deterministic key (a retry overwrites the same object), then commits the photo row and
    /// the task's success in ONE transaction (with a delivery row when this photo completes a
    /// batch, `DeliveryBatches`), and finishes the job. A download or upload that failed leaves
    /// the task running: it is polled and fetched again next time (counted, never replaced by
    /// Kie's expiring URL). A result that can never be used fails the task.
    ///
    /// Crash windows: after the download or the upload nothing is committed, and the next
    /// poll repeats both onto the same key (an object stored for a task that then never
    /// succeeds is an orphan `prune` removes); after the commit the job waits for the
    /// `finishStranded` step of the next pass.
    func take(_ task: ClaimedTask, _ downloaded: Result<ResultDownload.Image, ResultDownloadError>, _ report: inout Report) throws {
        let image: ResultDownload.Image
        switch downloaded {
        case .success(let fetched): image = fetched
        case .failure(let error) where error.isPermanent: return try fail(task, code: error.code, message: error.description, &report)
        case .failure(let error): return try retryLater(task, counter: error.code, error, &report)
        }
        Crashpoint.hit("poll.after-download")

        let key = MediaKeys.result(jobID: task.jobID, taskID: task.id, contentType: image.contentType, secret: mediaSecret)
        do {
            try deps.media.put(key: key, bytes: image.bytes, contentType: image.contentType)
        } catch {
            return try retryLater(task, counter: "storage.upload_failures", error, &report)
        }
        Crashpoint.hit("poll.after-store")

        let committed = try deps.db().withTransaction { tx in
            try Self.storePhoto(tx, taskID: task.id, jobID: task.jobID, key: key, contentType: image.contentType, bytes: image.bytes)
        }
        Crashpoint.hit("poll.after-commit")
        guard committed else { return }   // someone else ended it first
        report.succeeded += 1
        log.info("photo stored", metadata: Trace.job(deps, task.jobID, ["task_id": "\(task.id)", "job_id": "\(task.jobID)"]))
        try finishJob(task.jobID, &report)
    }

    /// The commit of a taken result, inside the caller's transaction: the task first,
    /// guarded (a task another poller or the deadline ended gets no photo, false), then the
    /// photo, unique per task (invariant: one photo per task), then the batches this photo
    /// completes (`DeliveryBatches`; `deliver` wakes when this commits).
    ///
    /// Lock order, so that pollers storing photos of one job never deadlock: the photo's
    /// foreign key takes a key-share lock on the job row, and the batching then locks that
    /// row `FOR NO KEY UPDATE`, which does not conflict with another poller's key-share lock
    /// (a `FOR UPDATE` there did: each waited for the other, 40P01).
    static func storePhoto(_ tx: Transaction, taskID: Int, jobID: Int, key: String, contentType: String, bytes: [UInt8]) throws -> Bool {
        guard try tx.execute("""
            UPDATE generation_tasks SET state = 'succeeded', finished_at = now(), \(LeasedQueue.release)
            WHERE id = $1 AND state = 'running'
            """, [taskID]) == 1 else { return false }
        try tx.execute("""
            INSERT INTO generated_photos (job_id, task_id, avatar_id, storage_key, content_type, byte_size, sha256)
            SELECT j.id, $2, j.avatar_id, $3, $4, $5, $6 FROM generation_jobs j WHERE j.id = $1
            ON CONFLICT (task_id) DO NOTHING
            """, [jobID, taskID, key, contentType, bytes.count, Bytea(Crypto.sha256(bytes))])
        // Progressive delivery: a batch goes out as soon as its photos are stored, while the
        // rest are still generating.
        if try DeliveryBatches.addReadyBatches(tx, jobID: jobID) > 0 {
            try tx.execute("SELECT pg_notify('deliver', $1)", [String(jobID)])
        }
        return true
    }

    /// Ends the task as failed with a reason, and finishes its job.
    func fail(_ task: ClaimedTask, code: String, message: String, _ report: inout Report) throws {
        guard try endTask(task, code: code, message: message) else { return }
        report.failed += 1
        log.warning("task failed", metadata: Trace.job(deps, task.jobID, [
            "task_id": "\(task.id)", "job_id": "\(task.jobID)", "fail_code": "\(code)", "reason": "\(HTTPURL.redactingURLs(in: message))"]))
        try finishJob(task.jobID, &report)
    }

    /// Leaves the task running (due again after the poll interval, or failed at its
    /// deadline) and counts why, so health and alerts see a store or a CDN that keeps failing.
    func retryLater(_ task: ClaimedTask, counter: String, _ error: Error, _ report: inout Report) throws {
        report.errors += 1
        report.stillRunning += 1
        try Counters.increment(deps.db(), counter)
        log.warning("result not taken yet", metadata: Trace.job(deps, task.jobID, [
            "task_id": "\(task.id)", "job_id": "\(task.jobID)", "counter": "\(counter)", "error": "\(HTTPURL.redactingURLs(in: "\(error)"))"]))
    }
}

extension KiePoller {
    /// A result from a host not on `KIE_RESULT_HOSTS` is refused until its task's deadline
    /// and then refunded, though Kie made the photo: the operator hears of it at once (once
    /// per host and hour), with the entry that would let it through.
    func alertUnlistedHost(_ host: String) throws {
        let labels = host.split(separator: ".")
        let wildcard = labels.count > 2 ? "*." + labels.dropFirst().joined(separator: ".") : "*." + host
        try Alerts.raise(deps.db(), chatID: deps.config.adminTelegramChatID, key: "kie-result-host:" + String(host.prefix(120)),
                         text: "Kie results from \(host) are refused: the host is not on KIE_RESULT_HOSTS, so these photos fail at "
                             + "their deadline and are refunded. Add \(wildcard) (any subdomain) or the exact host \(host) to "
                             + "KIE_RESULT_HOSTS.")
    }
}

import Postgres

/// The sweep's alerts on the money path's health, beside the queues and duties of
/// `SweepAlerts`:
///
/// - `webhook-signature-failures`: at least `signatureFailureAlertCount` T-Bank notifications
///   refused for an unknown terminal or a wrong Token (`webhook_logs` outcome
///   `bad_signature`, answered 403) in the last `signatureFailureWindowSeconds`. A wrong
///   terminal password or a terminal switched between test and production refuses every
///   real notification (payments then settle only through `pinglass reconcile`); a burst
///   from elsewhere is someone probing the webhook.
/// - `payment-success-ratio`: of the payments created in the hour that ended
///   `paymentSuccessGraceSeconds` ago (a payment just made has had no time to be paid), at
///   least `paymentSuccessMinCount`, fewer than `paymentSuccessMinPercent` % succeeded
///   (`succeeded`, or refunded since). A broken payment form, a bank outage, or Init
///   failing.
///
/// Each names the admin page that explains it (`Condition.page`).
///
/// ```swift
/// let found = try SweepAlerts(config: Sweeper.Config(), adminChatID: 42).webhookSignatureFailures(db)
/// ```
extension SweepAlerts {
    func webhookSignatureFailures(_ db: Connection) throws -> [Condition] {
        let r = try db.query("""
            SELECT count(*)::int AS n, count(DISTINCT remote_addr)::int AS sources FROM webhook_logs
            WHERE source = 'tbank' AND outcome = 'bad_signature'
              AND received_at > now() - make_interval(secs => $1::int)
            """, [config.signatureFailureWindowSeconds], retry: .idempotent)[0]
        let n = r.requiredInt("n")
        guard n >= config.signatureFailureAlertCount else { return [] }
        return [Condition(key: "webhook-signature-failures", text: """
            \(n) T-Bank notification(s) refused for a wrong Token or an unknown terminal in the last \
            \(config.signatureFailureWindowSeconds / 60) min, from \(r.requiredInt("sources")) address(es). \
            Check the terminal passwords and the T-Bank mode (test or production) against the bank's cabinet; \
            until fixed, payments settle only through pinglass reconcile.
            """, page: "/admin/settings")]
    }

    func paymentSuccessRatio(_ db: Connection) throws -> [Condition] {
        let r = try db.query("""
            SELECT count(*)::int AS created,
                   count(*) FILTER (WHERE status IN ('succeeded', 'partially_refunded', 'refunded'))::int AS succeeded
            FROM payments
            WHERE created_at <= now() - make_interval(secs => $1::int)
              AND created_at > now() - make_interval(secs => $1::int + $2::int)
            """, [config.paymentSuccessGraceSeconds, config.paymentSuccessWindowSeconds], retry: .idempotent)[0]
        let created = r.requiredInt("created"), succeeded = r.requiredInt("succeeded")
        guard created >= config.paymentSuccessMinCount, succeeded * 100 < config.paymentSuccessMinPercent * created else { return [] }
        return [Condition(key: "payment-success-ratio", text: """
            Only \(succeeded) of \(created) payment(s) created in the hour before the last \
            \(config.paymentSuccessGraceSeconds / 60) min succeeded (\(succeeded * 100 / created) %, alert below \
            \(config.paymentSuccessMinPercent) %). Check the bank's status, init failures in the pinglass-fcgi log, \
            and the payment form.
            """, page: "/admin")]
    }
}

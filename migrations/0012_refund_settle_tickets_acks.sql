-- Refunds whose Cancel outcome is unknown, operators' refunds, and acknowledged alerts.

-- When the last Cancel of this refund that may have reached the bank went out: written
-- (compare-and-set on the lease) right before each Cancel call, NULL while none has gone
-- out, or after an operator confirmed that none landed (`pinglass resolve-refund
-- --not-landed`). Where the bank ignores ExternalRequestId (SBP), a refund whose GetState
-- shows nothing waits a settle period counted from here before it is held for a person,
-- and is never sent again by itself. Rows already `requested` may have a Cancel in flight:
-- they count from now.
ALTER TABLE refunds ADD COLUMN cancel_sent_at timestamptz;
UPDATE refunds SET cancel_sent_at = now() WHERE state = 'requested';

-- An operator's own key for a manual refund (a support ticket): one refund per ticket and
-- payment, so running `pinglass manual-refund` again after a dropped session adds nothing.
ALTER TABLE refunds ADD COLUMN ticket text CHECK (ticket IS NULL OR length(ticket) BETWEEN 1 AND 100);
CREATE UNIQUE INDEX refunds_payment_ticket_key ON refunds (payment_id, ticket) WHERE ticket IS NOT NULL;

-- An operator's acknowledgement of a repeating alert (`pinglass ack-alert`): the alert stays
-- quiet while everything it reports is among `covers` (e.g. the refund ids owed when it
-- was acknowledged) and `until` has not passed; anything new raises it again.
CREATE TABLE alert_acks (
    key         text PRIMARY KEY,
    covers      bigint[] NOT NULL,
    until       timestamptz NOT NULL,
    acked_by    text NOT NULL,
    reason      text NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    acked_at    timestamptz NOT NULL DEFAULT now()
);

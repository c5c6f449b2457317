-- Payment states after the review: `authorized` (a hold, not money) before `succeeded`;
-- only a `succeeded` payment can be consumed; notifications the state machine refuses are
-- logged as `refused`.

ALTER TABLE payments DROP CONSTRAINT payments_status_check;
ALTER TABLE payments ADD CONSTRAINT payments_status_check CHECK (status IN
    ('new', 'init_failed', 'pending', 'authorized', 'succeeded', 'rejected', 'canceled',
     'expired', 'partially_refunded', 'refunded'));

ALTER TABLE payments DROP CONSTRAINT payments_check2;
ALTER TABLE payments ADD CONSTRAINT payments_bank_id_required CHECK
    (status NOT IN ('pending', 'authorized', 'succeeded', 'partially_refunded', 'refunded') OR tbank_payment_id IS NOT NULL);

-- Consumption happens once, from `succeeded` only: a hold (`authorized`) or a payment
-- already (partly) refunded can never start a generation. A row check cannot say "at the
-- moment of consumption" (a consumed payment may be refunded later), so a trigger does.
CREATE FUNCTION payments_consume_only_succeeded() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.consumed_by_job IS NOT NULL AND OLD.consumed_by_job IS NULL
       AND (OLD.status <> 'succeeded' OR NEW.status <> 'succeeded') THEN
        RAISE EXCEPTION 'payment % is %: only a succeeded payment can be consumed', OLD.id, OLD.status
            USING ERRCODE = 'check_violation', CONSTRAINT = 'payments_consume_only_succeeded';
    END IF;
    IF OLD.consumed_by_job IS NOT NULL AND NEW.consumed_by_job IS DISTINCT FROM OLD.consumed_by_job THEN
        RAISE EXCEPTION 'payment % is already consumed by job %', OLD.id, OLD.consumed_by_job
            USING ERRCODE = 'check_violation', CONSTRAINT = 'payments_consume_only_succeeded';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER payments_consume_only_succeeded BEFORE UPDATE OF consumed_by_job ON payments
    FOR EACH ROW EXECUTE FUNCTION payments_consume_only_succeeded();

CREATE INDEX payments_awaiting_bank_idx ON payments (created_at) WHERE status IN ('new', 'pending', 'authorized');

ALTER TABLE webhook_logs DROP CONSTRAINT webhook_logs_outcome_check;
ALTER TABLE webhook_logs ADD CONSTRAINT webhook_logs_outcome_check CHECK (outcome IN
    ('applied', 'duplicate', 'stale', 'ignored', 'refused', 'bad_signature', 'mismatch',
     'unknown_payment', 'malformed'));

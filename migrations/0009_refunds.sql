-- Refunds (issue 8, item 2): the database refuses refunding more than was paid, counting
-- refunds still in flight, so manual and automatic refunds together can never exceed the
-- payment, whoever inserts them and however concurrently.

-- What a payment can still refund, in kopecks: the amount paid, minus what is already back
-- (the bank's own figure `refunded_kopecks`, which also counts refunds made in the bank's
-- dashboard, or our succeeded refunds when they say more), minus our refunds still in
-- flight (`pending`, `requested`). `excluding` leaves one refund row out (the row being
-- checked). The one rule: the trigger below and JobFinish both use it.
--
-- A refund whose Cancel reached the bank and whose notification already raised
-- `refunded_kopecks`, but which is not recorded `succeeded` yet, counts twice for a moment:
-- the rule errs on the side of refusing, never of refunding twice.
--
-- VOLATILE (the default) on purpose: called after the payment row is locked, it must see
-- what the transaction that held the lock committed.
CREATE FUNCTION refund_headroom(payment bigint, excluding bigint DEFAULT NULL) RETURNS int
LANGUAGE sql AS $$
    SELECT (p.amount_kopecks
            - GREATEST(p.refunded_kopecks, coalesce(sum(r.amount_kopecks) FILTER (WHERE r.state = 'succeeded'), 0))
            - coalesce(sum(r.amount_kopecks) FILTER (WHERE r.state IN ('pending', 'requested')), 0))::int
    FROM payments p LEFT JOIN refunds r ON r.payment_id = p.id AND r.id IS DISTINCT FROM excluding
    WHERE p.id = payment
    GROUP BY p.id, p.amount_kopecks, p.refunded_kopecks
$$;

-- Every write to refunds passes here:
-- * payment, amount, job and ExternalRequestId never change once written (the bank may
--   already hold a Cancel with exactly these);
-- * the state moves forward only: pending → requested → succeeded | failed, pending → failed,
--   and failed → pending when an operator re-queues it (`pinglass requeue-refund`);
-- * a refund that claims money (inserted, or re-queued) locks its payment row, so two
--   refunds of one payment are checked one after the other, and is refused unless the
--   payment is succeeded or partially refunded and the amount fits `refund_headroom`.
CREATE FUNCTION refunds_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    payment_status text;
    headroom int;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.payment_id <> OLD.payment_id OR NEW.amount_kopecks <> OLD.amount_kopecks
           OR NEW.external_request_id <> OLD.external_request_id OR NEW.job_id IS DISTINCT FROM OLD.job_id THEN
            RAISE EXCEPTION 'refund %: payment, amount, job and ExternalRequestId never change once written', OLD.id
                USING ERRCODE = 'check_violation', CONSTRAINT = 'refunds_immutable';
        END IF;
        IF NEW.state <> OLD.state AND (OLD.state, NEW.state) NOT IN
           (('pending', 'requested'), ('pending', 'failed'), ('requested', 'succeeded'), ('requested', 'failed'),
            ('failed', 'pending')) THEN
            RAISE EXCEPTION 'refund %: % → % is not a refund transition', OLD.id, OLD.state, NEW.state
                USING ERRCODE = 'check_violation', CONSTRAINT = 'refunds_forward_only';
        END IF;
        -- Only a failed refund coming back claims money again.
        IF NOT (OLD.state = 'failed' AND NEW.state <> 'failed') THEN
            RETURN NEW;
        END IF;
    ELSIF NEW.state = 'failed' THEN
        RETURN NEW;
    END IF;

    SELECT status INTO payment_status FROM payments WHERE id = NEW.payment_id FOR UPDATE;
    IF payment_status IS DISTINCT FROM 'succeeded' AND payment_status IS DISTINCT FROM 'partially_refunded' THEN
        RAISE EXCEPTION 'payment % is %: only a succeeded or partially refunded payment can be refunded',
                        NEW.payment_id, coalesce(payment_status, 'missing')
            USING ERRCODE = 'check_violation', CONSTRAINT = 'refunds_payment_refundable';
    END IF;
    headroom := refund_headroom(NEW.payment_id, NEW.id);
    IF NEW.amount_kopecks > headroom THEN
        RAISE EXCEPTION 'refund of % kopecks exceeds what payment % can still refund: % kopecks', NEW.amount_kopecks,
                        NEW.payment_id, greatest(headroom, 0)
            USING ERRCODE = 'check_violation', CONSTRAINT = 'refunds_within_payment',
                  DETAIL = 'paid minus what the bank already refunded minus refunds still in flight';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER refunds_guard BEFORE INSERT OR UPDATE OF state, payment_id, amount_kopecks, external_request_id, job_id
    ON refunds FOR EACH ROW EXECUTE FUNCTION refunds_guard();

-- What the bank answered to the Cancel that succeeded: the amount charged before it and
-- what stays charged after it (T-Bank `OriginalAmount`, `NewAmount`). The payment's
-- `refunded_kopecks` is its amount minus the latter.
ALTER TABLE refunds ADD COLUMN bank_original_kopecks int, ADD COLUMN bank_remaining_kopecks int;
ALTER TABLE refunds ADD CONSTRAINT refunds_succeeded_has_bank_amounts
    CHECK (state <> 'succeeded' OR (bank_original_kopecks IS NOT NULL AND bank_remaining_kopecks IS NOT NULL)) NOT VALID;

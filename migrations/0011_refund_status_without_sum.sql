-- A payment may be `partially_refunded` before we know how much went back.
--
-- A PARTIAL_REFUNDED notification (or GetState) moves the payment's status forward only:
-- its `Amount` is not read as a refunded sum (external-apis.md §1.10 does not say what it
-- means, and `refunded_kopecks` only ratchets up, so a wrong reading would overstate it
-- forever and cut every later refund). The sum comes from the bank's own Cancel answers
-- (`pinglass refund`). So the status can say "some money went back" (a refund from the
-- bank's dashboard, or ours whose answer is not recorded yet) while `refunded_kopecks` is
-- still 0; such a payment is no longer consumable (only `succeeded` is), which is the point.
--
-- 0001 named its CHECK constraints implicitly: the one to replace is found by its text.
DO $$
DECLARE
    old_name text;
BEGIN
    SELECT conname INTO old_name FROM pg_constraint
    WHERE conrelid = 'payments'::regclass AND contype = 'c'
      AND pg_get_constraintdef(oid) LIKE '%partially_refunded%refunded_kopecks > 0%';
    IF old_name IS NULL THEN
        RAISE EXCEPTION 'the partially_refunded CHECK of payments (migration 0001) was not found';
    END IF;
    EXECUTE format('ALTER TABLE payments DROP CONSTRAINT %I', old_name);
END $$;

ALTER TABLE payments ADD CONSTRAINT payments_partially_refunded_below_amount
    CHECK (status <> 'partially_refunded' OR refunded_kopecks < amount_kopecks);

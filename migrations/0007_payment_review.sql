-- Second review of the payment states.

-- Before 0003 an AUTHORIZED notification made a payment `succeeded`, and a later CONFIRMED
-- changed nothing. Unconsumed payments with no sign of a CONFIRMED go back to `authorized`:
-- `pinglass reconcile` asks the bank about every `authorized` payment and promotes the ones
-- really confirmed again.
UPDATE payments p SET status = 'authorized', updated_at = now()
WHERE status = 'succeeded' AND consumed_by_job IS NULL AND bank_status IS DISTINCT FROM 'CONFIRMED'
  AND NOT EXISTS (SELECT 1 FROM webhook_logs w
                  WHERE w.payment_id = p.id AND w.event_type = 'CONFIRMED' AND w.outcome IN ('applied', 'duplicate'));

-- The last bank status the state machine refused for this payment: a refusal is counted
-- once, however often the bank repeats it.
ALTER TABLE payments ADD COLUMN refused_bank_status text;

-- Superseded by payments_awaiting_bank_idx (0003).
DROP INDEX payments_pending_idx;

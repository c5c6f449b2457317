-- The request id of the call that made a payment (POST /api/payment/create) and of the one
-- that made a job (POST /api/generate): the duties put it on every log line about that
-- payment or job, so one search of the logs for it shows a purchase from its creation to
-- its last photo or refund. Nullable: rows made before, and by operators, have none.
ALTER TABLE payments ADD COLUMN request_id text CHECK (length(request_id) <= 64);
ALTER TABLE generation_jobs ADD COLUMN request_id text CHECK (length(request_id) <= 64);

-- The customer's account in the Mini App (docs/http-api.md#me) and the end of stored media
-- (docs/architecture.md#media-retention).

-- The address fiscal receipts go to, as the customer gave it (PATCH /api/me, or the e-mail
-- of POST /api/payment/create), and when the customer agreed to the processing of their
-- photos. Both are forgotten by DELETE /api/me/data. The payment rows keep the address their
-- receipt was sent to: a refund's receipt must name the same customer. At most 64
-- characters like payments.email: the receipt's Email takes no more (docs/providers.md#tbank-receipt).
ALTER TABLE users
    ADD COLUMN receipt_email text CONSTRAINT users_receipt_email_length CHECK (length(receipt_email) BETWEEN 3 AND 64),
    ADD COLUMN consent_at timestamptz;

-- A generated photo whose stored object was removed (the customer deleted their data, the
-- avatar went, or MEDIA_RETENTION_DAYS passed since its job ended). The row stays: payments,
-- refunds and `pinglass audit` count a job's photos (what the customer got decides what is
-- refunded), and the runtime role may not delete it. A removed photo is never shown, linked
-- or sent again, and `pinglass prune` treats its object as one no row names.
ALTER TABLE generated_photos ADD COLUMN media_removed_at timestamptz;

-- The retention pass of `pinglass prune`: photos still stored by their job's end, selfies
-- by upload time.
CREATE INDEX generated_photos_stored_idx ON generated_photos (job_id) WHERE media_removed_at IS NULL;
CREATE INDEX generation_jobs_finished_idx ON generation_jobs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX reference_photos_created_idx ON reference_photos (created_at);

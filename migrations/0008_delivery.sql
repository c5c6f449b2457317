-- Telegram delivery (issue 8): which delivery row carries each photo, and the pace of each
-- chat, shared by every `pinglass deliver` process on every VM.

-- Each photo travels in at most one delivery row, and only in a row of its own job: the
-- composite foreign key refuses attaching a photo to another job's delivery (the original
-- re-sent old photos). Albums made while a job runs (poll-kie) and the rest made at its
-- finish (JobFinish) take only photos whose delivery_id is NULL, under the job's row lock,
-- so each photo of a finished job ends in exactly one row (DeliveryBatches). Pruning an old
-- delivery row forgets the link, not the photo.
ALTER TABLE telegram_deliveries ADD CONSTRAINT telegram_deliveries_id_job_key UNIQUE (id, job_id);
ALTER TABLE generated_photos ADD COLUMN delivery_id bigint;
ALTER TABLE generated_photos ADD CONSTRAINT generated_photos_delivery_fkey
    FOREIGN KEY (delivery_id, job_id) REFERENCES telegram_deliveries (id, job_id) ON DELETE SET NULL (delivery_id);
CREATE INDEX generated_photos_undelivered_idx ON generated_photos (job_id) WHERE delivery_id IS NULL;
CREATE INDEX generated_photos_delivery_idx ON generated_photos (delivery_id) WHERE delivery_id IS NOT NULL;

-- Rows written before this migration name their photos in the payload only.
UPDATE generated_photos p SET delivery_id = d.id
FROM telegram_deliveries d, jsonb_array_elements(d.payload -> 'photos') AS e(photo)
WHERE d.kind IN ('album', 'photo') AND d.job_id = p.job_id AND (e.photo ->> 'id')::bigint = p.id
  AND p.delivery_id IS NULL;

-- When each chat may get its next message (Telegram: about one per second per chat; an
-- album of N photos counts as N). A claim holds the chat until its lease ends; the outcome
-- sets the real pace (N seconds after a sent album, retry_after after a 429). Kept here, not
-- in a process, so overlapping cron runs and several VMs keep one pace per chat.
CREATE TABLE telegram_chat_pacing (
    chat_id       bigint PRIMARY KEY,
    next_send_at  timestamptz NOT NULL
);

-- The claim's other lookups: expired leases, a chat's waiting rows, a job's earlier batches.
CREATE INDEX telegram_deliveries_lease_idx ON telegram_deliveries (lease_until) WHERE state = 'sending';
CREATE INDEX telegram_deliveries_chat_idx ON telegram_deliveries (chat_id) WHERE state IN ('pending', 'sending');

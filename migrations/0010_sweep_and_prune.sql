-- What `pinglass sweep` and `pinglass prune` need.

-- Server errors per minute, for the sweep's "sustained 5xx" alert. The FastCGI app adds one
-- to the current minute's row only when it answers 5xx (a few rows a day on a healthy
-- system, never a write per request); `pinglass prune` removes old minutes. An answer the
-- app gives because PostgreSQL itself is unreachable cannot be counted here: those show up
-- as the workers' silence and in nginx's log instead.
CREATE TABLE http_5xx_minutes (
    minute   timestamptz PRIMARY KEY,             -- date_trunc('minute', now())
    answers  int NOT NULL CHECK (answers > 0)
);

-- The sweep's lease rescues and deadline checks find their few rows without a scan
-- (expired delivery leases: telegram_deliveries_lease_idx of 0008).
CREATE INDEX refunds_lease_idx ON refunds (lease_until) WHERE state = 'requested';
CREATE INDEX generation_tasks_running_deadline_idx ON generation_tasks (deadline_at) WHERE state = 'running';

-- The prune's retention scans: finished deliveries by age, notifications by age (already
-- indexed: webhook_logs_received_idx), rate events by age.
CREATE INDEX telegram_deliveries_finished_idx ON telegram_deliveries (created_at) WHERE state IN ('sent', 'failed');
CREATE INDEX rate_events_at_idx ON rate_events (at);

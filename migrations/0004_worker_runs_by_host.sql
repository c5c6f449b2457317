-- Heartbeats per duty and host: every VM runs the same cron duties, and with one row per
-- duty the last host to finish overwrote the others, hiding a host whose passes fail.
ALTER TABLE worker_runs DROP CONSTRAINT worker_runs_pkey;
ALTER TABLE worker_runs ADD CONSTRAINT worker_runs_pkey PRIMARY KEY (name, host);

-- A sliding-window rate budget shared by every dispatcher on every VM (Kie allows 20 new
-- tasks per 10 s per account and drops the rest with 429). One row per call we are about
-- to make; RateBudget counts the rows inside the window under an advisory lock.
CREATE TABLE rate_events (
    id    bigserial PRIMARY KEY,
    name  text NOT NULL,
    at    timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX rate_events_name_at_idx ON rate_events (name, at);

-- The operator's cockpit: accounts, sessions, lockout and the audit trail's detail
-- (docs/admin.md).

-- Sessions: `expires_at` (0001) is the absolute end; each request that finds the session
-- alive moves `idle_expires_at` on; the address and agent it was opened from are shown to
-- the operator.
ALTER TABLE admin_sessions
    ADD COLUMN idle_expires_at timestamptz,
    ADD COLUMN last_seen_at timestamptz,
    ADD COLUMN address text,
    ADD COLUMN user_agent text;
UPDATE admin_sessions SET idle_expires_at = expires_at, last_seen_at = created_at;
-- A login sets both; a row made without them is idle-expired at once (fails closed).
ALTER TABLE admin_sessions
    ALTER COLUMN idle_expires_at SET DEFAULT now(),
    ALTER COLUMN idle_expires_at SET NOT NULL,
    ALTER COLUMN last_seen_at SET DEFAULT now(),
    ALTER COLUMN last_seen_at SET NOT NULL;
CREATE INDEX admin_sessions_admin_idx ON admin_sessions (admin_id);

-- Failed logins, one row each, counted per account and per address inside the lockout
-- window; a successful login forgets its account's rows, prune removes old ones.
CREATE TABLE admin_login_failures (
    id       bigserial PRIMARY KEY,
    login    text NOT NULL,
    address  text NOT NULL,
    at       timestamptz NOT NULL
);
CREATE INDEX admin_login_failures_login_idx ON admin_login_failures (login, at);
CREATE INDEX admin_login_failures_address_idx ON admin_login_failures (address, at);

-- Who changed what: the state before and after, where the request came from and its id.
-- The runtime role may only read and add rows here (docs/admin.md#audit).
ALTER TABLE admin_audit
    ADD COLUMN before jsonb,
    ADD COLUMN after jsonb,
    ADD COLUMN address text,
    ADD COLUMN request_id text;
CREATE INDEX admin_audit_created_idx ON admin_audit (created_at DESC, id DESC);

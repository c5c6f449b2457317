-- PinGlass data model. Every constraint encodes an invariant of architecture.md: the
-- database refuses what the code must never do. Never edit this file once applied; add
-- a new migration instead (pinglass migrate refuses changed files).

CREATE TABLE users (
    id               bigserial PRIMARY KEY,
    telegram_user_id bigint NOT NULL UNIQUE,
    username         text CHECK (length(username) <= 64),
    first_name       text CHECK (length(first_name) <= 256),
    last_name        text CHECK (length(last_name) <= 256),
    language_code    text CHECK (length(language_code) <= 16),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE avatars (
    id          bigserial PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users(id),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    status      text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'ready', 'processing', 'deleted')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX avatars_user_idx ON avatars (user_id, created_at);

CREATE TABLE reference_photos (
    id           bigserial PRIMARY KEY,
    avatar_id    bigint NOT NULL REFERENCES avatars(id) ON DELETE CASCADE,
    storage_key  text NOT NULL UNIQUE,
    content_type text NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png', 'image/webp')),
    byte_size    int NOT NULL CHECK (byte_size > 0 AND byte_size <= 10485760),
    sha256       bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (avatar_id, sha256)
);

-- Catalogue ------------------------------------------------------------------------------

CREATE TABLE tiers (
    id              text PRIMARY KEY CHECK (id ~ '^[a-z][a-z0-9_-]{0,31}$'),
    photos          int NOT NULL CHECK (photos > 0 AND photos <= 100),
    amount_kopecks  int NOT NULL CHECK (amount_kopecks > 0),
    title           text NOT NULL,
    active          boolean NOT NULL DEFAULT true,
    sort_order      int NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE styles (
    id           text PRIMARY KEY CHECK (id ~ '^[a-z][a-z0-9_-]{0,31}$'),
    name         text NOT NULL,
    description  text NOT NULL,
    active       boolean NOT NULL DEFAULT true,
    sort_order   int NOT NULL DEFAULT 0
);

CREATE TABLE prompts (
    id           bigserial PRIMARY KEY,
    style_id     text NOT NULL REFERENCES styles(id),
    position     int NOT NULL CHECK (position >= 0),
    text         text NOT NULL CHECK (length(text) BETWEEN 10 AND 4000),
    UNIQUE (style_id, position)
);

CREATE TABLE settings (
    key         text PRIMARY KEY,
    value       text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text NOT NULL DEFAULT 'system'
);

-- Payments -------------------------------------------------------------------------------

CREATE TABLE payments (
    id                bigserial PRIMARY KEY,
    user_id           bigint NOT NULL REFERENCES users(id),
    avatar_id         bigint REFERENCES avatars(id) ON DELETE SET NULL,
    order_id          text NOT NULL UNIQUE CHECK (length(order_id) <= 36),
    terminal          text NOT NULL CHECK (terminal IN ('test', 'production')),
    terminal_key      text NOT NULL,                      -- the TerminalKey used at Init
    tbank_payment_id  text UNIQUE,
    payment_url       text,
    tier              text NOT NULL REFERENCES tiers(id),
    photo_count       int  NOT NULL CHECK (photo_count > 0),
    amount_kopecks    int  NOT NULL CHECK (amount_kopecks > 0),
    email             text CHECK (length(email) <= 64),
    status            text NOT NULL DEFAULT 'new' CHECK (status IN
                      ('new', 'init_failed', 'pending', 'succeeded', 'rejected', 'canceled',
                       'expired', 'partially_refunded', 'refunded')),
    bank_status       text,
    init_error        text,
    consumed_by_job   bigint UNIQUE,
    refunded_kopecks  int NOT NULL DEFAULT 0,
    redirect_due_at   timestamptz NOT NULL,
    paid_at           timestamptz,
    last_checked_at   timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (refunded_kopecks >= 0 AND refunded_kopecks <= amount_kopecks),
    CHECK (consumed_by_job IS NULL OR status IN ('succeeded', 'partially_refunded', 'refunded')),
    CHECK (status NOT IN ('pending', 'succeeded', 'partially_refunded', 'refunded') OR tbank_payment_id IS NOT NULL),
    CHECK (status <> 'refunded' OR refunded_kopecks = amount_kopecks),
    CHECK (status <> 'partially_refunded' OR (refunded_kopecks > 0 AND refunded_kopecks < amount_kopecks))
);
CREATE INDEX payments_pending_idx ON payments (created_at) WHERE status IN ('new', 'pending');
CREATE INDEX payments_available_idx ON payments (user_id, created_at)
    WHERE status = 'succeeded' AND consumed_by_job IS NULL;
CREATE INDEX payments_user_created_idx ON payments (user_id, created_at);

CREATE TABLE webhook_logs (
    id           bigserial PRIMARY KEY,
    source       text NOT NULL CHECK (source IN ('tbank', 'kie')),
    payment_id   bigint REFERENCES payments(id),
    event_type   text,
    payload      jsonb NOT NULL,                -- Token removed
    outcome      text NOT NULL CHECK (outcome IN
                 ('applied', 'duplicate', 'stale', 'ignored', 'bad_signature', 'mismatch',
                  'unknown_payment', 'malformed')),
    reason       text,
    remote_addr  inet,
    request_id   text,
    received_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_logs_payment_idx ON webhook_logs (payment_id, received_at);
CREATE INDEX webhook_logs_received_idx ON webhook_logs (received_at);

-- Generation -----------------------------------------------------------------------------

CREATE TABLE generation_jobs (
    id             bigserial PRIMARY KEY,
    user_id        bigint NOT NULL REFERENCES users(id),
    avatar_id      bigint NOT NULL REFERENCES avatars(id),
    payment_id     bigint NOT NULL UNIQUE REFERENCES payments(id),
    style_id       text NOT NULL REFERENCES styles(id),
    total_photos   int NOT NULL CHECK (total_photos > 0),
    status         text NOT NULL DEFAULT 'queued' CHECK (status IN
                   ('queued', 'processing', 'completed', 'partial', 'failed', 'canceled')),
    succeeded      int NOT NULL DEFAULT 0 CHECK (succeeded >= 0),
    failed         int NOT NULL DEFAULT 0 CHECK (failed >= 0),
    deadline_at    timestamptz NOT NULL,
    finished_at    timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (succeeded + failed <= total_photos),
    CHECK ((status IN ('completed', 'partial', 'failed', 'canceled')) = (finished_at IS NOT NULL))
);
CREATE INDEX generation_jobs_user_idx ON generation_jobs (user_id, created_at);
CREATE INDEX generation_jobs_active_idx ON generation_jobs (deadline_at) WHERE status IN ('queued', 'processing');

ALTER TABLE payments ADD CONSTRAINT payments_consumed_by_job_fkey
    FOREIGN KEY (consumed_by_job) REFERENCES generation_jobs(id) DEFERRABLE INITIALLY DEFERRED;

CREATE TABLE generation_tasks (
    id             bigserial PRIMARY KEY,
    job_id         bigint NOT NULL REFERENCES generation_jobs(id) ON DELETE CASCADE,
    prompt_index   int NOT NULL CHECK (prompt_index >= 0),
    prompt_id      bigint REFERENCES prompts(id),
    prompt_text    text NOT NULL,
    state          text NOT NULL DEFAULT 'queued' CHECK (state IN
                   ('queued', 'submitting', 'running', 'succeeded', 'failed')),
    kie_task_id    text UNIQUE,
    attempts       int NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    run_at         timestamptz NOT NULL DEFAULT now(),
    lease_token    uuid,
    lease_until    timestamptz,
    submitted_at   timestamptz,
    deadline_at    timestamptz,
    finished_at    timestamptz,
    fail_code      text,
    fail_message   text,
    UNIQUE (job_id, prompt_index),
    CHECK (state <> 'running' OR kie_task_id IS NOT NULL),
    CHECK (state <> 'submitting' OR (lease_token IS NOT NULL AND lease_until IS NOT NULL)),
    CHECK ((state IN ('succeeded', 'failed')) = (finished_at IS NOT NULL))
);
CREATE INDEX generation_tasks_due_idx ON generation_tasks (state, run_at)
    WHERE state IN ('queued', 'running');
CREATE INDEX generation_tasks_lease_idx ON generation_tasks (lease_until) WHERE state = 'submitting';

CREATE TABLE generated_photos (
    id            bigserial PRIMARY KEY,
    job_id        bigint NOT NULL REFERENCES generation_jobs(id),
    task_id       bigint NOT NULL UNIQUE REFERENCES generation_tasks(id),
    avatar_id     bigint NOT NULL REFERENCES avatars(id),
    storage_key   text NOT NULL UNIQUE,
    content_type  text NOT NULL,
    byte_size     int NOT NULL CHECK (byte_size > 0),
    sha256        bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX generated_photos_job_idx ON generated_photos (job_id);

-- Delivery and refunds -------------------------------------------------------------------

CREATE TABLE telegram_deliveries (
    id              bigserial PRIMARY KEY,
    job_id          bigint REFERENCES generation_jobs(id),
    chat_id         bigint NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('album', 'photo', 'message', 'alert')),
    batch_no        int NOT NULL DEFAULT 0 CHECK (batch_no >= 0),
    payload         jsonb NOT NULL,
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sending', 'sent', 'failed')),
    attempts        int NOT NULL DEFAULT 0,
    run_at          timestamptz NOT NULL DEFAULT now(),
    lease_token     uuid,
    lease_until     timestamptz,
    give_up_at      timestamptz NOT NULL,
    last_error      text,
    telegram_message_ids bigint[],
    dedupe_key      text UNIQUE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    UNIQUE (job_id, batch_no),
    CHECK ((state = 'sent') = (sent_at IS NOT NULL))
);
CREATE INDEX telegram_deliveries_due_idx ON telegram_deliveries (run_at) WHERE state = 'pending';

CREATE TABLE refunds (
    id                   bigserial PRIMARY KEY,
    external_request_id  uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    payment_id           bigint NOT NULL REFERENCES payments(id),
    job_id               bigint UNIQUE REFERENCES generation_jobs(id),
    amount_kopecks       int NOT NULL CHECK (amount_kopecks > 0),
    reason               text NOT NULL,
    requested_by         text NOT NULL,
    state                text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'requested', 'succeeded', 'failed')),
    attempts             int NOT NULL DEFAULT 0,
    run_at               timestamptz NOT NULL DEFAULT now(),
    lease_token          uuid,
    lease_until          timestamptz,
    bank_status          text,
    last_error           text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    finished_at          timestamptz,
    CHECK ((state IN ('succeeded', 'failed')) = (finished_at IS NOT NULL))
);
CREATE INDEX refunds_due_idx ON refunds (run_at) WHERE state IN ('pending', 'requested');
CREATE INDEX refunds_payment_idx ON refunds (payment_id);

-- Administration -------------------------------------------------------------------------

CREATE TABLE admin_users (
    id             bigserial PRIMARY KEY,
    login          text NOT NULL UNIQUE CHECK (login ~ '^[a-zA-Z0-9_.@-]{3,64}$'),
    password_hash  text NOT NULL,
    role           text NOT NULL CHECK (role IN ('viewer', 'admin')),
    disabled       boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE admin_sessions (
    token_hash   bytea PRIMARY KEY,                -- sha256 of the cookie value
    admin_id     bigint NOT NULL REFERENCES admin_users(id) ON DELETE CASCADE,
    csrf_token   text NOT NULL,
    expires_at   timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE admin_audit (
    id          bigserial PRIMARY KEY,
    actor       text NOT NULL,                     -- admin login, or 'cli:<user>'
    action      text NOT NULL,
    target      text,
    details     jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Operations -----------------------------------------------------------------------------

CREATE TABLE worker_runs (
    name         text PRIMARY KEY,
    host         text NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    ok           boolean,
    summary      jsonb
);

CREATE TABLE rate_budget (
    name         text PRIMARY KEY,
    window_start timestamptz NOT NULL,
    used         int NOT NULL CHECK (used >= 0)
);

CREATE TABLE counters (
    name        text PRIMARY KEY,
    value       bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

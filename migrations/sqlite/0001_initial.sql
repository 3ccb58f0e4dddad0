-- Initial schema: guild budgets and policy, caps, reservations and the append-only ledger,
-- async jobs, chat conversations, and small key/value state (command-sync hash).
-- All credits are integers. All times are integer Unix seconds (UTC).

CREATE TABLE kv (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- One row per guild that has used the bot. balance = credits free to spend, reserved = credits
-- held by open reservations. Both always equal the sums of their ledger columns.
CREATE TABLE guild_budgets (
    guild_id           INTEGER PRIMARY KEY,
    period             TEXT    NOT NULL DEFAULT 'month' CHECK (period IN ('day', 'week', 'month', 'none')),
    allowance          INTEGER NOT NULL DEFAULT 0 CHECK (allowance >= 0),
    balance            INTEGER NOT NULL DEFAULT 0,
    reserved           INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    period_start       INTEGER NOT NULL,
    frozen             INTEGER NOT NULL DEFAULT 0 CHECK (frozen IN (0, 1)),
    created_at         INTEGER NOT NULL
) STRICT;

-- Per-guild settings an admin controls (quotas' companions, chat defaults, alerts, buttons).
CREATE TABLE guild_settings (
    guild_id            INTEGER PRIMARY KEY,
    confirm_threshold   INTEGER NOT NULL DEFAULT 50 CHECK (confirm_threshold >= 0),
    shared_buttons      INTEGER NOT NULL DEFAULT 0 CHECK (shared_buttons IN (0, 1)),
    default_chat_model  TEXT,
    system_prompt       TEXT,
    alert_channel_id    INTEGER,
    alert_thresholds    TEXT    NOT NULL DEFAULT '80,100'
) STRICT;

-- Caps per category and period. user_id 0 = the guild's default cap for every member.
-- cap NULL = unlimited.
CREATE TABLE user_caps (
    guild_id  INTEGER NOT NULL,
    user_id   INTEGER NOT NULL,
    category  TEXT    NOT NULL,
    cap       INTEGER CHECK (cap IS NULL OR cap >= 0),
    PRIMARY KEY (guild_id, user_id, category)
) STRICT;

CREATE TABLE role_caps (
    guild_id  INTEGER NOT NULL,
    role_id   INTEGER NOT NULL,
    category  TEXT    NOT NULL,
    cap       INTEGER CHECK (cap IS NULL OR cap >= 0),
    PRIMARY KEY (guild_id, role_id, category)
) STRICT;

-- A reservation holds an estimate until it is settled (to what Hypereal reported) or refunded.
CREATE TABLE reservations (
    key          TEXT    PRIMARY KEY,
    guild_id     INTEGER NOT NULL,
    user_id      INTEGER NOT NULL,
    channel_id   INTEGER,
    category     TEXT    NOT NULL,
    model        TEXT,
    estimate     INTEGER NOT NULL CHECK (estimate >= 0),
    actual       INTEGER CHECK (actual IS NULL OR actual >= 0),
    state        TEXT    NOT NULL DEFAULT 'held' CHECK (state IN ('held', 'settled', 'refunded')),
    period_start INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    closed_at    INTEGER
) STRICT;
CREATE INDEX reservations_user_period ON reservations (guild_id, user_id, category, period_start);
CREATE INDEX reservations_open ON reservations (guild_id, state);

-- Append-only: every change of a guild's counters is one row; key makes retries no-ops.
CREATE TABLE ledger (
    id              INTEGER PRIMARY KEY,
    key             TEXT    NOT NULL UNIQUE,
    guild_id        INTEGER NOT NULL,
    kind            TEXT    NOT NULL CHECK (kind IN ('grant', 'set', 'rollover', 'reserve', 'settle', 'refund')),
    balance_delta   INTEGER NOT NULL,
    reserved_delta  INTEGER NOT NULL,
    user_id         INTEGER,
    category        TEXT,
    reservation_key TEXT,
    actor_id        INTEGER,
    note            TEXT,
    created_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX ledger_guild_time ON ledger (guild_id, created_at);

CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
BEGIN
    SELECT RAISE(ABORT, 'the ledger is append-only');
END;
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
BEGIN
    SELECT RAISE(ABORT, 'the ledger is append-only');
END;

-- Community generation channels: rows say a category is enabled or disabled in a channel.
CREATE TABLE channel_policy (
    guild_id   INTEGER NOT NULL,
    channel_id INTEGER NOT NULL,
    category   TEXT    NOT NULL,
    enabled    INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    PRIMARY KEY (guild_id, channel_id, category)
) STRICT;

-- Budget alerts already posted, once per threshold per period.
CREATE TABLE budget_alerts (
    guild_id     INTEGER NOT NULL,
    period_start INTEGER NOT NULL,
    threshold    INTEGER NOT NULL,
    sent_at      INTEGER NOT NULL,
    PRIMARY KEY (guild_id, period_start, threshold)
) STRICT;

-- Generations: async jobs (video, audio, 3D) and finished images (so result buttons survive restarts).
-- Async jobs: submitting (row written before the request is sent) → pending (Hypereal's jobId) →
-- completed | failed → delivered; pending → cancelled. Every change is a conditional UPDATE.
-- webhook_token_hash is the SHA-256 of the job's webhook URL token (the token itself is never stored).
-- next_poll_at is when the poller next looks at the job (poll, orphan check, or delivery retry).
CREATE TABLE jobs (
    id                   TEXT    PRIMARY KEY,
    guild_id             INTEGER,
    channel_id           INTEGER NOT NULL,
    user_id              INTEGER NOT NULL,
    category             TEXT    NOT NULL,
    model                TEXT    NOT NULL,
    poll_type            TEXT    NOT NULL,
    request_json         TEXT    NOT NULL,
    state                TEXT    NOT NULL CHECK (state IN ('submitting', 'pending', 'completed', 'failed', 'delivered', 'cancelled')),
    reservation_key      TEXT,
    estimate             INTEGER NOT NULL DEFAULT 0,
    credits_used         INTEGER,
    hypereal_job_id      TEXT    UNIQUE,
    poll_url             TEXT,
    webhook_token_hash   TEXT    UNIQUE,
    webhook_payload      TEXT,
    output_url           TEXT,
    result_json          TEXT,
    error                TEXT,
    status_message_id    INTEGER,
    result_message_id    INTEGER,
    result_channel_id    INTEGER,
    interaction_token    TEXT,
    interaction_at       INTEGER,
    upload_limit         INTEGER,
    delivery_nonce       TEXT,
    poll_count           INTEGER NOT NULL DEFAULT 0,
    delivery_attempts    INTEGER NOT NULL DEFAULT 0,
    next_poll_at         REAL,     -- fractional seconds: poll delays may be sub-second (tests)
    deadline_at          INTEGER NOT NULL,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    finished_at          INTEGER
) STRICT;
CREATE INDEX jobs_open ON jobs (state, next_poll_at);
CREATE INDEX jobs_user ON jobs (user_id, created_at);

-- Chat: each turn (user question or model answer) with the Discord messages that show it.
-- A reply to any of a turn's messages continues that conversation; parent_id links the chain.
CREATE TABLE chat_turns (
    id          INTEGER PRIMARY KEY,
    guild_id    INTEGER,
    channel_id  INTEGER NOT NULL,
    user_id     INTEGER NOT NULL,
    parent_id   INTEGER REFERENCES chat_turns (id) ON DELETE SET NULL,
    role        TEXT    NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content     TEXT    NOT NULL,
    model       TEXT,
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE chat_messages (
    message_id  INTEGER PRIMARY KEY,
    turn_id     INTEGER NOT NULL REFERENCES chat_turns (id) ON DELETE CASCADE
) STRICT;

-- Finished image generations and edits, so result buttons (Reroll, Edit, Animate, To 3D) keep
-- working after a restart: a button's custom_id carries the generation id.
CREATE TABLE generations (
    id               TEXT    PRIMARY KEY,
    guild_id         INTEGER,
    channel_id       INTEGER NOT NULL,
    user_id          INTEGER NOT NULL,
    kind             TEXT    NOT NULL CHECK (kind IN ('image', 'image_edit')),
    model            TEXT    NOT NULL,
    prompt           TEXT    NOT NULL,
    options_json     TEXT    NOT NULL DEFAULT '{}',
    source_urls      TEXT    NOT NULL DEFAULT '[]',
    output_urls      TEXT    NOT NULL DEFAULT '[]',
    credits          INTEGER NOT NULL DEFAULT 0,
    message_id       INTEGER,
    attachment_urls  TEXT    NOT NULL DEFAULT '[]',
    created_at       INTEGER NOT NULL
) STRICT;
CREATE INDEX generations_user ON generations (user_id, created_at);

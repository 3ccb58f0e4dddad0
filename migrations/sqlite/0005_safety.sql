-- Community safety (issue 16): content rules, abuse limits and the admin audit log.
-- A server's own prompt blocklist: words and simple * wildcards; scope 'everywhere' or 'outside_age_restricted'.
CREATE TABLE moderation_rules (
    guild_id    INTEGER NOT NULL,
    pattern     TEXT    NOT NULL,
    scope       TEXT    NOT NULL DEFAULT 'everywhere' CHECK (scope IN ('everywhere', 'outside_age_restricted')),
    created_by  INTEGER NOT NULL,
    created_at  REAL    NOT NULL,
    PRIMARY KEY (guild_id, pattern)
) STRICT;
-- Members an admin has blocked from paid requests on a server.
CREATE TABLE blocked_members (
    guild_id    INTEGER NOT NULL,
    user_id     INTEGER NOT NULL,
    blocked_by  INTEGER NOT NULL,
    reason      TEXT,
    created_at  REAL    NOT NULL,
    PRIMARY KEY (guild_id, user_id)
) STRICT;
-- Seconds a member waits between two requests of one budget category (no row: no cooldown).
CREATE TABLE category_cooldowns (
    guild_id    INTEGER NOT NULL,
    category    TEXT    NOT NULL,
    seconds     INTEGER NOT NULL CHECK (seconds > 0),
    PRIMARY KEY (guild_id, category)
) STRICT;
-- 'off': the starter list of explicit terms applies everywhere; 'age_restricted': not in age-restricted channels.
ALTER TABLE guild_settings ADD COLUMN adult_content TEXT NOT NULL DEFAULT 'age_restricted'
    CHECK (adult_content IN ('off', 'age_restricted'));
-- NULL: MAX_INFLIGHT_PER_MEMBER applies.
ALTER TABLE guild_settings ADD COLUMN max_inflight INTEGER CHECK (max_inflight IS NULL OR max_inflight > 0);
-- Every admin or operator change: who, when, what, old -> new (guild_id 0: not about one server).
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id    INTEGER NOT NULL,
    actor_id    INTEGER,
    action      TEXT    NOT NULL,
    target      TEXT,
    old_value   TEXT,
    new_value   TEXT,
    created_at  REAL    NOT NULL
) STRICT;
CREATE INDEX audit_log_guild ON audit_log (guild_id, id);
-- The in-flight limit and the cooldown count a member's reservations inside the reserve transaction.
CREATE INDEX reservations_member_held ON reservations (guild_id, user_id, state);
CREATE INDEX reservations_member_category ON reservations (guild_id, user_id, category, created_at);

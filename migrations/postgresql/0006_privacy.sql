-- Privacy (issue 16): /forget-me, /privacy purge and retention.
-- A server that removed the bot (GUILD_DELETE without `unavailable`, i.e. not an outage) keeps its
-- budget for RETENTION_DAYS from removed_at; then its members' personal data is purged (purged_at).
-- Re-adding the bot deletes the row.
CREATE TABLE guild_removals (
    guild_id   BIGINT PRIMARY KEY,
    removed_at BIGINT  NOT NULL,
    purged_at  BIGINT
);
-- Retention walks rows by age, and a member's data is found by member: indexes for both.
CREATE INDEX chat_turns_time ON chat_turns (created_at);
CREATE INDEX chat_turns_user ON chat_turns (user_id, guild_id);
CREATE INDEX generations_time ON generations (created_at);
CREATE INDEX jobs_time ON jobs (created_at);
CREATE INDEX reservations_user ON reservations (user_id, guild_id);

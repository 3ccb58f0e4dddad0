-- Voice-clone consent (issue 15): a one-time notice per member per server before their first /voice-clone.
-- 1: the notice is shown (the default); 0: an admin turned it off for the server (/quota voice-clone-notice).
ALTER TABLE guild_settings ADD COLUMN voice_clone_notice INTEGER NOT NULL DEFAULT 1 CHECK (voice_clone_notice IN (0, 1));
-- Members who accepted the notice on a server (deleted by /forget-me and /privacy purge member).
CREATE TABLE voice_clone_consents (
    guild_id    INTEGER NOT NULL,
    user_id     INTEGER NOT NULL,
    accepted_at INTEGER NOT NULL,
    PRIMARY KEY (guild_id, user_id)
) STRICT;

-- Per-member defaults (issue 15): what a member gets when they leave a command's option out.
-- One row per member per server; NULL = no preference (the server's default, then the bot's, applies).
CREATE TABLE member_settings (
    guild_id        BIGINT           NOT NULL,
    user_id         BIGINT           NOT NULL,
    image_model     TEXT,
    aspect_ratio    TEXT,
    chat_model      TEXT,
    tts_model       TEXT,
    tts_format      TEXT,
    private_answers BIGINT CHECK (private_answers IN (0, 1)),
    updated_at      DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);

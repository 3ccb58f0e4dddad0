"""Typed settings, read from the environment or `.env`.

Field names are the environment variable names (lower-cased), so what an operator reads in
`.env.example` is what they set. Settings are built once, in the entry point; tests build
``Settings(...)`` directly with ``_env_file=None``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.credits.periods import Period
from bot.errors import ConfigError

# Hypereal's output CDNs (observed in production outputs). Operators extend the list with OUTPUT_HOSTS.
DEFAULT_OUTPUT_HOSTS = (
    "cdn.hypereal.tech",
    "cdn.hypereal.cloud",
    "storage.hypereal.tech",
    "storage.hypereal.cloud",
    "media.hypereal.tech",
    "media.hypereal.cloud",
)


# Relative to the working directory for `make run`; the Docker image sets DATABASE_PATH=/data/bot.sqlite3 (its volume).
DEFAULT_DATABASE_PATH = Path("data/bot.sqlite3")


def _blank(value: object) -> bool:
    """True for an empty or whitespace-only string (also inside a SecretStr): a variable present but not filled in."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return isinstance(value, str) and not value.strip()


def _split_csv(value: object) -> object:
    """Accept ``"a,b, c"`` from the environment as well as a real list."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, int):
        return [value]
    return value


class Settings(BaseSettings):
    """Everything the bot reads from its environment. See `.env.example` for each one explained."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True)

    # Discord
    discord_token: SecretStr = Field(description="The bot token from the Discord developer portal.")
    discord_api_base: str = "https://discord.com/api/v10"
    discord_gateway_url: str = "wss://gateway.discord.gg/"
    discord_dev_guild_id: int | None = None
    owner_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    message_content_intent: bool = False
    # Sharding: unset = the count Discord recommends (GET /gateway/bot); SHARD_IDS = the shards this process runs.
    shard_count: int | None = Field(default=None, ge=1, le=16384)
    shard_ids: Annotated[list[int] | None, NoDecode] = None

    # Hypereal
    hypereal_api_key: SecretStr | None = None
    hypereal_base_url: AnyHttpUrl = AnyHttpUrl("https://api.hypereal.tech")
    hypereal_sandbox: bool = False
    hypereal_requests_per_hour: int = Field(default=950, ge=1, le=1000)
    hypereal_timeout_seconds: float = Field(default=300.0, gt=0)

    # Storage and web server
    database_path: Path = DEFAULT_DATABASE_PATH
    # Unset: SQLite at DATABASE_PATH. postgresql://user:pass@host:port/db (or postgres://): PostgreSQL.
    database_url: SecretStr | None = None
    web_host: str = "0.0.0.0"  # noqa: S104 - the health check and webhooks must be reachable from outside the container
    web_port: int = Field(default=8080, ge=0, le=65535)
    public_url: AnyHttpUrl | None = None

    # Credits
    default_allowance: int = Field(default=1000, ge=0)
    default_period: Period = "month"
    confirm_threshold: int = Field(default=50, ge=0)
    # Abuse limit: requests one member may have in flight at once (a server can change it: /moderation limits).
    max_inflight_per_member: int = Field(default=3, ge=1, le=20)

    # Jobs and delivery
    job_deadline_minutes: int = Field(default=45, ge=1)
    job_poll_first_seconds: float = Field(default=15.0, gt=0)
    job_poll_max_seconds: float = Field(default=60.0, gt=0)
    # Unset: an unconfirmed submit stays adoptable by its webhook until JOB_DEADLINE_MINUTES.
    job_submit_grace_seconds: float | None = Field(default=None, gt=0)
    output_hosts: Annotated[list[str], NoDecode] = Field(default_factory=lambda: list(DEFAULT_OUTPUT_HOSTS))
    output_max_bytes: int = Field(default=200 * 1024 * 1024, ge=1024)

    # Chat
    default_chat_model: str = "claude-sonnet-4-6"
    chat_context_chars: int = Field(default=24_000, ge=1000)

    # Operating: /metrics is served only with a token (the web port faces the internet for webhooks).
    metrics_token: SecretStr | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"

    @field_validator("shard_ids", mode="before")
    @classmethod
    def _shard_list(cls, value: object) -> object:
        if _blank(value):
            return None
        return _split_csv(value)

    @field_validator("owner_ids", "output_hosts", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("output_hosts", mode="after")
    @classmethod
    def _default_hosts_when_blank(cls, value: list[str]) -> list[str]:
        return value or list(DEFAULT_OUTPUT_HOSTS)

    @field_validator(
        "discord_dev_guild_id",
        "public_url",
        "hypereal_api_key",
        "job_submit_grace_seconds",
        "metrics_token",
        "shard_count",
        "database_url",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `.env.example` leaves optional variables blank; blank (or only spaces) means "not set", not "invalid".
        return None if _blank(value) else value

    @field_validator("database_url")
    @classmethod
    def _database_url_is_postgres(cls, value: SecretStr | None) -> SecretStr | None:
        # Checked here so a typo is one line at start-up; the password is never part of the message.
        if value is None:
            return None
        url = value.get_secret_value().strip()
        parts = urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
            raise ValueError(
                "must be a PostgreSQL URL such as postgresql://user:password@host:5432/dbname"
                " (leave it unset for SQLite at DATABASE_PATH)"
            )
        try:
            parts.port  # noqa: B018 - raises for a port that is not a number
        except ValueError:
            raise ValueError("has a port that is not a number (postgresql://user:password@host:5432/dbname)") from None
        return SecretStr(url)

    @field_validator("discord_token", mode="before")
    @classmethod
    def _token_must_not_be_blank(cls, value: object) -> object:
        # `cp .env.example .env` leaves `DISCORD_TOKEN=` present but empty: that is "not set", said as such.
        if _blank(value):
            raise PydanticCustomError("missing", "Field required")
        return value.strip() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _shards_consistent(self) -> Settings:
        if self.shard_ids is None:
            return self
        if self.shard_count is None:
            raise ValueError(
                "SHARD_IDS needs SHARD_COUNT: set SHARD_COUNT to the total number of shards in .env or the environment"
            )
        wrong = sorted({i for i in self.shard_ids if not 0 <= i < self.shard_count})
        if wrong:
            raise ValueError(
                f"SHARD_IDS has {', '.join(map(str, wrong))}, outside 0..{self.shard_count - 1} for SHARD_COUNT="
                f"{self.shard_count}: fix SHARD_IDS in .env or the environment"
            )
        if len(set(self.shard_ids)) != len(self.shard_ids):
            raise ValueError("SHARD_IDS lists a shard twice: fix SHARD_IDS in .env or the environment")
        if not self.shard_ids:
            raise ValueError("SHARD_IDS is empty: list the shards this process runs, or leave it unset for all")
        return self

    @model_validator(mode="after")
    def _key_required_without_sandbox(self) -> Settings:
        if not self.hypereal_sandbox and self.hypereal_api_key is None:
            raise ValueError(
                "HYPEREAL_API_KEY is not set (or empty): set HYPEREAL_API_KEY=... in .env or the environment, "
                "or HYPEREAL_SANDBOX=1 to try the bot without spending credits (see .env.example)"
            )
        return self

    @property
    def webhooks_enabled(self) -> bool:
        """Webhooks need a public URL Hypereal can reach; without one the poller does all the work."""
        return self.public_url is not None


def describe_settings_error(exc: ValidationError) -> str:
    """One line naming the first bad variable and how to fix it (never echoing the value, which may be a secret)."""
    error = exc.errors(include_url=False, include_input=False)[0]
    names = [str(part) for part in error["loc"] if isinstance(part, str)]
    if not names:
        message = str(error["msg"]).removeprefix("Value error, ")
        if ".env" in message:
            return f"{message}."
        return f"Configuration error: {message}. Set it in .env or the environment (see .env.example)."
    variable = names[0].upper()
    if error["type"] == "missing":
        return f"{variable} is not set (or empty): set {variable}=... in .env or the environment (see .env.example)."
    return f"{variable} is invalid: {error['msg']}. Fix it in .env or the environment (see .env.example)."


def load_settings(**overrides: object) -> Settings:
    """Build the settings once (environment, then `.env`), turning validation errors into one clear ConfigError line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(describe_settings_error(exc)) from None


class StorageSettings(BaseSettings):
    """Only the database location, read like :class:`Settings`: ``python -m bot backup`` needs nothing else.

    A backup must work from cron or ``docker exec`` even while, say, a token is being rotated.
    """

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True)

    database_path: Path = DEFAULT_DATABASE_PATH


def load_storage_settings(**overrides: object) -> StorageSettings:
    """The database location from the environment or `.env` (a bad value is one clear ConfigError line)."""
    try:
        return StorageSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(describe_settings_error(exc)) from None

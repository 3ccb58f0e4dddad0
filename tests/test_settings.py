"""Settings: environment names, defaults, and one-line errors that never echo secrets."""

from __future__ import annotations

import pytest

from bot.errors import ConfigError
from bot.settings import DEFAULT_OUTPUT_HOSTS, Settings, load_settings, load_storage_settings

ALL_NAMES = (
    "DISCORD_TOKEN",
    "HYPEREAL_API_KEY",
    "HYPEREAL_BASE_URL",
    "DISCORD_API_BASE",
    "DISCORD_GATEWAY_URL",
    "DISCORD_DEV_GUILD_ID",
    "OWNER_IDS",
    "DATABASE_PATH",
    "WEB_HOST",
    "WEB_PORT",
    "PUBLIC_URL",
    "HYPEREAL_SANDBOX",
    "OUTPUT_HOSTS",
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (*ALL_NAMES, "MESSAGE_CONTENT_INTENT", "LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_environment_names_are_read(clean_env: pytest.MonkeyPatch) -> None:
    env = {
        "DISCORD_TOKEN": "tok-123456",
        "HYPEREAL_API_KEY": "ck_secret",
        "HYPEREAL_BASE_URL": "https://api.hypereal.cloud",
        "DISCORD_API_BASE": "http://127.0.0.1:9/api/v10",
        "DISCORD_GATEWAY_URL": "ws://127.0.0.1:9/gateway",
        "DISCORD_DEV_GUILD_ID": "42",
        "OWNER_IDS": "1, 2,3",
        "DATABASE_PATH": "/tmp/x.sqlite3",
        "WEB_HOST": "127.0.0.1",
        "WEB_PORT": "9090",
        "PUBLIC_URL": "https://bot.example.com",
        "HYPEREAL_SANDBOX": "1",
        "OUTPUT_HOSTS": "cdn.example.com,http://127.0.0.1:8765",
    }
    for name, value in env.items():
        clean_env.setenv(name, value)
    settings = load_settings(_env_file=None)
    assert settings.discord_token.get_secret_value() == "tok-123456"
    assert settings.hypereal_api_key is not None
    assert settings.hypereal_api_key.get_secret_value() == "ck_secret"
    assert str(settings.hypereal_base_url).startswith("https://api.hypereal.cloud")
    assert settings.discord_api_base == "http://127.0.0.1:9/api/v10"
    assert settings.discord_gateway_url == "ws://127.0.0.1:9/gateway"
    assert settings.discord_dev_guild_id == 42
    assert settings.owner_ids == [1, 2, 3]
    assert str(settings.database_path) == "/tmp/x.sqlite3"
    assert (settings.web_host, settings.web_port) == ("127.0.0.1", 9090)
    assert settings.webhooks_enabled
    assert settings.hypereal_sandbox is True
    assert settings.output_hosts == ["cdn.example.com", "http://127.0.0.1:8765"]


def test_defaults(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("DISCORD_TOKEN", "tok")
    clean_env.setenv("HYPEREAL_API_KEY", "key")
    settings = load_settings(_env_file=None)
    assert str(settings.hypereal_base_url).rstrip("/") == "https://api.hypereal.tech"
    assert settings.discord_api_base == "https://discord.com/api/v10"
    assert settings.discord_gateway_url == "wss://gateway.discord.gg/"
    assert str(settings.database_path) == "data/bot.sqlite3"
    assert settings.web_port == 8080
    assert settings.public_url is None
    assert not settings.webhooks_enabled
    assert settings.hypereal_sandbox is False
    assert settings.owner_ids == []
    assert settings.output_hosts == list(DEFAULT_OUTPUT_HOSTS)


def test_blank_optional_values_mean_unset(clean_env: pytest.MonkeyPatch) -> None:
    for name in ("DISCORD_DEV_GUILD_ID", "PUBLIC_URL", "OUTPUT_HOSTS", "OWNER_IDS"):
        clean_env.setenv(name, "")
    settings = load_settings(_env_file=None, discord_token="t", hypereal_sandbox=True)
    assert settings.discord_dev_guild_id is None
    assert settings.public_url is None
    assert settings.output_hosts == list(DEFAULT_OUTPUT_HOSTS)


def test_missing_token_is_one_clear_line(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(_env_file=None)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("DISCORD_TOKEN is not set")
    assert ".env" in message


def test_invalid_value_names_the_variable(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("WEB_PORT", "abc")
    with pytest.raises(ConfigError, match=r"^WEB_PORT is invalid"):
        load_settings(_env_file=None, discord_token="t", hypereal_sandbox=True)


def test_api_key_required_without_sandbox(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="HYPEREAL_API_KEY"):
        load_settings(_env_file=None, discord_token="t")


def test_secrets_do_not_show_in_repr_or_errors(clean_env: pytest.MonkeyPatch) -> None:
    settings = Settings(_env_file=None, discord_token="tok-SECRET-1", hypereal_api_key="key-SECRET-2")
    assert "SECRET" not in repr(settings)
    assert "SECRET" not in str(settings)
    clean_env.setenv("WEB_PORT", "key-SECRET-3")
    with pytest.raises(ConfigError) as info:
        load_settings(_env_file=None, discord_token="tok-SECRET-1", hypereal_api_key="key-SECRET-2")
    assert "SECRET" not in str(info.value)


@pytest.mark.parametrize("blank", ["", "   ", "\t\n"])
def test_a_present_but_blank_token_counts_as_missing(clean_env: pytest.MonkeyPatch, blank: str) -> None:
    clean_env.setenv("DISCORD_TOKEN", blank)
    with pytest.raises(ConfigError, match=r"^DISCORD_TOKEN is not set \(or empty\)"):
        load_settings(_env_file=None, hypereal_sandbox=True)


@pytest.mark.parametrize("blank", ["", "  "])
def test_a_blank_hypereal_key_counts_as_missing_without_the_sandbox(clean_env: pytest.MonkeyPatch, blank: str) -> None:
    clean_env.setenv("HYPEREAL_API_KEY", blank)
    with pytest.raises(ConfigError, match=r"^HYPEREAL_API_KEY is not set \(or empty\)") as info:
        load_settings(_env_file=None, discord_token="t")
    assert "HYPEREAL_SANDBOX=1" in str(info.value)
    settings = load_settings(_env_file=None, discord_token="t", hypereal_sandbox=True)
    assert settings.hypereal_api_key is None


def test_the_token_is_stripped_of_surrounding_spaces(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("DISCORD_TOKEN", "  tok-123456 \n")
    settings = load_settings(_env_file=None, hypereal_sandbox=True)
    assert settings.discord_token.get_secret_value() == "tok-123456"


def test_metrics_token_and_log_format(clean_env: pytest.MonkeyPatch) -> None:
    settings = load_settings(_env_file=None, discord_token="t", hypereal_sandbox=True, metrics_token=" ")
    assert settings.metrics_token is None
    assert settings.log_format == "text"
    settings = load_settings(_env_file=None, discord_token="t", hypereal_sandbox=True, metrics_token="m" * 32,
                             log_format="json")  # fmt: skip
    assert settings.metrics_token is not None
    assert "m" * 32 not in repr(settings)
    assert settings.log_format == "json"
    with pytest.raises(ConfigError, match=r"^LOG_FORMAT is invalid"):
        load_settings(_env_file=None, discord_token="t", hypereal_sandbox=True, log_format="xml")


def test_backup_needs_only_the_database_path(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("DATABASE_PATH", "/srv/bot/bot.sqlite3")
    assert str(load_storage_settings(_env_file=None).database_path) == "/srv/bot/bot.sqlite3"

"""compose.scale.yaml (README: Scaling out): PostgreSQL and two bot shards, parsed as Compose would read it.

No Docker engine (and no compose plugin) runs where the tests run, so the file is loaded as YAML (anchors and
merge keys resolved), ``${VAR:?message}`` is interpolated the way Compose does, and each shard's environment is
fed to the bot's own settings validation.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.errors import ConfigError
from bot.settings import load_settings
from tests.test_docker import parse_dockerfile

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "Pg0secret"
_VARIABLE = re.compile(r"\$\{(\w+)(?::\?([^}]*))?\}")


def _interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR}`` / ``${VAR:?error}``: an unset (or empty) required variable stops Compose with the error."""

    def value(match: re.Match[str]) -> str:
        name, required = match.group(1), match.group(2)
        if not env.get(name):
            if required is not None:
                raise ValueError(f"required variable {name} is missing a value: {required}")
            return ""
        return env[name]

    return _VARIABLE.sub(value, text)


def _compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    text = (ROOT / "compose.scale.yaml").read_text(encoding="utf-8")
    loaded = yaml.safe_load(_interpolate(text, {"POSTGRES_PASSWORD": PASSWORD} if env is None else env))
    assert isinstance(loaded, dict)
    return loaded


def _shards(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: service for name, service in compose["services"].items() if name.startswith("shard-")}


def test_postgres_has_a_volume_a_health_check_and_a_required_password() -> None:
    compose = _compose()
    postgres = compose["services"]["postgres"]
    assert postgres["image"].startswith("postgres:")
    assert postgres["restart"] == "unless-stopped"
    assert postgres["environment"]["POSTGRES_PASSWORD"] == PASSWORD
    volume, _, mount = postgres["volumes"][0].partition(":")
    assert mount == "/var/lib/postgresql/data"
    assert volume in compose["volumes"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    with pytest.raises(ValueError, match="POSTGRES_PASSWORD"):
        _compose({})


def test_two_shards_cover_shard_count_each_with_its_web_port_health_check_and_postgres() -> None:
    compose = _compose()
    postgres = compose["services"]["postgres"]["environment"]
    shards = _shards(compose)
    assert sorted(shards) == ["shard-0", "shard-1"]
    ids: list[int] = []
    ports: set[str] = set()
    for service in shards.values():
        env = {key: str(value) for key, value in service["environment"].items()}
        assert service["env_file"] == ".env"
        assert service["restart"] == "unless-stopped"
        assert service["depends_on"] == {"postgres": {"condition": "service_healthy"}}
        assert "/healthz" in " ".join(service["healthcheck"]["test"])
        assert "WEB_PORT" in " ".join(service["healthcheck"]["test"])  # probes the port this shard serves
        assert service["ports"] == [f"{env['WEB_PORT']}:{env['WEB_PORT']}"]
        ports.add(env["WEB_PORT"])
        # The bot's own validation accepts what the file sets (a typo here would stop the shard at start-up).
        settings = load_settings(
            _env_file=None, discord_token="t", hypereal_sandbox=True, **{k.lower(): v for k, v in env.items()}
        )
        assert settings.shard_count == 2
        assert settings.database_url is not None
        url = settings.database_url.get_secret_value()
        user, db = postgres["POSTGRES_USER"], postgres["POSTGRES_DB"]
        assert url == f"postgresql://{user}:{PASSWORD}@postgres:5432/{db}"
        ids.extend(settings.shard_ids or [])
    assert sorted(ids) == [0, 1]  # every shard runs somewhere, none twice
    assert len(ports) == 2


def test_a_wrong_shard_setting_would_be_refused() -> None:
    # The validation the previous test leans on does refuse: SHARD_IDS outside 0..SHARD_COUNT-1.
    with pytest.raises(ConfigError, match="SHARD_IDS"):
        load_settings(_env_file=None, discord_token="t", hypereal_sandbox=True, shard_count="2", shard_ids="2")


def test_the_migrate_service_copies_compose_yaml_s_database_into_the_postgres_service() -> None:
    compose = _compose()
    dockerfile = parse_dockerfile((ROOT / "Dockerfile").read_text(encoding="utf-8"))
    single = (ROOT / "compose.yaml").read_text(encoding="utf-8")
    match = re.search(rf"^      - (\S+):{dockerfile.volumes[0]}$", single, re.M)
    assert match is not None
    migrate = compose["services"]["migrate"]
    assert migrate["profiles"] == ["migrate"]  # never started by `up`
    assert migrate["volumes"] == [f"{match.group(1)}:{dockerfile.volumes[0]}"]
    assert match.group(1) in compose["volumes"]
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    command = migrate["command"]
    assert command[:4] == ["python", "-m", "bot", "migrate-to-postgres"]
    assert command[command.index("--from") + 1] == dockerfile.env["DATABASE_PATH"]
    assert command[command.index("--to") + 1] == compose["services"]["shard-0"]["environment"]["DATABASE_URL"]


def test_the_readme_documents_the_scale_out_compose_file() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Scaling out", 1)[1].split("\n## ", 1)[0]
    assert "docker compose -f compose.scale.yaml up -d" in section
    assert "docker compose -f compose.scale.yaml run --rm migrate" in section
    assert "python -m bot migrate-to-postgres --from data/bot.sqlite3 --to $DATABASE_URL" in section
    for setting in ("DATABASE_URL", "SHARD_COUNT", "SHARD_IDS", "DISCORD_API_BASE"):
        assert f"`{setting}" in section

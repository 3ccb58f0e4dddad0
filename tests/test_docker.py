"""Docker as the README documents it: the Dockerfile against the settings, compose.yaml, and a first start.

No Docker engine runs where the tests run, so the image's first start is reproduced instead: a root-owned
copy of what the Dockerfile copies, the Dockerfile's ``ENV`` lines, ``.env.example`` read the way
``docker run --env-file`` reads it (an empty ``KEY=`` sets an empty value, and every value set wins over
the image's), and ``python -m bot`` run as an unprivileged user (uid 65534) that may write only the
data directory, like the image's user and its volume.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pytest

from bot.settings import Settings
from tests.fakediscord import FakeDiscord

ROOT = Path(__file__).resolve().parent.parent
NOBODY = 65534
# Python's and pip's own variables, not the bot's settings.
RUNTIME_ENV = {"PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PIP_NO_CACHE_DIR", "PIP_DISABLE_PIP_VERSION_CHECK"}


@dataclass
class Dockerfile:
    """The instructions this test cares about, parsed from the Dockerfile."""

    env: dict[str, str] = field(default_factory=dict)
    user: str = ""
    volumes: list[str] = field(default_factory=list)
    expose: list[str] = field(default_factory=list)
    healthcheck: str = ""
    runs: list[str] = field(default_factory=list)
    copies: list[list[str]] = field(default_factory=list)
    workdir: str = ""


def parse_dockerfile(text: str) -> Dockerfile:
    """Join continuation lines, drop comments, and collect ENV/USER/VOLUME/EXPOSE/HEALTHCHECK/RUN/COPY."""
    logical: list[str] = []
    buffer = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buffer and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        logical.append(buffer + line)
        buffer = ""
    parsed = Dockerfile()
    for line in logical:
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        rest = rest.strip()
        if instruction == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                parsed.env[key] = value
        elif instruction == "USER":
            parsed.user = rest
        elif instruction == "VOLUME":
            parsed.volumes.extend(json.loads(rest) if rest.startswith("[") else rest.split())
        elif instruction == "EXPOSE":
            parsed.expose.extend(rest.split())
        elif instruction == "HEALTHCHECK":
            parsed.healthcheck = rest
        elif instruction == "RUN":
            parsed.runs.append(rest)
        elif instruction == "COPY":
            parsed.copies.append(rest.split())
        elif instruction == "WORKDIR":
            parsed.workdir = rest
    return parsed


def parse_env_file(text: str) -> dict[str, str]:
    """``docker run --env-file`` semantics: ``KEY=VALUE`` taken literally (``KEY=`` is an empty value), ``#`` lines
    and blank lines skipped, a bare ``KEY`` passed through from the caller's environment when set there."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if sep:
            values[key] = value
        elif key in os.environ:
            values[key] = os.environ[key]
    return values


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return parse_dockerfile((ROOT / "Dockerfile").read_text(encoding="utf-8"))


def test_dockerfile_env_is_made_of_real_settings_with_valid_values(dockerfile: Dockerfile) -> None:
    settings_env = {k: v for k, v in dockerfile.env.items() if k not in RUNTIME_ENV}
    fields = {name.upper() for name in Settings.model_fields}
    assert set(settings_env) <= fields, set(settings_env) - fields
    parsed = Settings(_env_file=None, discord_token="t", hypereal_sandbox=True,  # type: ignore[call-arg]
                      **{k.lower(): v for k, v in settings_env.items()})  # fmt: skip
    assert str(parsed.database_path) == settings_env["DATABASE_PATH"]


def test_the_database_lives_on_the_volume_owned_by_the_non_root_user(dockerfile: Dockerfile) -> None:
    assert dockerfile.user
    assert dockerfile.user not in ("root", "0")
    assert len(dockerfile.volumes) == 1
    volume = PurePosixPath(dockerfile.volumes[0])
    database = PurePosixPath(dockerfile.env["DATABASE_PATH"])
    assert database.is_absolute()
    assert volume in database.parents
    creates_user = [run for run in dockerfile.runs if re.search(rf"useradd\b.*\b{dockerfile.user}\b", run)]
    assert creates_user, "the USER is created by a RUN useradd"
    assert re.search(rf"chown\s+{dockerfile.user}(:{dockerfile.user})?\s+{volume}\b", creates_user[0])


def test_the_health_check_probes_healthz_on_the_exposed_web_port(dockerfile: Dockerfile) -> None:
    port = dockerfile.env["WEB_PORT"]
    assert dockerfile.expose == [port]
    assert "/healthz" in dockerfile.healthcheck
    assert "WEB_PORT" in dockerfile.healthcheck
    assert f'\\"WEB_PORT\\", \\"{port}\\"' in dockerfile.healthcheck  # the probe's default is the image's port
    assert re.search(r"--interval=\d+s", dockerfile.healthcheck)
    assert re.search(r"--start-period=\d+s", dockerfile.healthcheck)


def test_the_env_example_does_not_override_the_images_settings(dockerfile: Dockerfile) -> None:
    """`--env-file .env` values win over the image's ENV: the example must not move the database off the volume."""
    example = parse_env_file((ROOT / ".env.example").read_text(encoding="utf-8"))
    for key, image_value in dockerfile.env.items():
        if key in example:
            assert example[key] == image_value, f"{key}={example[key]} in .env.example overrides the image's"
    assert "DATABASE_PATH" not in example
    assert "# DATABASE_PATH=data/bot.sqlite3" in (ROOT / ".env.example").read_text(encoding="utf-8")


def test_the_env_example_lists_every_setting() -> None:
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    missing = [name.upper() for name in Settings.model_fields if not re.search(rf"^#? ?{name.upper()}=", text, re.M)]
    assert missing == []


def test_compose_runs_one_bot_with_the_volume_env_file_restart_and_health_check(dockerfile: Dockerfile) -> None:
    text = (ROOT / "compose.yaml").read_text(encoding="utf-8")
    assert re.search(r"^services:\n  bot:\n", text, re.M)
    assert re.search(r"^    env_file: \.env$", text, re.M)
    assert re.search(r"^    restart: unless-stopped$", text, re.M)
    assert re.search(rf"^      - (\S+):{dockerfile.volumes[0]}$", text, re.M)
    volume_name = re.search(rf"^      - (\S+):{dockerfile.volumes[0]}$", text, re.M).group(1)  # type: ignore[union-attr]
    assert re.search(rf"^volumes:\n  {volume_name}:", text, re.M)
    assert re.search(r"^    healthcheck:\n      test: .*/healthz", text, re.M)
    port = dockerfile.env["WEB_PORT"]
    assert f'"{port}:{port}"' in text


def test_the_readme_run_line_restarts_and_keeps_the_database_on_the_volume(dockerfile: Dockerfile) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    run_lines = [line for line in readme.splitlines() if line.startswith("docker run ")]
    assert len(run_lines) == 1
    run = run_lines[0]
    assert "--restart unless-stopped" in run
    assert "--env-file .env" in run
    assert re.search(rf"-v \S+:{dockerfile.volumes[0]}\b", run)


# ── the first start, as the image would do it ───────────────────────────────


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def image_root() -> Iterator[Path]:
    """A directory standing in for the image's file system (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="bot-image-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _as_nobody() -> tuple[str, ...]:
    if os.geteuid() != 0:
        pytest.skip("needs root to start the bot as uid 65534 (setpriv) from a root-owned copy of the tree")
    prefix = ("setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--")
    if shutil.which("setpriv") is None or subprocess.run([*prefix, sys.executable, "-c", "pass"],
                                                         capture_output=True, check=False).returncode != 0:  # fmt: skip
        pytest.skip("setpriv cannot switch to uid 65534 on this machine")
    return prefix


def _copy_like_the_dockerfile(dockerfile: Dockerfile, app: Path) -> None:
    """COPY every source the Dockerfile copies into the image's WORKDIR, owned by root (as COPY does)."""
    app.mkdir(mode=0o755)
    for copy in dockerfile.copies:
        *sources, destination = copy
        for source in sources:
            target = app / (source if destination.endswith("/") or destination == "./" else destination.strip("./"))
            if (ROOT / source).is_dir():
                shutil.copytree(ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(ROOT / source, app / source)


async def test_first_start_from_env_example_as_the_images_user_puts_the_database_on_the_volume(
    dockerfile: Dockerfile, image_root: Path
) -> None:
    prefix = _as_nobody()
    app = image_root / "app"  # the image's WORKDIR: root-owned, not writable by the bot's user
    _copy_like_the_dockerfile(dockerfile, app)
    volume = dockerfile.volumes[0]
    data = image_root / volume.strip("/")  # the volume: the only place the bot's user may write
    data.mkdir(mode=0o755)
    os.chown(data, NOBODY, NOBODY)
    home = image_root / "home"
    home.mkdir(mode=0o755)
    os.chown(home, NOBODY, NOBODY)

    async with FakeDiscord() as fake:
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home)}
        env.update({k: v.replace(volume, str(data), 1) if v.startswith(volume) else v
                    for k, v in dockerfile.env.items()})  # fmt: skip
        env.update(parse_env_file((ROOT / ".env.example").read_text(encoding="utf-8")))  # --env-file .env
        # What the operator fills in, plus the test's fakes in place of discord.com.
        env.update(
            DISCORD_TOKEN=fake.token,
            HYPEREAL_SANDBOX="1",
            DISCORD_API_BASE=fake.api_base,
            DISCORD_GATEWAY_URL=fake.gateway_url,
            WEB_HOST="127.0.0.1",
            WEB_PORT=str(_free_port()),
        )
        process = await asyncio.create_subprocess_exec(
            *prefix, sys.executable, "-m", "bot", env=env, cwd=app,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            waiting = asyncio.ensure_future(fake.wait_for_ready(timeout=30))
            ended = asyncio.ensure_future(process.wait())
            await asyncio.wait({waiting, ended}, return_when=asyncio.FIRST_COMPLETED)
            assert process.returncode is None, (await process.stderr.read()).decode()  # type: ignore[union-attr]
            await waiting
            database = data / "bot.sqlite3"
            assert database.is_file()
            assert database.stat().st_uid == NOBODY
            assert not (app / "data").exists()
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), timeout=15) == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    log = (await process.stderr.read()).decode()  # type: ignore[union-attr]
    assert "Traceback" not in log
    assert "stopped cleanly" in log

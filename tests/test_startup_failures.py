"""Every way `python -m bot` can fail to start is one line and exit status 2, never a traceback.

Each case runs the real process, as an operator would, with the default log level: the INFO lines of a
normal start-up may come before the failure, but what is not INFO (the failure, and at most the
sandbox notice) is at most two lines, and a file that is refused is left byte for byte as it was.
An unreachable Discord is not a failure: the process stays up, one line per try, until SIGTERM.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakediscord import FakeDiscord

ROOT = Path(__file__).resolve().parent.parent
NOBODY = 65534
# A log record line from the text formatter: "2025-01-01 12:00:00,000 INFO name message".
_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(tmp_path: Path, fake: FakeDiscord | None = None, **extra: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "PYTHONDONTWRITEBYTECODE": "1",
        "HOME": str(tmp_path),
        "HYPEREAL_SANDBOX": "1",
        "DATABASE_PATH": str(tmp_path / "data" / "bot.sqlite3"),
        "WEB_HOST": "127.0.0.1",
        "WEB_PORT": "0",
    }
    if fake is not None:
        env.update(
            DISCORD_TOKEN=fake.token,
            DISCORD_API_BASE=fake.api_base,
            DISCORD_GATEWAY_URL=fake.gateway_url,
            DISCORD_DEV_GUILD_ID=str(fake.GUILD_ID),
        )
    env.update(extra)
    return env


def _run(env: dict[str, str], cwd: Path, *, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "bot"],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


async def _run_async(env: dict[str, str], cwd: Path) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", env=env, cwd=cwd,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, stderr.decode()


def _failure_lines(stderr: str) -> list[str]:
    """Every stderr line that is not an INFO record: the failure itself, warnings, any traceback line."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    return [line for line in lines if not (_RECORD.match(line) and _RECORD.match(line).group(1) == "INFO")]  # type: ignore[union-attr]


def _assert_one_line_failure(returncode: int, stderr: str, *needles: str) -> str:
    assert "Traceback" not in stderr, stderr
    assert returncode == 2, stderr
    lines = _failure_lines(stderr)
    assert 1 <= len(lines) <= 2, stderr
    failure = lines[-1]
    for needle in needles:
        assert needle in failure, stderr
    return failure


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ── settings ─────────────────────────────────────────────────────────────────


def test_env_example_copied_as_is_with_the_sandbox_on_names_the_empty_token(tmp_path: Path) -> None:
    """`cp .env.example .env`, HYPEREAL_SANDBOX=1, no token: one line, exit 2, nothing created or contacted."""
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    assert "\nDISCORD_TOKEN=\n" in example
    (tmp_path / ".env").write_text(example.replace("HYPEREAL_SANDBOX=0", "HYPEREAL_SANDBOX=1"), encoding="utf-8")
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    result = _run(env, tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("DISCORD_TOKEN is not set (or empty)")
    assert not (tmp_path / "data").exists()  # settings fail first: no migrations, no sandbox, no login


@pytest.mark.parametrize("token", ["", "   ", "\t"])
def test_a_present_but_blank_discord_token_is_one_line_and_exit_2(tmp_path: Path, token: str) -> None:
    result = _run(_env(tmp_path, DISCORD_TOKEN=token), tmp_path)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("DISCORD_TOKEN is not set (or empty)")
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("key", ["", "  "])
def test_a_blank_hypereal_key_without_the_sandbox_is_one_line_and_exit_2(tmp_path: Path, key: str) -> None:
    result = _run(_env(tmp_path, DISCORD_TOKEN="tok-SECRET-1", HYPEREAL_SANDBOX="0", HYPEREAL_API_KEY=key), tmp_path)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("HYPEREAL_API_KEY is not set (or empty)")
    assert "HYPEREAL_SANDBOX=1" in result.stderr
    assert "tok-SECRET-1" not in result.stderr


# ── Discord ──────────────────────────────────────────────────────────────────


async def test_a_token_discord_rejects_on_login_is_one_line_and_exit_2(tmp_path: Path) -> None:
    async with FakeDiscord(token="the-right-token") as fake:
        env = _env(tmp_path, fake, DISCORD_TOKEN="wrong-token-SECRET")
        returncode, stderr = await _run_async(env, tmp_path)
    failure = _assert_one_line_failure(returncode, stderr, "Discord rejected DISCORD_TOKEN", "401", ".env")
    assert "wrong-token-SECRET" not in stderr
    assert failure


@pytest.mark.parametrize(
    ("code", "needles"),
    [
        (4004, ("authentication failed (4004)", "Reset Token")),
        (4010, ("invalid shard (4010)", "DISCORD_GATEWAY_URL")),
        (4011, ("sharding required (4011)",)),
        (4013, ("invalid intents (4013)", "MESSAGE_CONTENT_INTENT=0", "developer portal")),
        (4014, ("disallowed intents (4014)", "MESSAGE_CONTENT_INTENT=1", "developer portal")),
    ],
)
async def test_a_fatal_gateway_close_is_one_line_naming_cause_and_fix(
    tmp_path: Path, code: int, needles: tuple[str, ...]
) -> None:
    async with FakeDiscord(gateway_close_code=code) as fake:
        returncode, stderr = await _run_async(_env(tmp_path, fake), tmp_path)
        assert fake.identify_count >= 1  # it got as far as the gateway
    _assert_one_line_failure(returncode, stderr, *needles)
    assert "ConnectionClosed" not in stderr


async def _stays_up_retrying(env: dict[str, str], cwd: Path, pattern: str, tries: int = 2) -> str:
    """Start the bot, wait for ``tries`` log lines matching ``pattern``, SIGTERM it; returns its stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", env=env, cwd=cwd,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    seen: list[str] = []
    try:
        async with asyncio.timeout(30):
            while len([line for line in seen if re.search(pattern, line)]) < tries:
                line = (await process.stderr.readline()).decode()
                assert line, "the process ended: " + "".join(seen)
                seen.append(line)
        assert process.returncode is None  # still up: a restart loop would help nobody
        process.send_signal(signal.SIGTERM)
        rest = await asyncio.wait_for(process.stderr.read(), timeout=15)
        assert await asyncio.wait_for(process.wait(), timeout=15) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return "".join(seen) + rest.decode()


async def test_discord_refusing_connections_is_retried_one_line_per_try(tmp_path: Path) -> None:
    port = _free_port()  # nothing listens there
    api = f"http://127.0.0.1:{port}/api/v10"
    env = _env(tmp_path, DISCORD_TOKEN="tok-SECRET-2", DISCORD_API_BASE=api,
               DISCORD_GATEWAY_URL=f"ws://127.0.0.1:{port}/gateway")  # fmt: skip
    stderr = await _stays_up_retrying(env, tmp_path, re.escape(f"cannot reach Discord at {api} (") + ".*retrying in")
    assert "Traceback" not in stderr
    assert "connection refused" in stderr.lower()
    assert "tok-SECRET-2" not in stderr
    assert "stopped cleanly" in stderr


async def test_a_tls_failure_reaching_discord_is_retried_one_line_per_try(tmp_path: Path) -> None:
    async with FakeDiscord() as fake:  # plain HTTP: an https client's handshake fails against it
        api = f"https://127.0.0.1:{fake.port}/api/v10"
        env = _env(tmp_path, fake, DISCORD_API_BASE=api)
        stderr = await _stays_up_retrying(env, tmp_path, re.escape(f"cannot reach Discord at {api} (") + ".*retrying")
    assert "Traceback" not in stderr
    assert "TLS" in stderr


async def test_an_unreachable_gateway_is_retried_one_line_per_try(tmp_path: Path) -> None:
    gateway = f"ws://127.0.0.1:{_free_port()}/gateway"
    async with FakeDiscord() as fake:  # REST works, the gateway does not
        env = _env(tmp_path, fake, DISCORD_GATEWAY_URL=gateway)
        stderr = await _stays_up_retrying(env, tmp_path, re.escape(f"cannot reach the Discord gateway at {gateway} ("))
    assert "Traceback" not in stderr
    assert "connection refused" in stderr.lower()


# ── the database ─────────────────────────────────────────────────────────────


async def test_a_corrupt_database_is_one_line_and_left_untouched(tmp_path: Path) -> None:
    database = tmp_path / "data" / "bot.sqlite3"
    database.parent.mkdir()
    database.write_bytes(b"this is not a database, it was overwritten by accident\n" * 200)
    before = _digest(database)
    async with FakeDiscord() as fake:
        returncode, stderr = await _run_async(_env(tmp_path, fake), tmp_path)
        assert fake.identify_count == 0
    _assert_one_line_failure(returncode, stderr, str(database), "not a SQLite database", "backup")
    assert _digest(database) == before
    assert sorted(p.name for p in database.parent.iterdir()) == ["bot.sqlite3"]


async def test_a_database_from_a_newer_version_is_one_line_and_left_untouched(tmp_path: Path) -> None:
    database = tmp_path / "data" / "bot.sqlite3"
    database.parent.mkdir()
    conn = sqlite3.connect(database)
    conn.execute("CREATE TABLE from_the_future (x INTEGER)")
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    before = _digest(database)
    async with FakeDiscord() as fake:
        returncode, stderr = await _run_async(_env(tmp_path, fake), tmp_path)
        assert fake.identify_count == 0
    _assert_one_line_failure(returncode, stderr, str(database), "newer version", "schema version 99")
    assert _digest(database) == before


async def test_a_database_path_under_a_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("a file where the data directory should be", encoding="utf-8")
    async with FakeDiscord() as fake:
        returncode, stderr = await _run_async(_env(tmp_path, fake), tmp_path)
    _assert_one_line_failure(returncode, stderr, str(tmp_path / "data"), "DATABASE_PATH")


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory other users may enter (pytest's tmp_path is private to its owner)."""
    path = Path(tempfile.mkdtemp(prefix="bot-startup-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        subprocess.run(["rm", "-rf", str(path)], check=False)


def _unprivileged_prefix() -> tuple[str, ...]:
    """Run as uid 65534 when the tests run as root (root writes anywhere); as ourselves otherwise."""
    if os.geteuid() != 0:
        return ()
    prefix = ("setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--")
    probe = subprocess.run([*prefix, sys.executable, "-c", "pass"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("running as root, and setpriv cannot switch to uid 65534 here")
    return prefix


def test_an_unwritable_database_directory_is_one_line_and_exit_2(shared_dir: Path) -> None:
    prefix = _unprivileged_prefix()
    data = shared_dir / "data"
    data.mkdir(mode=0o755)  # owned by root (or made read-only below): the bot's user cannot create files in it
    if not prefix:
        data.chmod(0o555)
    home = shared_dir / "home"
    home.mkdir(mode=0o777)
    env = _env(home, DISCORD_TOKEN="tok", DATABASE_PATH=str(data / "bot.sqlite3"))
    result = _run(env, home, prefix=prefix)
    _assert_one_line_failure(result.returncode, result.stderr, str(data), "bot.sqlite3", "permission denied")
    assert list(data.iterdir()) == []


async def test_a_web_port_in_use_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with FakeDiscord() as fake:
            returncode, stderr = await _run_async(_env(tmp_path, fake, WEB_PORT=str(port)), tmp_path)
    _assert_one_line_failure(returncode, stderr, f"127.0.0.1:{port}", "address already in use", "WEB_PORT")


# ── scale-out settings ───────────────────────────────────────────────────────


async def test_a_second_process_on_one_sqlite_file_is_refused(tmp_path: Path) -> None:
    async with FakeDiscord() as fake:
        env = _env(tmp_path, fake)
        first = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", env=env, cwd=tmp_path,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            await fake.wait_for_ready(timeout=30)
            returncode, stderr = await _run_async(env, tmp_path)
        finally:
            first.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(first.wait(), timeout=20) == 0
    _assert_one_line_failure(returncode, stderr, "Another bot process is already running", "DATABASE_URL")


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        ({"DATABASE_URL": "mysql://bot:hunter2@db/bot"}, ("DATABASE_URL", "PostgreSQL URL")),
        ({"DATABASE_URL": "postgresql://bot:hunter2@127.0.0.1:1/bot"}, ("Cannot reach PostgreSQL", "127.0.0.1:1")),
        ({"SHARD_IDS": "0,1"}, ("SHARD_IDS", "SHARD_COUNT")),
        ({"SHARD_COUNT": "2", "SHARD_IDS": "0,2"}, ("SHARD_IDS",)),
        ({"SHARD_COUNT": "2", "SHARD_IDS": "1,1"}, ("SHARD_IDS",)),
    ],
)
async def test_scale_out_settings_that_cannot_work_are_one_line_and_exit_2(
    tmp_path: Path, extra: dict[str, str], needles: tuple[str, ...]
) -> None:
    async with FakeDiscord() as fake:
        returncode, stderr = await _run_async(_env(tmp_path, fake, **extra), tmp_path)
        assert fake.identify_count == 0
    _assert_one_line_failure(returncode, stderr, *needles)
    assert "hunter2" not in stderr

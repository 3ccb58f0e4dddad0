"""Shared fixtures: the sandbox Hypereal, the fake Discord, and the real bot running against both."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.app import BotApp
from bot.db import Database, SQLiteDatabase, open_postgres
from bot.sandbox import SandboxProvider
from bot.settings import Settings
from tests.fakediscord import FakeDiscord

# tests.postgres_server: the postgres_server / fresh_postgres_url fixtures, the postgres marker and its summary line.
pytest_plugins = ["tests.fakediscord.netguard", "tests.postgres_server"]

HYPEREAL_KEY = "ck_test_0123456789abcdef"
OWNER_ID = FakeDiscord.ADMIN.id


BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """Where a backend-parametrized test keeps its data: (dialect, SQLite path or PostgreSQL URL)."""
    if request.param == "sqlite":
        return "sqlite", str(tmp_path / "bot.sqlite3")
    return "postgresql", request.getfixturevalue("fresh_postgres_url")


async def open_backend(backend: tuple[str, str]) -> Database:
    """Open the database a :func:`backend` names (not migrated)."""
    dialect, where = backend
    return await SQLiteDatabase.open(where) if dialect == "sqlite" else await open_postgres(where)


@pytest.fixture
async def database(backend: tuple[str, str]) -> AsyncIterator[Database]:
    """An empty database on each backend (not migrated)."""
    db = await open_backend(backend)
    try:
        yield db
    finally:
        await db.close()


@pytest.fixture
async def migrated(backend: tuple[str, str]) -> AsyncIterator[Database]:
    """A database on each backend with every migration applied."""
    db = await open_backend(backend)
    try:
        await db.migrate()
        yield db
    finally:
        await db.close()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for a web server a test must know the address of in advance)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxProvider]:
    async with SandboxProvider(api_key=HYPEREAL_KEY, job_delay=0.2) as provider:
        yield provider


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as fake:
        yield fake


def bot_settings(fake: FakeDiscord, sandbox: SandboxProvider, tmp_path: Path, **overrides: Any) -> Settings:
    """Settings pointing the bot at the fakes, as the environment would."""
    values: dict[str, Any] = {
        "discord_token": fake.token,
        "discord_api_base": fake.api_base,
        "discord_gateway_url": fake.gateway_url,
        "discord_dev_guild_id": fake.GUILD_ID,
        "owner_ids": [OWNER_ID],
        "hypereal_api_key": HYPEREAL_KEY,
        "hypereal_base_url": sandbox.base_url,
        "database_path": tmp_path / "bot.sqlite3",
        "web_host": "127.0.0.1",
        "web_port": 0,
        "output_hosts": [sandbox.base_url],
        "default_allowance": 1000,
        # Jobs finish in the sandbox within a fraction of a second: poll at that pace.
        "job_poll_first_seconds": 0.2,
        "job_poll_max_seconds": 0.5,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@dataclass
class RunningBot:
    """The bot running in-process against the fakes."""

    app: BotApp
    fake: FakeDiscord
    sandbox: SandboxProvider

    @property
    def services(self) -> Any:
        """The bot's services (ledger, catalog…)."""
        return self.app.services


@contextlib.asynccontextmanager
async def run_bot(
    settings: Settings, fake: FakeDiscord, sandbox: SandboxProvider, *, clock: Callable[[], float] = time.time
) -> AsyncIterator[RunningBot]:
    """Start the bot like production does (BotApp), wait for READY and the command sync, stop it after.

    ``clock`` is the services' clock (periods, retention); Discord's own timing stays real.
    """
    stop = asyncio.Event()
    # A short guild_ready_timeout only skips discord.py's wait for more GUILD_CREATEs; nothing else changes.
    async with BotApp(settings, clock=clock, guild_ready_timeout=0.05) as app:
        runner = asyncio.create_task(app.run_until(stop))
        try:
            await fake.wait_for_ready(timeout=15)
            await fake.wait_for_commands(timeout=15)
            await asyncio.wait_for(app.bot.wait_until_ready(), timeout=15)
            yield RunningBot(app, fake, sandbox)
            # Every end-to-end test leaves books that balance: counters equal the ledger.
            assert await app.services.ledger.check_invariants() == []
        finally:
            stop.set()
            await asyncio.wait_for(runner, timeout=15)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """End-to-end tests marked ``both_backends`` run once on SQLite and once on PostgreSQL."""
    if "e2e_backend" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_backends"):
        metafunc.parametrize("e2e_backend", BACKENDS, indirect=True)


@pytest.fixture
def e2e_backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The database settings of an end-to-end test: SQLite, unless the test runs on both backends."""
    if getattr(request, "param", "sqlite") == "sqlite":
        return {}
    return {"database_url": request.getfixturevalue("fresh_postgres_url")}


@pytest.fixture
async def running_bot(
    fake_discord: FakeDiscord, sandbox: SandboxProvider, tmp_path: Path, e2e_backend: dict[str, Any]
) -> AsyncIterator[RunningBot]:
    settings = bot_settings(fake_discord, sandbox, tmp_path, **e2e_backend)
    async with run_bot(settings, fake_discord, sandbox) as running:
        yield running


@pytest.fixture
async def webhook_bot(fake_discord: FakeDiscord, sandbox: SandboxProvider, tmp_path: Path) -> AsyncIterator[RunningBot]:
    """The bot with PUBLIC_URL set: Hypereal (the sandbox) calls its webhook endpoint back on loopback."""
    port = free_port()
    settings = bot_settings(
        fake_discord,
        sandbox,
        tmp_path,
        web_port=port,
        public_url=f"http://127.0.0.1:{port}",
        # Slow polling: in these tests the webhook, not the poller, finishes jobs.
        job_poll_first_seconds=30,
        job_poll_max_seconds=30,
    )
    async with run_bot(settings, fake_discord, sandbox) as running:
        yield running

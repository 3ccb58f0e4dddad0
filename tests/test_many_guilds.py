"""One process with 3,000 servers: it connects sharded as Discord recommends, and IDENTIFY is paced by
``session_start_limit.max_concurrency`` instead of discord.py's fixed 5 s between shards.

The bot runs in-process (BotApp, as production) against the sharding fake Discord. 3,000 guilds is
past the 2,500 an unsharded session may serve (the fake closes that with 4011), and GET /gateway/bot
recommends 3 shards for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import BotApp
from bot.sandbox import SandboxProvider
from tests.conftest import bot_settings
from tests.fakediscord import FakeDiscord, shard_of
from tests.fakediscord.server import GatewaySession

GUILDS = 3000


@contextlib.asynccontextmanager
async def running(
    fake: FakeDiscord, sandbox: SandboxProvider, tmp_path: Path, shard_count: int | None = None, **bot_options: Any
) -> AsyncIterator[BotApp]:
    """The bot (SHARD_COUNT unset unless given) with commands synced globally (filler guilds are not the dev guild)."""
    settings = bot_settings(fake, sandbox, tmp_path, discord_dev_guild_id=None, shard_count=shard_count)
    assert settings.shard_count == shard_count
    assert settings.shard_ids is None
    stop = asyncio.Event()
    async with BotApp(settings, guild_ready_timeout=0.05, **bot_options) as app:
        runner = asyncio.create_task(app.run_until(stop))
        try:
            yield app
        finally:
            stop.set()
            await asyncio.wait_for(runner, timeout=30)


async def wait_for_shards(fake: FakeDiscord, count: int, timeout: float = 90.0) -> None:
    """Every shard connected; a failure says which sessions identified when (not only "timed out")."""
    try:
        await fake.wait_for_shards(count, timeout=timeout)
    except TimeoutError:
        sessions = [(s.shard_id, round(s.identified_at, 2), len(s.guild_ids)) for s in fake.identified]
        raise AssertionError(
            f"not all {count} shards connected in {timeout:.0f} s: open={fake.shards_connected} "
            f"identified (shard, at, guilds)={sessions} gateway_bot_calls={len(fake.calls_to('GET', '/gateway/bot'))}"
        ) from None


def _by_shard(fake: FakeDiscord) -> dict[int, GatewaySession]:
    """The first IDENTIFY of each shard (a session the fake closed and the bot re-identified counts once)."""
    first: dict[int, GatewaySession] = {}
    for session in fake.identified:
        first.setdefault(session.shard_id, session)
    return first


@pytest.mark.timeout(180)  # room for the waits below and the bot's shutdown on a loaded machine
async def test_3000_guilds_connect_in_3_shards_and_answer_on_the_last(sandbox: SandboxProvider, tmp_path: Path) -> None:
    started = time.monotonic()
    async with FakeDiscord(extra_guilds=GUILDS - 2, max_concurrency=16) as fake:
        assert len(fake.guilds) == GUILDS
        assert fake.recommended_shards() == 3
        async with running(fake, sandbox, tmp_path) as app:
            await wait_for_shards(fake, 3)
            await fake.wait_for_commands(timeout=30)
            await asyncio.wait_for(app.bot.wait_until_ready(), timeout=60)
            connected = time.monotonic() - started
            assert app.bot.shard_count == 3
            assert sorted(app.bot.shards) == [0, 1, 2]
            assert fake.shards_connected == [(0, 3), (1, 3), (2, 3)]
            assert len(app.bot.guilds) == GUILDS
            # Every session served at most 2,500 guilds: none was closed with 4011 and retried.
            assert sorted(s.shard_id for s in fake.identified) == [0, 1, 2]
            assert all(len(s.guild_ids) <= 2500 for s in fake.identified)

            guild = fake.guild_on_shard(2, 3)
            assert shard_of(guild.id, 3) == 2
            answer = await fake.response(await fake.invoke("credits", channel_id=guild.channels[0].id), timeout=15)
            assert answer.ephemeral
            assert "of 1000 credits left" in answer.embeds[0]["fields"][0]["value"]
            # With max_concurrency 16 the three shards share one 5 s window: no 5 s wait between them.
            times = [s.identified_at for s in _by_shard(fake).values()]
            spread = max(times) - min(times)
            assert spread < 5.0, spread
    print(f"\nmany guilds: guilds={GUILDS} shards=3 connected_s={connected:.1f} identify_spread_s={spread:.2f}")


@pytest.mark.timeout(180)  # room for the waits below and the bot's shutdown on a loaded machine
async def test_identify_is_paced_by_max_concurrency_with_shard_count_set(
    sandbox: SandboxProvider, tmp_path: Path
) -> None:
    """max_concurrency=2: shards 0 and 1 (buckets 0 and 1) start together, shard 2 (bucket 0 again) waits a window.

    SHARD_COUNT=3 is set, so the limit is read from GET /gateway/bot all the same. Few guilds: the pacing
    is the point here, not the load. The window is a constructor parameter (Discord's is 5 s); 3 s keeps
    the test short.
    """
    window = 3.0
    async with (
        FakeDiscord(max_concurrency=2) as fake,
        running(fake, sandbox, tmp_path, shard_count=3, identify_window=window) as app,
    ):
        await wait_for_shards(fake, 3)
        assert app.bot.max_concurrency == 2
        assert fake.calls_to("GET", "/gateway/bot")  # read although SHARD_COUNT is set
        first = _by_shard(fake)
        zero, one, two = (first[n].identified_at for n in range(3))
        # Shard 2 shares shard 0's bucket: it waited for the window (a lower bound: safe on a busy machine).
        assert two - zero >= window - 0.05, two - zero
        # Shard 1 has a bucket of its own: no window behind shard 0 (discord.py's default hook sleeps 5 s, this
        # one would sleep `window`); it follows shard 0's connection at once.
        assert one - zero < window, one - zero

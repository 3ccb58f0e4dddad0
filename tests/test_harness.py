"""The test harness itself: the fake Discord's rate limits are real, faults are survived, no network."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.sandbox import SandboxProvider
from tests.conftest import RunningBot, bot_settings, run_bot
from tests.fakediscord import FakeDiscord
from tests.fakediscord.netguard import NetworkBlocked

WINDOW = 1.0  # the fake's limit is 5 edits per WINDOW seconds in these tests (5 s in Discord)


@pytest.fixture
async def limited_bot(sandbox: SandboxProvider, tmp_path: Path) -> AsyncIterator[RunningBot]:
    async with (
        FakeDiscord(ratelimits=True, ratelimit_window=WINDOW) as fake,
        run_bot(bot_settings(fake, sandbox, tmp_path), fake, sandbox) as running,
    ):
        yield running


def _max_in_window(times: list[float], window: float) -> int:
    return max((sum(1 for t in times if start <= t < start + window) for start in times), default=0)


async def test_twenty_edits_are_paced_by_the_announced_limits(limited_bot: RunningBot) -> None:
    fake = limited_bot.fake
    channel = limited_bot.app.bot.get_channel(fake.CHANNEL_ID)
    assert channel is not None
    message = await channel.send("edit me")  # type: ignore[union-attr]
    for n in range(20):
        await message.edit(content=f"version {n}")
    record = fake.message(message.id)
    assert [v["content"] for v in record.versions[1:]] == [f"version {n}" for n in range(20)]
    edits = [c.time for c in fake.calls_to("PATCH", "/channels/{channel_id}/messages/{message_id}") if c.status == 200]
    assert len(edits) == 20
    # The fake enforces 5 per window; discord.py waited on X-RateLimit-Remaining: 0 instead of hammering.
    assert _max_in_window(edits, WINDOW * 0.98) <= 5
    assert edits[-1] - edits[0] >= 3 * WINDOW * 0.9
    assert len(fake.rate_limited) <= 1


async def test_a_command_survives_a_429_storm(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    fake.inject(r"^POST /interactions/", 429, count=3, retry_after=0.1)
    ix = await fake.invoke("models", category="image")
    message = await fake.response(ix)
    assert "nano-banana-t2i" in message.embeds[0]["description"]
    assert len(fake.rate_limited) == 3
    assert all(c.status == 429 for c in fake.rate_limited)


async def test_server_errors_on_a_followup_are_survived(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    fake.inject(r"^POST /interactions/", 500, count=1)
    ix = await fake.invoke("help")
    message = await fake.response(ix)
    assert "`/help`" in message.embeds[0]["description"]


def test_connections_off_loopback_fail_loudly() -> None:
    with pytest.raises(NetworkBlocked, match=r"93\.184\.216\.34"):
        socket.create_connection(("93.184.216.34", 443), timeout=1)
    with pytest.raises(NetworkBlocked, match=r"discord\.com"):
        socket.getaddrinfo("discord.com", 443)


async def test_aiohttp_to_discord_com_fails_loudly() -> None:
    async with aiohttp.ClientSession() as http:
        with pytest.raises((NetworkBlocked, aiohttp.ClientError)) as caught:
            await http.get("https://discord.com/api/v10/users/@me")
    assert "discord.com" in str(caught.value) or isinstance(caught.value.__cause__, NetworkBlocked)


async def test_the_fake_refuses_a_wrong_token(fake_discord: FakeDiscord) -> None:
    async with aiohttp.ClientSession() as http:
        response = await http.get(f"{fake_discord.api_base}/users/@me", headers={"Authorization": "Bot nope"})
        assert response.status == 401
        assert response.headers["Content-Type"] == "application/json"
    await asyncio.sleep(0)

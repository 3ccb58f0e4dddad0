"""The one paid flow end to end: alerts after every kind of spend, chat confirmation, grants below zero."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bot.sandbox import SandboxProvider
from tests.conftest import RunningBot, bot_settings, run_bot
from tests.fakediscord import FakeDiscord, MessageRecord, files

pytestmark = pytest.mark.both_backends  # each end-to-end test runs on SQLite and on PostgreSQL


def _alerts(fake: FakeDiscord) -> list[MessageRecord]:
    return [m for m in fake.messages(fake.ALERT_CHANNEL_ID) if m.content.startswith("⚠️ Budget alert")]


async def _finished(bot: RunningBot, count: int) -> None:
    """Until ``count`` reservations exist and every one is settled or refunded."""
    for _ in range(300):
        held = await bot.services.db.fetch_value("SELECT COUNT(*) FROM reservations WHERE state = 'held'")
        total = await bot.services.db.fetch_value("SELECT COUNT(*) FROM reservations")
        if total >= count and not held:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("a reservation stayed held")


def _options(fake: FakeDiscord, command: str, n: int) -> dict[str, Any]:
    if command == "video":
        return {"prompt": f"a wave {n}"}
    if command == "tts":
        return {"text": f"hello {n}"}
    if command == "3d":
        return {"image": fake.attachment("cube.png", files.PNG, "image/png")}
    return {"audio": fake.attachment("voice.mp3", files.MP3, "audio/mpeg")}


@pytest.mark.parametrize("command", ["video", "tts", "3d", "transcribe"])
async def test_budget_alerts_fire_after_every_kind_of_spend_once_per_threshold(
    fake_discord: FakeDiscord, sandbox: SandboxProvider, tmp_path: Path, command: str
) -> None:
    """Alerts used to come only from /image and /chat; video, audio, 3D and transcription spend posted nothing."""
    settings = bot_settings(fake_discord, sandbox, tmp_path, default_allowance=100, confirm_threshold=1000)
    async with run_bot(settings, fake_discord, sandbox) as bot:
        fake = bot.fake
        admin = fake.ADMIN
        await fake.response(await fake.invoke("quota alerts", user=admin, channel=fake.ALERT_CHANNEL_ID, threshold="1"))
        await fake.invoke(command, **_options(fake, command, 1))
        await _finished(bot, 1)
        (alert,) = await fake.wait_for(lambda: _alerts(fake))
        assert "passed 1 % of its 100-credit allowance" in alert.content
        spent = 100 - await bot.services.ledger.balance(fake.GUILD_ID)
        assert f"used {spent} % · {100 - spent} of 100 left" in alert.content
        await fake.invoke(command, **_options(fake, command, 2))
        await _finished(bot, 2)
        assert len(_alerts(fake)) == 1  # once per threshold per period


async def test_chat_over_the_threshold_asks_first(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    await fake.response(await fake.invoke("quota confirm", user=fake.ADMIN, credits=1))
    ask = await fake.response(await fake.invoke("chat", prompt="is it worth it?"))
    assert ask.ephemeral
    assert "An answer from claude-sonnet-4-6 costs **~2 credits**. Go ahead?" in ask.content
    assert await running_bot.services.db.fetch_value("SELECT COUNT(*) FROM reservations") == 0
    confirm = next(c for c in ask.custom_ids() if c)
    await fake.click(ask, confirm)
    answer = await fake.wait_for(
        lambda: [m for m in fake.messages() if "-# claude-sonnet-4-6 · 2 credits" in m.content]
    )
    assert "Sandbox reply to: is it worth it?" in answer[0].content


async def test_a_grant_below_zero_is_refused_unless_asked_for(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    refused = await fake.response(await fake.invoke("budget grant", user=fake.ADMIN, amount=-1500))
    assert refused.ephemeral
    assert "This server has 1000 credits left" in refused.content
    assert "allow_negative" in refused.content
    assert await running_bot.services.ledger.balance(fake.GUILD_ID) == 1000
    forced = await fake.response(await fake.invoke("budget grant", user=fake.ADMIN, amount=-1500, allow_negative=True))
    assert "**-500** of 1000 credits left" in forced.content
    assert "below zero" in forced.content
    credits = await fake.response(await fake.invoke("credits"))
    assert "**-500** of 1000 credits left" in credits.embeds[0]["fields"][0]["value"]

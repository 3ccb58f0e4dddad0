"""Discord faults from the fake (429 storms, 500s, gone channels, missing permissions): nothing lost, nothing twice."""

from __future__ import annotations

import asyncio

import pytest

from bot.sandbox import SandboxProvider
from tests.conftest import RunningBot
from tests.fakediscord import FakeDiscord, MessageRecord

CHANNEL_POSTS = r"^POST /channels/\{channel_id\}/messages$"


def _video_results(fake: FakeDiscord, channel_id: int | None = None) -> list[MessageRecord]:
    return [m for m in fake.messages(channel_id) if "is ready" in m.content and m.latest_files]


async def _closed(bot: RunningBot) -> list[str]:
    for _ in range(200):
        states = [r["state"] for r in await bot.services.db.fetch_all("SELECT state FROM reservations")]
        if states and "held" not in states:
            return states
        await asyncio.sleep(0.05)
    return states


async def _video_status(fake: FakeDiscord, prompt: str) -> MessageRecord:
    return await fake.response(await fake.invoke("video", prompt=prompt))


@pytest.mark.parametrize(("status", "count"), [(429, 3), (500, 2), (502, 2)])
async def test_a_video_result_survives_discord_errors_and_posts_once(
    running_bot: RunningBot, status: int, count: int
) -> None:
    fake = running_bot.fake
    await _video_status(fake, f"storm {status}")
    fake.inject(CHANNEL_POSTS, status, count=count, retry_after=0.2)
    (result,) = await fake.wait_for(lambda: _video_results(fake, fake.CHANNEL_ID), timeout=30)
    await asyncio.sleep(1.0)
    assert len(_video_results(fake)) == 1
    assert await _closed(running_bot) == ["settled"]
    assert result.latest_files[0].filename.endswith(".mp4")
    assert await running_bot.services.ledger.check_invariants() == []


@pytest.mark.parametrize(
    ("status", "body"),
    [(404, {"message": "Unknown Channel", "code": 10003}), (403, {"message": "Missing Permissions", "code": 50013})],
)
async def test_a_video_whose_channel_is_gone_or_closed_comes_by_dm(
    running_bot: RunningBot, status: int, body: dict[str, object]
) -> None:
    fake = running_bot.fake
    await _video_status(fake, "elsewhere")
    fake.inject(CHANNEL_POSTS, status, body=body)
    dm_channel = fake.MEMBER.id + 7
    (result,) = await fake.wait_for(lambda: _video_results(fake, dm_channel), timeout=30)
    assert "closed to the bot" in result.content
    assert _video_results(fake, fake.CHANNEL_ID) == []
    assert await _closed(running_bot) == ["settled"]


async def test_a_video_nobody_can_be_sent_stays_listed_in_jobs(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    await _video_status(fake, "nowhere")
    fake.inject(CHANNEL_POSTS, 403, count=2, body={"message": "Missing Access", "code": 50001})
    fake.inject(r"^POST /users/@me/channels$", 403, body={"message": "Cannot send messages", "code": 50007})
    for _ in range(200):
        states = [r["state"] for r in await running_bot.services.db.fetch_all("SELECT state FROM jobs")]
        if states == ["delivered"]:
            break
        await asyncio.sleep(0.05)
    listing = await fake.response(await fake.invoke("jobs"))
    assert "delivered" in listing.embeds[0]["description"]
    assert "download" in listing.embeds[0]["description"]  # the link is there for the member
    assert _video_results(fake) == []


async def test_an_image_survives_a_429_storm_on_its_followup(running_bot: RunningBot, sandbox: SandboxProvider) -> None:
    fake = running_bot.fake
    fake.inject(r"^POST /webhooks/\{app\}/\{token\}$", 429, count=3, retry_after=0.2)
    handle = await fake.invoke("image", prompt="a patient fox")
    message = await fake.response(handle, timeout=20)
    await fake.wait_for(lambda: message.latest_files, timeout=20)
    await asyncio.sleep(0.5)
    posted = [m for m in fake.messages() if m.latest_files and not m.ephemeral]
    assert len(posted) == 1
    assert await _closed(running_bot) == ["settled"]

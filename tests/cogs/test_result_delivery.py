"""A paid result reaches the member after its interaction token expired, or is refunded (fake Discord + sandbox).

Interaction tokens last 15 minutes; an image can wait that long in the bot's hourly queue or at
Hypereal. The result then goes to the channel as a reply, by DM when the channel is gone, and if
nothing can be posted the charge is given back: never charged and dropped.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.sandbox import SandboxProvider
from tests.cogs.results import closed_reservations
from tests.conftest import RunningBot, bot_settings, run_bot
from tests.fakediscord import FakeDiscord, InteractionHandle, MessageRecord


async def _expire_after_defer(fake: FakeDiscord, handle: InteractionHandle) -> None:
    await fake.wait_for(lambda: handle.callbacks)
    assert handle.callback_types == [5]  # deferred: "thinking…"
    fake.expire_token(handle)


def _results(fake: FakeDiscord, channel_id: int | None = None) -> list[MessageRecord]:
    return [m for m in fake.messages(channel_id) if m.latest_files and not m.ephemeral]


async def test_an_image_whose_token_expired_is_posted_in_the_channel_as_a_reply(running_bot: RunningBot) -> None:
    fake, sandbox = running_bot.fake, running_bot.sandbox
    sandbox.faults.delay_seconds = 0.5  # Hypereal is slow; the token expires meanwhile
    handle = await fake.invoke("image", prompt="a slow fox")
    await _expire_after_defer(fake, handle)
    (result,) = await fake.wait_for(lambda: _results(fake, fake.CHANNEL_ID), timeout=15)
    assert result.content.startswith(f"<@{fake.MEMBER.id}>")
    assert int(result.current["message_reference"]["message_id"]) == handle.original_id
    assert [int(u) for u in result.current["allowed_mentions"]["users"]] == [fake.MEMBER.id]
    assert result.embeds[-1]["footer"]["text"] == "nano-banana-t2i · 4 credits · 996 left"
    assert await closed_reservations(running_bot) == [("settled", 4)]
    assert await running_bot.services.ledger.check_invariants() == []


async def test_when_the_channel_is_gone_too_the_result_comes_by_dm(running_bot: RunningBot) -> None:
    fake, sandbox = running_bot.fake, running_bot.sandbox
    sandbox.faults.delay_seconds = 0.5
    handle = await fake.invoke("image", prompt="a lost fox")
    await _expire_after_defer(fake, handle)
    fake.inject(r"^POST /channels/\{channel_id\}/messages$", 404, body={"message": "Unknown Channel", "code": 10003})
    dm_channel = fake.MEMBER.id + 7  # the fake's DM channel id for a user
    (result,) = await fake.wait_for(lambda: _results(fake, dm_channel), timeout=15)
    assert "closed to the bot" in result.content
    assert _results(fake, fake.CHANNEL_ID) == []
    assert await closed_reservations(running_bot) == [("settled", 4)]


async def test_a_result_that_cannot_be_posted_anywhere_is_refunded(running_bot: RunningBot) -> None:
    fake, sandbox = running_bot.fake, running_bot.sandbox
    sandbox.faults.delay_seconds = 0.5
    handle = await fake.invoke("image", prompt="a doomed fox")
    await _expire_after_defer(fake, handle)
    fake.inject(r"^POST /channels/\{channel_id\}/messages$", 403, body={"message": "Missing Access", "code": 50001})
    fake.inject(r"^POST /users/@me/channels$", 403, body={"message": "Cannot send messages", "code": 50007})

    async def refunded() -> bool:
        return await closed_reservations(running_bot) == [("refunded", 0)]

    for _ in range(200):
        if await refunded():
            break
        await asyncio.sleep(0.05)
    assert await refunded()
    assert await running_bot.services.ledger.balance(fake.GUILD_ID) == 1000
    assert await running_bot.services.ledger.check_invariants() == []
    assert running_bot.services.metrics.results_undeliverable.labels(kind="image")._value.get() == 1


async def test_a_request_waiting_in_the_hourly_queue_says_so(
    fake_discord: FakeDiscord, sandbox: SandboxProvider, tmp_path: Path
) -> None:
    settings = bot_settings(fake_discord, sandbox, tmp_path, hypereal_requests_per_hour=1)
    async with run_bot(settings, fake_discord, sandbox) as bot:
        fake = bot.fake
        first = await fake.response(await fake.invoke("image", prompt="first"))
        await fake.wait_for(lambda: first.latest_files)
        waiting = await fake.invoke("image", prompt="second")
        status = await fake.wait_for(lambda: fake.original(waiting) if waiting.original_id else None)
        await fake.wait_for(lambda: "Queued (position 1)" in status.content)
        assert "4 credits are held" in status.content
        assert not status.ephemeral

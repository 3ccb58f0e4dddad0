"""Waiting for paid image results in end-to-end tests (shared by the image, grid and delivery tests)."""

from __future__ import annotations

import asyncio

from tests.conftest import RunningBot
from tests.fakediscord import FakeDiscord, InteractionHandle, MessageRecord


async def closed_reservations(bot: RunningBot) -> list[tuple[str, int | None]]:
    """(state, actual) of every reservation, oldest first, once none is held (a result is posted, then charged)."""
    for _ in range(100):
        rows = await bot.services.db.fetch_all("SELECT state, actual FROM reservations ORDER BY created_at")
        if all(row["state"] != "held" for row in rows):
            break
        await asyncio.sleep(0.02)
    return [(row["state"], row["actual"]) for row in rows]


async def image_result(fake: FakeDiscord, handle: InteractionHandle) -> MessageRecord:
    """The interaction's response once it carries the result's files (or is an ephemeral refusal)."""
    message = await fake.response(handle)
    await fake.wait_for(lambda: message.latest_files or message.ephemeral)
    return message

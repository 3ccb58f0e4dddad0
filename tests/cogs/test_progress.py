"""Visible progress end to end: the status line of a slow request, and how long a model's jobs usually take."""

from __future__ import annotations

import re

import pytest

from tests.conftest import RunningBot
from tests.fakediscord import MessageRecord

pytestmark = pytest.mark.both_backends  # each end-to-end test runs on SQLite and on PostgreSQL

STATUS = re.compile(r"^⏳ Generating · nano-banana-t2i · 4 credits · started <t:\d+:R>$")


def _contents(message: MessageRecord) -> list[str]:
    return [str(version.get("content") or "") for version in message.versions]


async def test_a_slow_image_shows_the_status_line_then_the_result_in_its_place(running_bot: RunningBot) -> None:
    fake, sandbox = running_bot.fake, running_bot.sandbox
    sandbox.faults.delay_seconds = 6.0  # Hypereal takes a while: "thinking…" gives way after ~3 s
    handle = await fake.invoke("image", prompt="a slow fox")
    status = await fake.response(handle, timeout=15)
    assert STATUS.match(status.content), status.content
    assert not status.latest_files  # the status came before the result
    await fake.wait_for(lambda: status.latest_files, timeout=15)
    # The result replaced the status line: no "⏳ Generating" is left behind in the channel.
    assert status.content == f"-# <@{fake.MEMBER.id}> asked: “a slow fox”"
    assert status.embeds[0]["title"] == "🎨 a slow fox"
    assert [STATUS.match(c) is not None for c in _contents(status)] == [False, True, False]
    assert not [m for m in fake.messages() if m.id != status.id and m.content.startswith("⏳")]


async def test_a_fast_image_shows_no_status_line(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    status = await fake.response(await fake.invoke("image", prompt="a quick fox"))
    await fake.wait_for(lambda: status.latest_files)
    assert not any(c.startswith("⏳") for c in _contents(status))


async def test_a_slow_chat_answer_replaces_its_status_line(running_bot: RunningBot) -> None:
    fake, sandbox = running_bot.fake, running_bot.sandbox
    sandbox.faults.delay_seconds = 4.5  # the model is slow to start
    handle = await fake.invoke("chat", prompt="hello there")
    answer = await fake.response(handle, timeout=15)
    assert answer.content.startswith("⏳ Generating · "), answer.content
    await fake.wait_for(lambda: " left" in answer.content, timeout=20)  # the final edit has the cost line
    assert "⏳" not in answer.content
    assert not [m for m in fake.messages() if m.id != answer.id and m.content.startswith("⏳")]


async def test_a_video_status_says_how_long_the_models_jobs_usually_take(webhook_bot: RunningBot) -> None:
    fake = webhook_bot.fake
    for n in range(3):  # until three jobs of the model finished, there is nothing to go by
        status = await fake.response(await fake.invoke("video", prompt=f"waves {n}"))
        assert "usually" not in status.content
        await fake.wait_for(lambda s=status: fake.message(s.id).content.startswith("✅ Done"), timeout=15)
    status = await fake.response(await fake.invoke("video", prompt="waves again"))
    # The sandbox finishes a job within a second: the median rounds up to the smallest step shown.
    assert re.search(r" · started <t:\d+:R> · usually ~5 s$", status.content), status.content

"""/chat end to end: streaming by edits inside the rate limits, long answers, Stop, failures, replies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.chat.layout import CURSOR, open_fence_after
from bot.sandbox import SandboxProvider
from tests.conftest import RunningBot, bot_settings, run_bot
from tests.fakediscord import FakeDiscord, MessageRecord

pytestmark = pytest.mark.both_backends  # each end-to-end test runs on SQLite and on PostgreSQL

EDIT_ROUTES = {
    ("PATCH", "/webhooks/{app}/{token}/messages/{message_id}"),
    ("PATCH", "/channels/{channel_id}/messages/{message_id}"),
}


def _long_answer() -> str:
    prose = "This paragraph explains one more step of the solution in plain words, carefully. " * 4
    code = "```python\n" + "".join(f"value_{n} = compute({n})\n" for n in range(30)) + "```\n\n"
    return "".join(prose + f"(step {n})\n\n" + (code if n % 4 == 1 else "") for n in range(16))


def _answer_messages(fake: FakeDiscord, first: MessageRecord) -> list[MessageRecord]:
    chain = [first]
    for message in fake.messages(first.channel_id):
        reference = message.current.get("message_reference") or {}
        if str(reference.get("message_id")) == str(chain[-1].id):
            chain.append(message)
    return chain


def _body(content: str) -> str:
    """The model's text in a final message: without the footer lines the bot adds under the last part."""
    lines = content.split("\n")
    if lines and lines[0].startswith("-# <@") and " asked: " in lines[0]:
        lines.pop(0)  # the question quoted above a public answer's first message
    while lines and (lines[-1].startswith("-# ") or lines[-1].startswith(("✂️", "⏹️", "⚠️"))):
        lines.pop()
    return "\n".join(lines)


@pytest.fixture
async def limited_bot(sandbox: SandboxProvider, tmp_path: Path) -> AsyncIterator[RunningBot]:
    """The bot against a fake Discord that enforces Discord's 5-per-5-s edit limit."""
    async with (
        FakeDiscord(ratelimits=True) as fake,
        run_bot(bot_settings(fake, sandbox, tmp_path), fake, sandbox) as running,
    ):
        yield running


async def _finished(fake: FakeDiscord, first: MessageRecord) -> list[MessageRecord]:
    await fake.wait_for(lambda: "\n-# " in _answer_messages(fake, first)[-1].content, timeout=60)
    return _answer_messages(fake, first)


async def test_a_short_answer_streams_and_shows_the_cost(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    running_bot.sandbox.faults.chat_chunk_delay = 0.01
    first = await fake.response(await fake.invoke("chat", prompt="hello there"))
    (message,) = await _finished(fake, first)
    question, answer = message.content.split("\n", 1)
    assert question == f"-# <@{fake.MEMBER.id}> asked: “hello there”"  # onlookers see the question, small
    assert answer.startswith("Sandbox reply to: hello there (turns: 1)")
    assert message.content.endswith("-# claude-sonnet-4-6 · 2 credits · 998 left")
    assert any(v["content"].endswith(CURSOR) for v in message.versions)  # it showed it was incomplete
    assert message.components == []  # the Stop button is gone at the end
    assert all(v.get("allowed_mentions") == {"parse": []} for v in message.versions if "allowed_mentions" in v)


async def test_a_private_answer_does_not_repeat_the_question(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    first = await fake.response(await fake.invoke("chat", prompt="just for me", private=True))
    (message,) = await _finished(fake, first)
    assert message.ephemeral
    assert message.content.startswith("Sandbox reply to: just for me")
    assert "asked:" not in message.content


async def test_the_question_of_a_long_prompt_is_one_short_line(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    prompt = "line one\n\nline two " + "word " * 60
    first = await fake.response(await fake.invoke("chat", prompt=prompt))
    (message,) = await _finished(fake, first)
    question = message.content.split("\n", 1)[0]
    assert question.startswith(f"-# <@{fake.MEMBER.id}> asked: “line one line two word")
    assert question.endswith("…”")
    assert len(question) < 150
    assert all(v.get("allowed_mentions") == {"parse": []} for v in message.versions if "allowed_mentions" in v)


async def test_a_long_answer_with_code_splits_into_valid_messages(limited_bot: RunningBot) -> None:
    fake = limited_bot.fake
    answer = _long_answer()
    assert len(answer) > 6000
    limited_bot.sandbox.faults.chat_reply = answer
    limited_bot.sandbox.faults.chat_chunk_size = 200
    first = await fake.response(await fake.invoke("chat", prompt="explain"), timeout=30)
    messages = await _finished(fake, first)
    assert len(messages) >= 3
    for message in messages:
        for version in message.versions:
            content = version["content"]
            assert len(content) <= 2000
            assert open_fence_after(content.removesuffix(CURSOR)) is None
    assert "".join(_body(m.content) for m in messages) == answer
    assert fake.rate_limited == []


async def test_three_concurrent_streams_share_the_channel_without_429(limited_bot: RunningBot) -> None:
    fake = limited_bot.fake
    limited_bot.sandbox.faults.chat_reply = "word " * 120
    limited_bot.sandbox.faults.chat_chunk_size = 25
    limited_bot.sandbox.faults.chat_chunk_delay = 0.05
    handles = [await fake.invoke("chat", prompt=f"q{n}") for n in range(3)]
    firsts = [await fake.response(h, timeout=30) for h in handles]
    for first in firsts:
        await _finished(fake, first)
    assert fake.rate_limited == []
    edits = sorted(c.time for c in fake.calls if (c.method, c.route) in EDIT_ROUTES and c.status == 200)
    assert max(sum(1 for t in edits if start <= t < start + 5.0) for start in edits) <= 4


async def test_status_lines_of_slow_starting_streams_spend_the_channel_budget_too(limited_bot: RunningBot) -> None:
    """Six answers slow to start in one channel: their "⏳ Generating" lines are writes like any other, paced
    with the streams' edits (unpaced, six status edits in one second drew a 429)."""
    fake = limited_bot.fake
    limited_bot.sandbox.faults.delay_seconds = 4.0  # every model is slow to start: status lines after ~3 s
    limited_bot.sandbox.faults.chat_reply = "word " * 30
    limited_bot.sandbox.faults.chat_chunk_size = 25
    askers = [fake.MEMBER, fake.OTHER_MEMBER] * 3  # three each: a member's in-flight limit is 3
    handles = [await fake.invoke("chat", prompt=f"slow {n}", user=user) for n, user in enumerate(askers)]
    firsts = [await fake.response(h, timeout=30) for h in handles]
    for first in firsts:
        await _finished(fake, first)
    assert fake.rate_limited == []
    shown = [any(str(v.get("content") or "").startswith("⏳ Generating") for v in f.versions) for f in firsts]
    assert any(shown), "no status line at all: the test did not exercise them"
    assert all("⏳" not in f.content for f in firsts)  # each status line gave way to its answer


async def test_stop_ends_the_answer_and_settles(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    running_bot.sandbox.faults.chat_reply = "slow " * 400
    running_bot.sandbox.faults.chat_chunk_size = 5
    running_bot.sandbox.faults.chat_chunk_delay = 0.02
    first = await fake.response(await fake.invoke("chat", prompt="go on"))
    await fake.wait_for(lambda: first.custom_ids())
    stranger = await fake.click(first, first.custom_ids()[0], user=fake.OTHER_MEMBER)
    assert "Only the person who asked" in (await fake.response(stranger)).content
    await fake.click(first, first.custom_ids()[0], user=fake.MEMBER)
    (message,) = await _finished(fake, first)
    assert "⏹️ Stopped." in message.content
    assert len(_body(message.content)) < len("slow " * 400)
    row = await running_bot.services.db.fetch_one("SELECT state FROM reservations")
    assert row["state"] == "settled"


async def test_a_failure_mid_stream_keeps_the_text_and_refunds(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    running_bot.sandbox.faults.chat_reply = "partial answer " * 20
    running_bot.sandbox.faults.chat_chunk_size = 15
    running_bot.sandbox.faults.chat_chunk_delay = 0.01
    running_bot.sandbox.faults.chat_fail_after_chunks = 4
    first = await fake.response(await fake.invoke("chat", prompt="x"))
    (message,) = await _finished(fake, first)
    assert _body(message.content).startswith("partial answer partial answer")
    assert "⚠️ Interrupted by a Hypereal error" in message.content
    assert "0 credits · 1000 left" in message.content
    row = await running_bot.services.db.fetch_one("SELECT state FROM reservations")
    assert row["state"] == "refunded"


async def test_everyone_in_a_model_answer_pings_no_one(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    running_bot.sandbox.faults.chat_reply = "Hey @everyone and <@&300000000000000001>!"
    first = await fake.response(await fake.invoke("chat", prompt="ping"))
    await _finished(fake, first)
    writes = [
        c for c in fake.calls if c.method in ("POST", "PATCH") and isinstance(c.json, dict) and "content" in c.json
    ]
    assert writes
    assert all(c.json.get("allowed_mentions") == {"parse": []} for c in writes)


async def test_a_reply_continues_the_conversation(
    fake_discord: FakeDiscord, sandbox: SandboxProvider, tmp_path: Path
) -> None:
    settings = bot_settings(fake_discord, sandbox, tmp_path, message_content_intent=True)
    async with run_bot(settings, fake_discord, sandbox):
        first = await fake_discord.response(await fake_discord.invoke("chat", prompt="my name is Ada"))
        await _finished(fake_discord, first)
        await fake_discord.send_user_message(
            fake_discord.CHANNEL_ID, fake_discord.MEMBER, "what is my name?", reply_to=first.id
        )
        answers = await fake_discord.wait_for(
            lambda: [m for m in fake_discord.messages() if "what is my name?" in m.content and "-# " in m.content]
        )
    assert "(turns: 3)" in answers[0].content
    last_chat = [r for r in sandbox.requests if r.path == "/v1/chat"][-1].json
    assert [m["content"] for m in last_chat["messages"]] == [
        "my name is Ada",
        "Sandbox reply to: my name is Ada (turns: 1)",
        "what is my name?",
    ]

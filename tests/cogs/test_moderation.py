"""Content rules and abuse limits end to end (issue 16): the checks run before anything is reserved or sent."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bot.sandbox import SandboxProvider
from tests.conftest import RunningBot, bot_settings, run_bot
from tests.fakediscord import FakeDiscord

pytestmark = pytest.mark.both_backends  # each end-to-end test runs on SQLite and on PostgreSQL

# One paid command of each kind that takes text: /image (sync), /chat (streamed), /video and /tts (async jobs).
PAID_WITH_TEXT = [
    ("image", {"prompt": "a Gräwlix monster"}),
    ("chat", {"prompt": "tell me about the gräwlix"}),
    ("video", {"prompt": "GRAWLIX dancing"}),
    ("tts", {"text": "(happy) grawlixes everywhere"}),
]


async def _reservations(bot: RunningBot) -> int:
    return int(await bot.services.db.fetch_value("SELECT COUNT(*) FROM reservations"))


async def _settled(bot: RunningBot) -> tuple[int, int]:
    """(reservations settled, still held)."""
    rows = await bot.services.db.fetch_all("SELECT state, COUNT(*) AS n FROM reservations GROUP BY state")
    counts = {row["state"]: int(row["n"]) for row in rows}
    return counts.get("settled", 0), counts.get("held", 0)


async def _add_rule(fake: FakeDiscord, rule: str, where: str | None = None) -> None:
    options = {"rule": rule} | ({"where": where} if where else {})
    reply = await fake.response(await fake.invoke("moderation blocklist add", user=fake.ADMIN, **options))
    assert "are now refused" in reply.content


async def test_a_blocklisted_word_is_refused_before_anything_is_reserved_or_sent(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    await _add_rule(fake, "grawlix*")
    await _add_rule(fake, "unrelated")
    for command, options in PAID_WITH_TEXT:
        refused = await fake.response(await fake.invoke(command, **options))
        assert refused.ephemeral, command
        assert "matches the server's blocked term `grawlix*`" in refused.content, command
        assert "unrelated" not in refused.content  # the rule that matched, never the whole list
        assert "Rephrase it" in refused.content
    # Even in an age-restricted channel: this rule applies everywhere.
    refused = await fake.response(await fake.invoke("image", prompt="grawlix", channel_id=fake.NSFW_CHANNEL_ID))
    assert "blocked term" in refused.content
    assert await _reservations(running_bot) == 0
    assert running_bot.sandbox.requests == []


async def test_an_outside_age_restricted_rule_passes_in_an_age_restricted_channel(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    await _add_rule(fake, "grawlix*", where="outside_age_restricted")
    for command, options in PAID_WITH_TEXT:
        refused = await fake.response(await fake.invoke(command, **options))
        assert "blocked term `grawlix*`" in refused.content, command
    assert await _reservations(running_bot) == 0
    assert running_bot.sandbox.requests == []
    # The same prompts in the age-restricted channel, and in a thread of it (threads follow their parent).
    for channel in (fake.NSFW_CHANNEL_ID, fake.add_nsfw_thread()):
        for command, options in PAID_WITH_TEXT:
            first = await fake.response(await fake.invoke(command, channel_id=channel, **options), timeout=20)
            assert "blocked" not in first.content, (command, first.content)
    await fake.wait_for(lambda: len(running_bot.sandbox.requests) >= 8, timeout=20)
    paths = {r.path for r in running_bot.sandbox.requests if r.method == "POST"}
    # /image, /chat, /video and /tts (audio goes to the media endpoint) all reached Hypereal.
    assert paths == {"/api/media/generate", "/v1/chat", "/v1/images/generate", "/v1/videos/generate"}
    for _ in range(200):  # let the async jobs finish so the books close
        if (await _settled(running_bot))[1] == 0:
            break
        await asyncio.sleep(0.1)


async def test_explicit_terms_follow_the_adult_content_setting(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    refused = await fake.response(await fake.invoke("image", prompt="a NUDE statue"))
    assert "Explicit content is only allowed in age-restricted channels here" in refused.content
    assert "`nude`" in refused.content
    allowed = await fake.response(await fake.invoke("image", prompt="a NUDE statue", channel_id=fake.NSFW_CHANNEL_ID))
    assert not allowed.content.startswith("❌")
    await fake.wait_for(lambda: allowed.latest_files)
    reply = await fake.response(await fake.invoke("moderation adult-content", user=fake.ADMIN, state="off"))
    assert reply.content == "Adult content: off (refused everywhere)."
    refused = await fake.response(await fake.invoke("image", prompt="a nude statue", channel_id=fake.NSFW_CHANNEL_ID))
    assert "This server does not allow explicit content" in refused.content
    shown = await fake.response(await fake.invoke("moderation show", user=fake.ADMIN))
    fields = {f["name"]: f["value"] for f in shown.embeds[0]["fields"]}
    assert fields["Adult content"] == "off (refused everywhere)"
    assert fields["In progress per member"] == "at most 3"
    assert len([r for r in running_bot.sandbox.requests if r.path == "/v1/images/generate"]) == 1


async def test_a_member_cannot_change_moderation(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    refused = await fake.response(await fake.invoke("moderation blocklist add", user=fake.MEMBER, rule="x"))
    assert "Manage Server" in refused.content
    assert await running_bot.services.moderation.rules(fake.GUILD_ID) == []


async def test_a_blocked_member_is_refused_with_whom_to_ask(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    done = await fake.response(
        await fake.invoke("quota block", user=fake.ADMIN, member=fake.MEMBER, reason="spamming the channel")
    )
    assert "is now blocked" in done.content
    for command, options in PAID_WITH_TEXT:
        refused = await fake.response(await fake.invoke(command, **options))
        assert refused.ephemeral
        assert "blocked you from using the bot's paid commands on this server (reason: spamming the channel)" in (
            refused.content
        )
        assert "Ask a server admin" in refused.content
    assert await _reservations(running_bot) == 0
    assert running_bot.sandbox.requests == []
    await fake.response(await fake.invoke("quota unblock", user=fake.ADMIN, member=fake.MEMBER))
    ok = await fake.response(await fake.invoke("image", prompt="a fox"))
    await fake.wait_for(lambda: ok.latest_files)
    audit = await fake.response(await fake.invoke("quota audit", user=fake.ADMIN, member=fake.MEMBER))
    lines = audit.embeds[0]["description"].splitlines()
    assert f"member block (<@{fake.MEMBER.id}>): blocked → allowed" in lines[0]
    assert f"member block (<@{fake.MEMBER.id}>): allowed → blocked" in lines[1]


async def test_200_concurrent_images_from_one_member_keep_3_in_flight(running_bot: RunningBot) -> None:
    fake, sandbox = running_bot.fake, running_bot.sandbox
    sandbox.faults.delay_seconds = 0.3  # each image takes a while: the requests overlap
    handles = await asyncio.gather(*(fake.invoke("image", prompt=f"fox {n}") for n in range(200)))
    assert len(handles) == 200

    def refusals() -> int:
        return sum(1 for m in fake.messages() if m.content.startswith("❌ Refused, not queued: you already have 3"))

    async def all_answered() -> bool:
        settled, held = await _settled(running_bot)
        return held == 0 and settled + refusals() == 200

    for _ in range(1200):
        if await all_answered():
            break
        await asyncio.sleep(0.1)
    settled, held = await _settled(running_bot)
    assert (settled, held, refusals()) == (settled, 0, 200 - settled)
    posts = [r for r in sandbox.requests if r.path == "/v1/images/generate"]
    assert len(posts) == settled  # every refused request stayed away from Hypereal

    assert sandbox.max_in_flight <= 3
    assert settled >= 3
    assert await _reservations(running_bot) == settled  # refused ones reserved nothing
    assert await running_bot.services.ledger.check_invariants() == []


async def test_a_category_cooldown_refuses_the_second_request(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    reply = await fake.response(
        await fake.invoke("moderation limits", user=fake.ADMIN, category="image", cooldown=600, max_in_flight=5)
    )
    assert "5 request(s) in progress" in reply.content
    assert "600 s between two requests" in reply.content
    first = await fake.response(await fake.invoke("image", prompt="a fox"))
    await fake.wait_for(lambda: first.latest_files)
    refused = await fake.response(await fake.invoke("image", prompt="another fox"))
    assert refused.ephemeral
    assert "600-second cooldown between image requests" in refused.content
    assert "try again in" in refused.content
    assert await _reservations(running_bot) == 1
    audit = await fake.response(await fake.invoke("quota audit", user=fake.ADMIN))
    text = audit.embeds[0]["description"]
    assert "cooldown (image): none → 600 s" in text
    assert "setting max_inflight: none → 5" in text


async def test_a_reply_continuing_a_conversation_meets_the_same_rules(
    fake_discord: FakeDiscord, sandbox: SandboxProvider, tmp_path: Path, e2e_backend: dict[str, Any]
) -> None:
    fake = fake_discord
    settings = bot_settings(fake, sandbox, tmp_path, message_content_intent=True, **e2e_backend)
    async with run_bot(settings, fake, sandbox) as bot:
        first = await fake.response(await fake.invoke("chat", prompt="hello there"))
        # The answer is done (and linked to its conversation) when its cost line is there.
        await fake.wait_for(
            lambda: any(
                " credits" in m.content and "-# " in m.content.split("\n")[-1] for m in fake.messages(fake.CHANNEL_ID)
            ),
            timeout=30,
        )
        await _add_rule(fake, "grawlix*")
        await fake.send_user_message(fake.CHANNEL_ID, fake.MEMBER, "and the grawlixes?", reply_to=first.id)
        refused = await fake.wait_for(
            lambda: next((m for m in fake.messages(fake.CHANNEL_ID) if m.content.startswith("❌")), None)
        )
        assert "blocked term `grawlix*`" in refused.content
        assert len([r for r in sandbox.requests if r.path == "/v1/chat"]) == 1
        assert await _reservations(bot) == 1

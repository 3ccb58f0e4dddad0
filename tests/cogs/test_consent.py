"""The voice-clone consent notice end to end: once per member per server, before anything is reserved."""

from __future__ import annotations

import dataclasses

import pytest

from bot.consent import VOICE_CLONE_NOTICE
from tests.conftest import RunningBot
from tests.fakediscord import FakeDiscord, MessageRecord

VOICE_FLAG = 1 << 13  # IS_VOICE_MESSAGE

pytestmark = pytest.mark.both_backends  # each end-to-end test runs on SQLite and on PostgreSQL

MP3 = b"ID3" + b"\x00" * 200


async def _reservations(bot: RunningBot) -> int:
    return int(await bot.services.db.fetch_value("SELECT COUNT(*) FROM reservations"))


def _clone_requests(bot: RunningBot) -> int:
    return sum(1 for r in bot.sandbox.requests if r.path == "/api/media/generate")


async def _clone(fake: FakeDiscord, **user: object) -> MessageRecord:
    sample = fake.attachment("me.mp3", MP3, "audio/mpeg")
    return await fake.response(await fake.invoke("voice-clone", text="Good morning", sample=sample, **user))


async def _price_question(fake: FakeDiscord, count: int = 1) -> MessageRecord:
    found = await fake.wait_for(
        lambda: (lambda asked: asked if len(asked) >= count else None)(
            [m for m in fake.messages() if "costs **107 credits**" in m.content]
        )
    )
    return found[-1]


async def test_the_first_voice_clone_asks_for_consent_before_anything_is_reserved(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    notice = await _clone(fake)
    assert notice.ephemeral
    assert "Clone only voices you have the right to use" in notice.content
    assert "sent to Hypereal" in notice.content
    assert await _reservations(running_bot) == 0
    assert _clone_requests(running_bot) == 0

    stranger = await fake.click(notice, notice.custom_ids()[0], user=fake.OTHER_MEMBER)
    assert "not yours" in (await fake.response(stranger)).content
    assert await _reservations(running_bot) == 0

    await fake.click(notice, notice.custom_ids()[0])  # Accept
    await fake.wait_for(lambda: fake.message(notice.id).content.startswith("✅ Accepted"))
    ask = await _price_question(fake)  # the usual confirmation follows (107 credits is over the threshold)
    await fake.click(ask, ask.custom_ids()[0])
    await fake.wait_for(lambda: _clone_requests(running_bot) == 1)
    await fake.wait_for(lambda: [m for m in fake.messages() if int(m.current["flags"]) & VOICE_FLAG], 15)  # delivered

    # Accepted once on this server: the next clone goes straight to the price.
    again = await _clone(fake)
    assert "costs **107 credits**" in again.content
    assert "right to use" not in again.content


async def test_cancelling_the_notice_reserves_and_sends_nothing(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    notice = await _clone(fake)
    await fake.click(notice, notice.custom_ids()[1])  # Cancel
    await fake.wait_for(lambda: fake.message(notice.id).content.startswith("Cancelled: no voice was cloned"))
    assert await _reservations(running_bot) == 0
    assert _clone_requests(running_bot) == 0
    assert "right to use" in (await _clone(fake)).content  # not accepted: asked again


async def test_an_admin_can_turn_the_notice_off(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    done = await fake.response(await fake.invoke("quota voice-clone-notice", user=fake.ADMIN, state="off"))
    assert "notice is off" in done.content
    first = await _clone(fake, user=fake.OTHER_MEMBER)  # a member who never accepted
    assert "costs **107 credits**" in first.content  # straight to the price: no notice
    shown = await fake.response(await fake.invoke("quota show", user=fake.ADMIN))
    fields = {f["name"]: f["value"] for f in shown.embeds[0]["fields"]}
    assert fields["Voice-clone consent notice"] == "off"
    audit = await fake.response(await fake.invoke("quota audit", user=fake.ADMIN))
    assert "setting voice_clone_notice" in audit.embeds[0]["description"]
    assert "on → off" in audit.embeds[0]["description"]


async def test_forget_me_forgets_the_acceptance(running_bot: RunningBot) -> None:
    services, fake = running_bot.services, running_bot.fake
    await services.voice_clone_consent.accept(fake.GUILD_ID, fake.MEMBER.id)
    assert "costs **107 credits**" in (await _clone(fake)).content  # accepted: straight to the price
    ask = await fake.response(await fake.invoke("forget-me"))
    await fake.click(ask, ask.custom_ids()[0])
    await fake.wait_for(lambda: "Deleted" in fake.message(ask.id).content)
    assert fake.message(ask.id).content.endswith(", 1 voice-clone notice acceptance.")
    assert "right to use" in (await _clone(fake)).content  # forgotten: the notice again


async def test_an_admin_purge_forgets_the_acceptance(running_bot: RunningBot) -> None:
    services, fake = running_bot.services, running_bot.fake
    await services.voice_clone_consent.accept(fake.GUILD_ID, fake.MEMBER.id)
    ask = await fake.response(await fake.invoke("privacy purge", user=fake.ADMIN, member=str(fake.MEMBER.id)))
    await fake.click(ask, ask.custom_ids()[0], user=fake.ADMIN)
    await fake.wait_for(lambda: "Deleted" in fake.message(ask.id).content)
    assert "1 voice-clone notice acceptance" in fake.message(ask.id).content
    assert await services.voice_clone_consent.needed(fake.GUILD_ID, fake.MEMBER.id)


async def test_below_the_threshold_accept_goes_straight_to_the_result(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    await fake.response(await fake.invoke("quota confirm", user=fake.ADMIN, credits=1000))
    notice = await _clone(fake)
    assert "right to use" in notice.content
    await fake.click(notice, notice.custom_ids()[0])  # Accept: no price question follows
    voiced = await fake.wait_for(lambda: [m for m in fake.messages() if int(m.current["flags"]) & VOICE_FLAG], 15)
    assert not voiced[0].ephemeral  # the cloned voice is posted in the channel, as without the notice
    assert not [m for m in fake.messages() if "costs **" in m.content]
    assert _clone_requests(running_bot) == 1


async def test_a_notice_left_unanswered_times_out_and_reserves_nothing(running_bot: RunningBot) -> None:
    fake, consent = running_bot.fake, running_bot.services.voice_clone_consent
    consent.notice = dataclasses.replace(VOICE_CLONE_NOTICE, wait=0.3)  # the real wait is 5 minutes
    notice = await _clone(fake)
    await fake.wait_for(lambda: fake.message(notice.id).content.startswith("Timed out: no voice was cloned"))
    assert fake.message(notice.id).custom_ids() == []  # the buttons are gone
    assert await _reservations(running_bot) == 0
    assert _clone_requests(running_bot) == 0
    assert await consent.needed(fake.GUILD_ID, fake.MEMBER.id)


async def test_a_clone_refused_by_the_channel_rules_shows_no_notice(running_bot: RunningBot) -> None:
    fake, consent = running_bot.fake, running_bot.services.voice_clone_consent
    await fake.response(await fake.invoke("channels disable", user=fake.ADMIN, category="audio"))
    refused = await _clone(fake)
    assert "requests are switched off in this channel" in refused.content
    assert "right to use" not in refused.content
    assert await consent.needed(fake.GUILD_ID, fake.MEMBER.id)

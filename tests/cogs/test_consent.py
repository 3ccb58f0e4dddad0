"""The voice-clone consent notice end to end: once per member per server, before anything is reserved."""

from __future__ import annotations

import pytest

from tests.conftest import RunningBot
from tests.fakediscord import FakeDiscord, MessageRecord

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
    first = await _clone(fake)
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
    assert not await services.voice_clone_consent.needed(fake.GUILD_ID, fake.MEMBER.id)
    await services.privacy.purge(user_id=fake.MEMBER.id, guild_id=fake.GUILD_ID)
    assert await services.voice_clone_consent.needed(fake.GUILD_ID, fake.MEMBER.id)

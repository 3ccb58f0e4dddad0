"""Bad input from Discord end to end: refused ephemerally with a clear sentence, nothing reserved or sent.

The fake Discord sends what a modified client could: values outside the commands' ``min_value``/
``max_length``/choices, invisible prompts, attachments that are not what they claim or that point
anywhere. discord.py does not enforce those bounds, so the bot must.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from bot.sandbox import SandboxProvider
from tests.conftest import RunningBot, bot_settings, run_bot
from tests.fakediscord import FakeDiscord, InteractionHandle, MessageRecord, files

INVISIBLE = "\u200b\u200b\x07"


async def _reservations(bot: RunningBot) -> list[str]:
    return [row["state"] for row in await bot.services.db.fetch_all("SELECT state FROM reservations")]


async def _refusal(fake: FakeDiscord, handle: InteractionHandle) -> str:
    message = await fake.response(handle)
    assert message.ephemeral, message.content
    assert message.content.startswith("❌ ")
    return message.content


async def _nothing_happened(bot: RunningBot) -> None:
    assert await _reservations(bot) == []
    assert bot.sandbox.requests == []
    assert await bot.services.ledger.check_invariants() == []


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


def _pointing_at(fake: FakeDiscord, url: str, data: bytes = files.PNG) -> dict[str, Any]:
    """An attachment whose metadata a modified client rewrote to point somewhere else."""
    attachment = fake.attachment("x.png", data, "image/png")
    attachment["url"] = attachment["proxy_url"] = url
    return attachment


# ── numbers and prompts ──────────────────────────────────────────────────────


@pytest.mark.parametrize("duration", [-5, 0, 21, 10**9])
async def test_video_durations_outside_the_default_range_are_refused(running_bot: RunningBot, duration: int) -> None:
    fake = running_bot.fake  # the default text-to-video model takes a duration but lists no values
    text = await _refusal(fake, await fake.invoke("video", prompt="a fox", duration=duration))
    assert "Duration must be a whole number from 1 to 20 seconds" in text
    await _nothing_happened(running_bot)


async def test_a_video_duration_inside_the_range_is_sent_and_priced(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    status = await fake.response(await fake.invoke("video", prompt="a fox", model="seedance-2-0-fast-t2v", duration=10))
    assert "106 credits" in status.content  # 53 credits buy 5 s: asked first, as it is over the threshold
    await fake.click(status, status.custom_ids()[0])
    sent = await fake.wait_for(
        lambda: [r.json for r in running_bot.sandbox.requests if r.path == "/v1/videos/generate"]
    )
    assert sent[0]["input"]["duration"] == 10


async def test_a_long_video_prompt_is_refused_with_the_limit(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    text = await _refusal(fake, await fake.invoke("video", prompt="x" * 6000))
    assert "can be up to 2,500 characters; yours has 6,000" in text
    await _nothing_happened(running_bot)


@pytest.mark.parametrize(
    ("command", "options", "expected"),
    [
        ("image", {"prompt": INVISIBLE}, "The prompt is empty"),
        ("chat", {"prompt": INVISIBLE}, "The prompt is empty. Ask something"),
        ("chat", {"prompt": "hi", "system": INVISIBLE}, "The system prompt is empty"),
        ("video", {"prompt": INVISIBLE}, "The prompt is empty"),
        ("tts", {"text": INVISIBLE}, "The text is empty"),
        ("image", {"prompt": "a fox", "count": 0}, "Count must be a whole number from 1 to 4"),
        ("image", {"prompt": "a fox", "count": 10**6}, "Count must be a whole number from 1 to 4"),
        ("image", {"prompt": "a fox", "model": "gemini-3-1-flash-t2i", "aspect_ratio": "1:1 --v 7"}, "not a valid"),
        ("video", {"prompt": "a fox", "model": "seedance-1-5-t2v", "duration": 5}, "does not take a duration"),
        ("transcribe", {"audio": None, "language": "x" * 500}, "is not a language code"),
    ],
)
async def test_invisible_prompts_and_out_of_range_options_are_refused(
    running_bot: RunningBot, command: str, options: dict[str, Any], expected: str
) -> None:
    fake = running_bot.fake
    if "audio" in options:
        options["audio"] = fake.attachment("talk.mp3", files.MP3, "audio/mpeg")
    text = await _refusal(fake, await fake.invoke(command, **options))
    assert expected in text
    await _nothing_happened(running_bot)


async def test_the_cleaned_prompt_is_what_hypereal_gets(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    await fake.response(await fake.invoke("image", prompt="\u202ea\u200b red\x00 fox 👩\u200d💻\u200d"))
    sent = next(r.json for r in running_bot.sandbox.requests if r.path == "/v1/images/generate")
    assert sent["prompt"] == "a red fox 👩\u200d💻"


async def test_a_reply_of_invisible_characters_is_not_sent_or_charged(
    fake_discord: FakeDiscord, sandbox: SandboxProvider, tmp_path: Path
) -> None:
    fake = fake_discord
    async with run_bot(bot_settings(fake, sandbox, tmp_path, message_content_intent=True), fake, sandbox) as bot:
        first = await fake.response(await fake.invoke("chat", prompt="hello"))
        await fake.wait_for(lambda: "\n-# " in fake.message(first.id).content)
        asked = len([r for r in sandbox.requests if r.path == "/v1/chat"])
        await fake.send_user_message(fake.CHANNEL_ID, fake.MEMBER, INVISIBLE, reply_to=first.id)
        refusal = await fake.wait_for(lambda: [m for m in fake.messages() if m.content.startswith("❌ ")])
        assert "The prompt is empty" in refusal[0].content
        assert len([r for r in sandbox.requests if r.path == "/v1/chat"]) == asked
        assert await _reservations(bot) == ["settled"]  # the first question only


# ── attachments ──────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("data", "expected"),
    [(b"", "`x.png` is empty"), (files.HTML, "`x.png` is not an image: its contents are not PNG")],
)
async def test_files_labelled_png_that_are_not_images_are_refused(
    running_bot: RunningBot, data: bytes, expected: str
) -> None:
    fake = running_bot.fake
    for command, options in (
        ("edit", {"prompt": "make it blue", "image": fake.attachment("x.png", data, "image/png")}),
        ("video", {"prompt": "wave", "image": fake.attachment("x.png", data, "image/png")}),
        ("3d", {"image": fake.attachment("x.png", data, "image/png")}),
    ):
        text = await _refusal(fake, await fake.invoke(command, **options))
        assert expected in text, command
    await _nothing_happened(running_bot)


@pytest.mark.parametrize("url", ["http://127.0.0.1:1/x.png", "http://169.254.169.254/x.png"])
async def test_attachment_urls_off_discord_are_never_sent_to_hypereal(running_bot: RunningBot, url: str) -> None:
    fake = running_bot.fake
    for command, options in (
        ("edit", {"prompt": "make it blue", "image": _pointing_at(fake, url)}),
        (
            "edit",
            {
                "prompt": "make it blue",
                "image": fake.attachment("a.png", files.PNG, "image/png"),
                "image2": _pointing_at(fake, url),
            },
        ),
        ("video", {"prompt": "wave", "image": _pointing_at(fake, url)}),
    ):
        text = await _refusal(fake, await fake.invoke(command, **options))
        assert "`x.png` is not a file uploaded to Discord, so the bot will not send it to Hypereal" in text
    await _nothing_happened(running_bot)


async def test_a_recording_that_is_not_audio_is_refused(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    for command, options in (
        ("transcribe", {"audio": fake.attachment("talk.mp3", files.HTML, "audio/mpeg")}),
        ("voice-clone", {"text": "hello", "sample": fake.attachment("talk.mp3", b"", "audio/mpeg")}),
    ):
        text = await _refusal(fake, await fake.invoke(command, **options))
        assert "`talk.mp3` is" in text
    await _nothing_happened(running_bot)


async def _user_message_with_embed(fake: FakeDiscord, image: dict[str, str]) -> MessageRecord:
    return await fake.send_user_message(fake.CHANNEL_ID, fake.OTHER_MEMBER, "look", embeds=[{"image": image}])


async def test_edit_image_on_an_embed_uses_discords_proxy_copy(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    hosted = fake.attachment("cat.png", files.PNG, "image/png")
    message = await _user_message_with_embed(fake, {"url": "http://169.254.169.254/x.png", "proxy_url": hosted["url"]})
    menu = await fake.invoke_message_command("Edit image", message)
    modal = await fake.wait_for(lambda: menu.modal)
    submitted = await fake.submit_modal(modal["custom_id"], {"prompt": "make it blue"})
    await fake.wait_for(lambda: (m := fake.original(submitted)) is not None and m.latest_files)
    sent = next(r.json for r in running_bot.sandbox.requests if r.path == "/v1/images/generate")
    assert sent["images"] == [hosted["url"]]


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ({"url": "http://169.254.169.254/x.png"}, "not hosted by Discord"),
        ({"url": "http://169.254.169.254/x.png", "proxy_url": "http://169.254.169.254/x.png"}, "not a file uploaded"),
    ],
)
async def test_edit_image_refuses_an_embed_image_discord_does_not_host(
    running_bot: RunningBot, image: dict[str, str], expected: str
) -> None:
    fake = running_bot.fake
    message = await _user_message_with_embed(fake, image)
    text = await _refusal(fake, await fake.invoke_message_command("Edit image", message))
    assert expected in text
    await _nothing_happened(running_bot)


@pytest.mark.parametrize("button", [1, 2, 3])  # Edit, Animate, To 3D
async def test_result_buttons_refuse_a_stored_image_off_discord_and_off_hypereal(
    running_bot: RunningBot, button: int
) -> None:
    fake, db = running_bot.fake, running_bot.services.db
    result = await fake.response(await fake.invoke("image", prompt="a fox"))
    await fake.wait_for(lambda: result.latest_files)
    for _ in range(500):  # the bot records the posted message's attachment URLs right after posting
        if await db.fetch_value("SELECT COUNT(*) FROM generations WHERE message_id IS NOT NULL"):
            break
        await asyncio.sleep(0.01)
    # As if the stored URLs had been tampered with, or came from an older version of the bot.
    await db.execute(
        "UPDATE generations SET attachment_urls = ?, output_urls = ?", ('["http://169.254.169.254/x"]',) * 2
    )
    running_bot.sandbox.requests.clear()
    text = await _refusal(fake, await fake.click(result, result.custom_ids()[button]))
    assert "This result's image is not available to the bot any more" in text
    assert running_bot.sandbox.requests == []
    assert await _reservations(running_bot) == ["settled"]  # only the image itself


# ── operator and admin commands ──────────────────────────────────────────────


@pytest.mark.parametrize(
    ("command", "options", "expected"),
    [
        ("quota default-cap", {"category": "image", "cap": -5}, "A cap must be a whole number from 0 to 10,000,000"),
        ("quota user-cap", {"member": FakeDiscord.MEMBER.id, "category": "video", "cap": -5}, "A cap must be"),
        ("quota role-cap", {"role": FakeDiscord.ROLE_ID, "category": "image", "cap": 10**30}, "far outside"),
        ("quota confirm", {"credits": -1}, "The confirmation threshold must be a whole number from 0 to 1,000,000"),
        ("quota period", {"period": "year"}, "The period must be one of day, week, month, none"),
        ("quota default-cap", {"category": "bogus", "cap": 5}, "`bogus` is not a value this option takes"),
        ("usage", {"by": "planet"}, "Group by must be one of member, category, channel"),
        ("usage", {"period": "decade"}, "The period must be one of this_period, last_period, last_30_days"),
        ("budget grant", {"amount": 10, "server_id": "²"}, "server_id must be a Discord id: 17 to 20 digits"),
        ("budget grant", {"amount": 10, "server_id": "1" * 30}, "server_id must be a Discord id"),
        ("budget freeze", {"frozen": True, "server_id": "9" * 20}, "server_id must be a Discord id"),
        ("budget grant", {"amount": 10**30}, "The amount must be a whole number from -100,000,000 to 100,000,000"),
        ("budget set", {"allowance": -1, "period": "week"}, "The allowance must be a whole number from 0"),
        ("budget set", {"allowance": 10, "period": "year"}, "The period must be one of day, week, month, none"),
    ],
)
async def test_admin_and_operator_values_out_of_range_get_a_clear_answer_and_change_nothing(
    running_bot: RunningBot,
    caplog: pytest.LogCaptureFixture,
    command: str,
    options: dict[str, Any],
    expected: str,
) -> None:
    fake, services = running_bot.fake, running_bot.services

    async def state() -> tuple[object, ...]:
        budget = await services.ledger.budget(fake.GUILD_ID)  # first: it creates the budget (and a ledger row)
        caps = await services.ledger.caps(fake.GUILD_ID)
        rows = await services.db.fetch_value("SELECT COUNT(*) FROM ledger")
        return budget, await services.guild_settings.get(fake.GUILD_ID), caps.default, caps.roles, caps.users, rows

    before = await state()
    caplog.set_level(logging.INFO)
    text = await _refusal(fake, await fake.invoke(command, user=fake.ADMIN, **options))
    assert expected in text
    assert "Something went wrong" not in text
    assert _errors(caplog) == []
    assert await state() == before


async def test_chat_defaults_cleans_the_system_prompt(running_bot: RunningBot) -> None:
    fake, services = running_bot.fake, running_bot.services
    text = await _refusal(fake, await fake.invoke("chat-defaults", user=fake.ADMIN, system_prompt=INVISIBLE))
    assert "The system prompt is empty" in text
    await fake.response(await fake.invoke("chat-defaults", user=fake.ADMIN, system_prompt="\u200bBe brief.\x07"))
    assert (await services.guild_settings.get(fake.GUILD_ID)).system_prompt == "Be brief."

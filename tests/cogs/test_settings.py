"""/settings end to end: a member's choices in the ephemeral panel are used when a later command leaves them out."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.sandbox import SandboxProvider
from tests.conftest import RunningBot, bot_settings, run_bot
from tests.fakediscord import FakeDiscord, MessageRecord

pytestmark = pytest.mark.both_backends  # each end-to-end test runs on SQLite and on PostgreSQL


async def _panel(fake: FakeDiscord) -> MessageRecord:
    message = await fake.response(await fake.invoke("settings edit"))
    assert message.ephemeral
    return message


async def _choose(fake: FakeDiscord, panel: MessageRecord, custom_id: str, value: str) -> None:
    before = len(panel.versions)
    handle = await fake.select(panel, custom_id, [value])
    await fake.wait_for(lambda: len(panel.versions) > before)
    assert handle.callback_types == [7]  # the panel itself is updated


def _image_requests(bot: RunningBot) -> list[dict]:
    return [r.json for r in bot.sandbox.requests if r.path == "/v1/images/generate"]


async def _image(fake: FakeDiscord, **options: object) -> None:
    message = await fake.response(await fake.invoke("image", **options))
    await fake.wait_for(lambda: message.latest_files or message.ephemeral)


async def test_aspect_ratio_16_9_is_sent_by_the_next_image_without_the_option(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    panel = await _panel(fake)
    assert len(panel.components) <= 5  # Discord's limit of five rows
    await _choose(fake, panel, "settings:aspect_ratio", "16:9")
    assert "Aspect ratio: **16:9** (yours)" in panel.embeds[0]["description"]

    await _image(fake, prompt="a wide valley")
    assert _image_requests(running_bot)[-1]["aspect_ratio"] == "16:9"
    await _image(fake, prompt="a square", aspect_ratio="1:1")  # an option typed in the command wins
    assert _image_requests(running_bot)[-1]["aspect_ratio"] == "1:1"
    await fake.response(await fake.invoke("image", prompt="someone else's", user=fake.OTHER_MEMBER))
    await fake.wait_for(lambda: len(_image_requests(running_bot)) == 3)
    assert "aspect_ratio" not in _image_requests(running_bot)[-1]  # another member's settings are their own


async def test_settings_reset_brings_back_the_defaults(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    panel = await _panel(fake)
    await _choose(fake, panel, "settings:aspect_ratio", "9:16")
    reply = await fake.response(await fake.invoke("settings reset"))
    assert reply.ephemeral
    assert "reset" in reply.content
    await _image(fake, prompt="a fox")
    assert "aspect_ratio" not in _image_requests(running_bot)[-1]


async def test_chat_model_and_private_answers_by_default(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    panel = await _panel(fake)
    await _choose(fake, panel, "settings:chat_model", "gpt-5")
    before = len(panel.versions)
    await fake.click(panel, "settings:private")
    await fake.wait_for(lambda: len(panel.versions) > before)
    assert "**private** (yours)" in panel.embeds[0]["description"]

    answer = await fake.response(await fake.invoke("chat", prompt="secret plan"))
    await fake.wait_for(lambda: "\n-# " in answer.content or answer.content.startswith("-# "))
    assert answer.ephemeral
    assert "asked:" not in answer.content  # a private answer does not quote the question
    chat = [r.json for r in running_bot.sandbox.requests if r.path == "/v1/chat"][-1]
    assert chat["model"] == "gpt-5"
    public = await fake.response(await fake.invoke("chat", prompt="for everyone", private=False))
    assert not public.ephemeral


async def test_speech_model_and_format_are_used_by_tts(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    panel = await _panel(fake)
    await _choose(fake, panel, "settings:speech", "minimax-speech-02 · wav")
    assert "Speech: **`minimax-speech-02`** (yours) · format **wav** (yours)" in panel.embeds[0]["description"]
    await fake.response(await fake.invoke("tts", text="Hello there!"))
    sent = await fake.wait_for(
        lambda: [r.json for r in running_bot.sandbox.requests if r.path == "/api/media/generate"]
    )
    assert sent[-1] == {"model": "minimax-speech-02", "input": {"text": "Hello there!", "format": "wav"}}


async def test_a_conversation_started_by_a_mention_uses_the_members_chat_model(
    fake_discord: FakeDiscord, sandbox: SandboxProvider, tmp_path: Path
) -> None:
    settings = bot_settings(fake_discord, sandbox, tmp_path, message_content_intent=True)
    async with run_bot(settings, fake_discord, sandbox) as running:
        fake = running.fake
        panel = await _panel(fake)
        await _choose(fake, panel, "settings:chat_model", "gpt-5")
        await fake.send_user_message(fake.CHANNEL_ID, fake.MEMBER, f"<@{fake.BOT.id}> hello")
        await fake.wait_for(lambda: [r for r in sandbox.requests if r.path == "/v1/chat"])
        await fake.wait_for(lambda: [m for m in fake.messages() if "Sandbox reply to: hello" in m.content])
    assert next(r.json for r in sandbox.requests if r.path == "/v1/chat")["model"] == "gpt-5"

"""/tts, /voice-clone, /transcribe, /3d and /3d-multiview end to end (fake Discord + sandbox)."""

from __future__ import annotations

import base64
import io
import re

import av
from PIL import Image

from tests.conftest import RunningBot
from tests.fakediscord import FakeDiscord, InteractionHandle, MessageRecord, files

PNG = files.PNG
MP3 = b"ID3" + b"\x00" * 200


async def _ready(fake: FakeDiscord) -> MessageRecord:
    return (await fake.wait_for(lambda: [m for m in fake.messages() if "is ready" in m.content], timeout=15))[0]


async def _states(bot: RunningBot) -> list[tuple[str, int | None]]:
    rows = await bot.services.db.fetch_all("SELECT state, actual FROM reservations ORDER BY created_at")
    return [(row["state"], row["actual"]) for row in rows]


def _sent(bot: RunningBot) -> dict:
    return next(r.json for r in bot.sandbox.requests if r.path == "/api/media/generate")


def _sent_all(bot: RunningBot) -> list[dict]:
    return [r.json for r in bot.sandbox.requests if r.path == "/api/media/generate"]


VOICE_FLAG = 1 << 13


async def _voice(fake: FakeDiscord) -> MessageRecord:
    voiced = await fake.wait_for(lambda: [m for m in fake.messages() if int(m.current["flags"]) & VOICE_FLAG], 15)
    return voiced[0]


def _seconds(ogg: bytes) -> float:
    """The clip's length as PyAV decodes it (samples / rate), not as its metadata claims."""
    with av.open(io.BytesIO(ogg)) as container:
        stream = container.streams.audio[0]
        return sum(frame.samples for frame in container.decode(stream)) / stream.rate


def _check_voice_message(voice: MessageRecord) -> None:
    assert voice.content == ""
    (attachment,) = voice.current["attachments"]
    (audio,) = voice.latest_files
    assert attachment["filename"] == "voice-message.ogg"
    assert audio.content_type == "audio/ogg"
    assert audio.data[:4] == b"OggS"
    seconds = _seconds(audio.data)
    assert seconds > 0
    assert abs(seconds - attachment["duration_secs"]) <= 0.5
    assert len(base64.b64decode(attachment["waveform"])) > 0


async def test_tts_posts_a_voice_message_captioned_by_its_status(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    status = await fake.response(await fake.invoke("tts", text="(happy) Hello\nthere!"))
    assert status.content.startswith("⏳ Generating · audio-tts · ~2 credits")
    voice = await _voice(fake)
    _check_voice_message(voice)
    assert voice.current["message_reference"]["message_id"] == str(status.id)  # it replies to the status
    job = await running_bot.services.jobs.store.get(voice.current["nonce"])  # the job id: a repeat is deduplicated
    assert job is not None
    assert job.category == "audio_tts"
    assert _sent(running_bot) == {"model": "audio-tts", "input": {"text": "(happy) Hello\nthere!"}}
    # The status message is the caption: done, the charge, and the text spoken on one line.
    caption = await fake.wait_for(lambda: "🗣️" in fake.message(status.id).content and fake.message(status.id))
    assert caption.content.startswith("✅ Done · audio-tts · 2 credits · 998 left")
    assert caption.content.endswith("\n> 🗣️ (happy) Hello there!")
    assert not [m for m in fake.messages() if "is ready" in m.content]  # one result, not a voice message and a file


async def test_tts_falls_back_to_speech_file_when_voice_messages_are_denied(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    fake.voice_messages_denied.add(fake.CHANNEL_ID)
    await fake.response(await fake.invoke("tts", text="Hello\n\n  there!", format="wav"))
    result = await _ready(fake)
    (audio,) = result.latest_files
    assert audio.filename == "speech.wav"
    assert audio.data[:4] == b"RIFF"
    assert _sent(running_bot)["input"] == {"text": "Hello\n\n  there!", "format": "wav"}
    assert not int(result.current["flags"]) & VOICE_FLAG
    assert "your speech is ready · audio-tts · 2 credits · 998 left\n> Hello there!" in result.content
    refused = [c for c in fake.calls_to("POST", "/channels/{channel_id}/messages") if c.status == 403]
    (tried,) = refused  # the voice message was tried first, and refused
    assert tried.json["flags"] == VOICE_FLAG
    assert await _states(running_bot) == [("settled", 2)]


async def test_tts_shows_the_real_charge_when_hypereal_charges_otherwise(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    running_bot.sandbox.faults.credits_used = 5
    status = await fake.response(await fake.invoke("tts", text="Hello there!"))
    assert status.content.startswith("⏳ Generating · audio-tts · ~2 credits")
    await _voice(fake)
    await fake.wait_for(lambda: fake.message(status.id).content.startswith("✅ Done · audio-tts · 5 credits · 995"))


async def _accept_notice(fake: FakeDiscord, handle: InteractionHandle) -> MessageRecord:
    """The first /voice-clone of a member on a server: the consent notice, accepted; then the price question."""
    notice = await fake.response(handle)
    assert notice.ephemeral
    assert "right to use" in notice.content
    assert "sent to Hypereal" in notice.content
    await fake.click(notice, notice.custom_ids()[0])
    await fake.wait_for(lambda: fake.message(notice.id).content.startswith("✅ Accepted"))
    found = await fake.wait_for(lambda: [m for m in fake.messages() if "costs **107 credits**" in m.content])
    return found[-1]


async def test_voice_clone_sends_the_sample_and_posts_the_voice(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    sample = fake.attachment("me.mp3", MP3, "audio/mpeg")
    ask = await _accept_notice(fake, await fake.invoke("voice-clone", text="Good morning", sample=sample))
    assert "107 credits" in ask.content  # over the confirmation threshold: the price is asked first
    await fake.click(ask, ask.custom_ids()[0])
    _check_voice_message(await _voice(fake))
    assert _sent(running_bot)["input"] == {"text": "Good morning", "audio": sample["url"]}
    await fake.wait_for(lambda: [m for m in fake.messages() if m.content.endswith("> 🗣️ Good morning")])
    assert await _states(running_bot) == [("settled", 107)]


async def test_voice_clone_posts_cloned_voice_mp3_where_the_channel_forbids_voice(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    # The first channel post is the voice message: this thread-like channel refuses it (50173).
    fake.inject(r"POST /channels/\{channel_id\}/messages$", 400, body={"message": "Cannot send voice messages in "
                "this channel", "code": 50173})  # fmt: skip
    sample = fake.attachment("me.mp3", MP3, "audio/mpeg")
    ask = await _accept_notice(fake, await fake.invoke("voice-clone", text="Good morning", sample=sample))
    await fake.click(ask, ask.custom_ids()[0])
    result = await _ready(fake)
    assert [f.filename for f in result.latest_files] == ["cloned-voice.mp3"]
    assert result.latest_files[0].data[:3] == b"ID3"
    assert await _states(running_bot) == [("settled", 107)]


async def test_transcribe_menu_on_a_voice_message_posts_text_and_subtitles(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    await fake.response(await fake.invoke("tts", text="Hello there!"))
    voice = await _voice(fake)
    answer = await fake.response(await fake.invoke_message_command("Transcribe", voice))
    await fake.wait_for(lambda: answer.latest_files)
    assert answer.content.startswith("📝 Hello from the sandbox. This is a transcript.")
    assert answer.content.endswith("-# audio-asr · 1 credit · 997 left")
    (srt,) = answer.latest_files
    assert srt.filename == "transcript.srt"
    assert srt.data.decode().startswith("1\n00:00:00,000 --> 00:00:01,200\n")
    assert _sent_all(running_bot)[-1] == {
        "model": "audio-asr",
        "input": {"audio": voice.current["attachments"][0]["url"]},
    }
    assert [state for state, _ in await _states(running_bot)] == ["settled", "settled"]


async def test_transcribe_menu_refuses_a_message_without_audio_before_reserving(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    said = await fake.send_user_message(fake.CHANNEL_ID, fake.MEMBER, "just words")
    refused = await fake.response(await fake.invoke_message_command("Transcribe", said))
    assert refused.ephemeral
    assert "no audio or video to transcribe" in refused.content
    assert "/transcribe" in refused.content  # what to do instead
    assert await _states(running_bot) == []


async def test_transcribe_answers_with_text_and_subtitles(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    clip = fake.attachment("talk.mp3", MP3, "audio/mpeg")
    answer = await fake.response(await fake.invoke("transcribe", audio=clip))
    await fake.wait_for(lambda: answer.latest_files)
    assert answer.content.startswith("📝 Hello from the sandbox. This is a transcript.")
    assert answer.content.endswith("-# audio-asr · 1 credit · 999 left")
    (srt,) = answer.latest_files
    assert srt.filename == "transcript.srt"
    assert srt.data.decode().startswith("1\n00:00:00,000 --> 00:00:01,200\nHello from the sandbox.\n")
    assert _sent(running_bot) == {"model": "audio-asr", "input": {"audio": clip["url"]}}


async def test_transcribe_refuses_a_non_audio_file_before_reserving(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    refused = await fake.response(await fake.invoke("transcribe", audio=fake.attachment("a.png", PNG, "image/png")))
    assert refused.ephemeral
    assert "not an audio file" in refused.content
    assert await _states(running_bot) == []


async def test_3d_posts_the_glb_with_a_rendered_preview(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    image = fake.attachment("chair.png", PNG, "image/png")
    status = await fake.response(await fake.invoke("3d", image=image))
    assert status.content.startswith("⏳ Generating · hunyuan3d-v2-base · 45 credits")
    result = await _ready(fake)
    glb, preview = result.latest_files
    assert glb.filename.endswith(".glb")
    assert glb.data[:4] == b"glTF"
    picture = Image.open(io.BytesIO(preview.data))
    assert picture.format == "PNG"
    assert picture.width == 3 * picture.height  # front, three-quarter and top side by side
    assert result.embeds[0]["image"]["url"] == "attachment://preview.png"
    # The unit cube the sandbox makes: its figures under the picture.
    assert re.fullmatch(
        r"▲ 12 triangles · 8 vertices · \d+ KB · 1\.00 × 1\.00 × 1\.00", result.embeds[0]["description"]
    )
    assert _sent(running_bot) == {"model": "hunyuan3d-v2-base", "input": {"image": image["url"]}}


async def test_3d_multiview_sends_every_view(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    views = {side: fake.attachment(f"{side}.png", PNG, "image/png") for side in ("front", "back", "left", "right")}
    await fake.response(await fake.invoke("3d-multiview", **views))
    await _ready(fake)
    sent = _sent(running_bot)
    assert sent["model"] == "tripo3d-multiview-to-3d"
    assert sent["input"] == {f"{side}_image_url": a["url"] for side, a in views.items()}


async def test_3d_multiview_asks_for_a_missing_view(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    views = {side: fake.attachment(f"{side}.png", PNG, "image/png") for side in ("front", "back", "left")}
    refused = await fake.response(await fake.invoke("3d-multiview", **views))
    assert refused.ephemeral
    assert "needs the right view" in refused.content
    assert await _states(running_bot) == []

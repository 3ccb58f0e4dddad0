"""/tts, /voice-clone, /transcribe, /3d and /3d-multiview end to end (fake Discord + sandbox)."""

from __future__ import annotations

import io

from PIL import Image

from tests.conftest import RunningBot
from tests.fakediscord import FakeDiscord, MessageRecord, files

PNG = files.PNG
MP3 = b"ID3" + b"\x00" * 200


async def _ready(fake: FakeDiscord) -> MessageRecord:
    return (await fake.wait_for(lambda: [m for m in fake.messages() if "is ready" in m.content], timeout=15))[0]


async def _states(bot: RunningBot) -> list[tuple[str, int | None]]:
    rows = await bot.services.db.fetch_all("SELECT state, actual FROM reservations ORDER BY created_at")
    return [(row["state"], row["actual"]) for row in rows]


def _sent(bot: RunningBot) -> dict:
    return next(r.json for r in bot.sandbox.requests if r.path == "/api/media/generate")


async def test_tts_posts_speech_with_emotion_tags_passed_through(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    status = await fake.response(await fake.invoke("tts", text="(happy) Hello there!", format="wav"))
    assert status.content.startswith("⏳ Generating · audio-tts · ~2 credits")
    result = await _ready(fake)
    (audio,) = result.latest_files
    assert audio.filename.endswith(".wav")
    assert audio.data[:4] == b"RIFF"
    assert _sent(running_bot) == {"model": "audio-tts", "input": {"text": "(happy) Hello there!", "format": "wav"}}
    # Hypereal charged the estimate: the same number before and after, now without the "~".
    assert "your speech is ready · audio-tts · 2 credits · 998 left" in result.content


async def test_tts_shows_the_real_charge_when_hypereal_charges_otherwise(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    running_bot.sandbox.faults.credits_used = 5
    status = await fake.response(await fake.invoke("tts", text="Hello there!"))
    assert status.content.startswith("⏳ Generating · audio-tts · ~2 credits")
    result = await _ready(fake)
    assert "your speech is ready · audio-tts · 5 credits · 995 left" in result.content
    await fake.wait_for(lambda: fake.message(status.id).content.startswith("✅ Done · audio-tts · 5 credits"))


async def test_voice_clone_sends_the_sample_and_posts_the_voice(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    sample = fake.attachment("me.mp3", MP3, "audio/mpeg")
    ask = await fake.response(await fake.invoke("voice-clone", text="Good morning", sample=sample))
    assert "107 credits" in ask.content  # over the confirmation threshold: the price is asked first
    await fake.click(ask, ask.custom_ids()[0])
    result = await _ready(fake)
    assert result.latest_files[0].filename.endswith(".mp3")
    assert _sent(running_bot)["input"] == {"text": "Good morning", "audio": sample["url"]}
    assert await _states(running_bot) == [("settled", 107)]


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
    assert result.embeds[0]["image"]["url"] == "attachment://preview.png"
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

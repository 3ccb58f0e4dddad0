"""bot.voice: speech re-encoded as a Discord voice message (OGG/Opus 48 kHz mono, duration, waveform)."""

from __future__ import annotations

import base64
import io
import time
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from bot.sandbox.media import render_wav, sample_mp3
from bot.voice import (
    MAX_INPUT_BYTES,
    VoiceEncodingFailed,
    encode_voice,
    voice_message,
    waveform_bytes,
)


def _decoded(ogg: bytes) -> tuple[str, int, int, float]:
    """Codec, rate, channels and duration (from the decoded samples) as PyAV reads the OGG back."""
    with av.open(io.BytesIO(ogg)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return stream.codec_context.name, stream.rate, stream.channels, samples / stream.rate


def _wav(seconds: float, rate: int = 16_000, *, loud_from: float | None = None) -> bytes:
    """A mono WAV: silence, then (from ``loud_from``) a loud tone, so the waveform has a known shape."""
    t = np.arange(int(seconds * rate)) / rate
    tone = 20_000 * np.sin(2 * np.pi * 300 * t)
    loud = t >= loud_from if loud_from is not None else np.zeros(t.size, dtype=bool)
    samples = np.where(loud, tone, 0).astype("<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(rate)
        file.writeframes(samples.tobytes())
    return out.getvalue()


@pytest.mark.parametrize("source", [sample_mp3(), render_wav()], ids=["mp3", "wav"])
def test_speech_becomes_ogg_opus_48k_mono_with_its_duration(source: bytes) -> None:
    clip = encode_voice(source)
    assert clip.ogg[:4] == b"OggS"
    codec, rate, channels, seconds = _decoded(clip.ogg)
    assert (codec, rate, channels) == ("opus", 48_000, 1)
    assert clip.duration_secs > 0
    assert abs(seconds - clip.duration_secs) <= 0.05  # Discord's clients allow ±0.5 s; ours is exact
    wave_bytes = base64.b64decode(clip.waveform)
    assert 0 < len(wave_bytes) <= 256
    assert max(wave_bytes) == 255  # scaled to the loudest slice


def test_a_long_clip_has_256_waveform_points_following_the_sound(tmp_path: Path) -> None:
    path = tmp_path / "speech.wav"
    path.write_bytes(_wav(40.0, loud_from=20.0))  # 20 s of silence, then 20 s of tone
    clip = encode_voice(path)
    assert abs(clip.duration_secs - 40.0) <= 0.1
    points = base64.b64decode(clip.waveform)
    assert len(points) == 256
    assert max(points[:120]) < 20  # the silent half stays flat…
    assert min(points[136:]) > 200  # …the loud half is near the top


def test_waveform_of_a_short_clip_has_one_point_per_100_ms() -> None:
    assert len(waveform_bytes(np.ones(48_000, dtype=np.float32), 1.0)) == 10
    assert waveform_bytes(np.zeros(4_800, dtype=np.float32), 0.1) == b"\x00"


def test_caps_refuse_too_long_too_large_and_unreadable_audio(tmp_path: Path) -> None:
    with pytest.raises(VoiceEncodingFailed, match="longer than 1 minutes"):
        encode_voice(_wav(61.0), max_seconds=60.0)
    big = tmp_path / "big.wav"
    with big.open("wb") as file:
        file.truncate(MAX_INPUT_BYTES + 1)
    with pytest.raises(VoiceEncodingFailed, match="25 MB"):
        encode_voice(big)
    with pytest.raises(VoiceEncodingFailed, match="could not be read"):
        encode_voice(b"<html>not audio</html>" * 20)


def test_the_time_cap_stops_encoding() -> None:
    ticks = iter(range(0, 10_000, 10))  # each call to the clock is 10 s later
    with pytest.raises(VoiceEncodingFailed, match="took longer than 30 s"):
        encode_voice(_wav(5.0), time_limit=30.0, clock=lambda: float(next(ticks)))


async def test_encoding_runs_off_the_event_loop() -> None:
    import asyncio

    beats: list[float] = []

    async def heartbeat() -> None:
        while True:
            beats.append(time.monotonic())
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(heartbeat())
    try:
        clip = await voice_message(_wav(120.0, rate=48_000, loud_from=0.0))
    finally:
        ticker.cancel()
    assert clip.duration_secs > 119
    assert len(beats) > 3  # the loop kept running while the thread encoded

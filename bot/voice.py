"""Discord voice messages: any audio file re-encoded as OGG/Opus 48 kHz mono, with its duration and waveform.

A Discord voice message (message flag 8192) is one OGG/Opus attachment whose metadata carries
``duration_secs`` and a base64 ``waveform`` of at most 256 amplitude bytes. Hypereal's speech comes
as MP3 or WAV, so it is decoded and re-encoded with PyAV (its wheels ship FFmpeg with libopus, so no
system ffmpeg is needed). Decoding is CPU work: :func:`voice_message` runs it in a thread, and the
encoder itself stops at a size, length and wall-clock cap so a huge or hostile file cannot tie a
worker thread up for long.
"""

from __future__ import annotations

import asyncio
import base64
import io
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

RATE = 48_000  # Opus's native rate; Discord's own clients record voice messages at it
FRAME_SAMPLES = 960  # 20 ms Opus frames
BITRATE = 48_000  # speech at 48 kbit/s: clear, and a minute stays well under 1 MB
WAVEFORM_POINTS = 256  # Discord's maximum
WAVEFORM_STEP_SECS = 0.1  # clients sample at most once per 100 ms
MAX_INPUT_BYTES = 25 * 1024 * 1024
MAX_SECONDS = 20 * 60.0
MAX_ENCODE_SECS = 60.0


class VoiceEncodingFailed(Exception):
    """The audio could not be turned into a voice message (unreadable, silent-empty, or over a cap)."""


@dataclass(frozen=True)
class VoiceClip:
    """An encoded voice message: the OGG/Opus bytes and the attachment metadata Discord wants."""

    ogg: bytes
    duration_secs: float
    waveform: str  # base64 of up to 256 bytes, 0–255 each


def waveform_bytes(samples: np.ndarray, duration_secs: float) -> bytes:
    """Peak amplitudes of ``samples`` (mono floats in −1…1) in up to 256 equal slices, scaled to 0–255.

    Scaled to the loudest slice so quiet speech still draws a visible shape; all zeros for silence.
    """
    points = max(1, min(WAVEFORM_POINTS, math.ceil(duration_secs / WAVEFORM_STEP_SECS)))
    if samples.size == 0:
        return bytes(points)
    points = min(points, samples.size)
    slices = np.array_split(np.abs(samples), points)
    peaks = np.array([float(part.max()) for part in slices])
    loudest = float(peaks.max())
    if loudest <= 0:
        return bytes(points)
    return bytes(np.clip(np.round(peaks / loudest * 255), 0, 255).astype(np.uint8).tolist())


def encode_voice(
    source: Path | bytes,
    *,
    max_seconds: float = MAX_SECONDS,
    time_limit: float = MAX_ENCODE_SECS,
    clock: Callable[[], float] = time.monotonic,
) -> VoiceClip:
    """Decode ``source`` (a path or the bytes of any audio file) and encode it as a voice message.

    Blocking; call :func:`voice_message` from the event loop. Raises :class:`VoiceEncodingFailed`.
    """
    if isinstance(source, Path):
        size = source.stat().st_size
        opened: str | io.BytesIO = str(source)
    else:
        size = len(source)
        opened = io.BytesIO(source)
    if size > MAX_INPUT_BYTES:
        raise VoiceEncodingFailed(f"the audio is {size // (1024 * 1024)} MB; voice messages are made up to 25 MB")
    deadline = clock() + time_limit
    max_samples = int(max_seconds * RATE)
    output = io.BytesIO()
    chunks: list[np.ndarray] = []
    encoded = 0
    try:
        with av.open(opened, "r") as container:
            if not container.streams.audio:
                raise VoiceEncodingFailed("the file has no sound track")
            stream = container.streams.audio[0]
            with av.open(output, "w", format="ogg") as ogg:
                out = ogg.add_stream("libopus", rate=RATE, layout="mono")
                out.bit_rate = BITRATE
                resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE, frame_size=FRAME_SAMPLES)

                def write(frames: list[av.AudioFrame]) -> None:
                    nonlocal encoded
                    for frame in frames:
                        chunks.append(frame.to_ndarray().reshape(-1))
                        encoded += frame.samples
                        for packet in out.encode(frame):
                            ogg.mux(packet)

                for frame in container.decode(stream):
                    frame.pts = None  # the resampler keeps its own clock; mixed input timestamps confuse it
                    write(resampler.resample(frame))
                    if encoded > max_samples:
                        raise VoiceEncodingFailed(f"the audio is longer than {int(max_seconds // 60)} minutes")
                    if clock() > deadline:
                        raise VoiceEncodingFailed(f"encoding took longer than {int(time_limit)} s")
                write(resampler.resample(None))
                for packet in out.encode(None):
                    ogg.mux(packet)
    except VoiceEncodingFailed:
        raise
    except (av.FFmpegError, ValueError, IndexError) as exc:
        raise VoiceEncodingFailed(f"the audio could not be read ({type(exc).__name__})") from exc
    if encoded == 0:
        raise VoiceEncodingFailed("the audio has no sound in it")
    samples = np.concatenate(chunks)
    duration = encoded / RATE
    wave = waveform_bytes(samples, duration)
    return VoiceClip(output.getvalue(), round(duration, 3), base64.b64encode(wave).decode("ascii"))


async def voice_message(source: Path | bytes, **caps: float) -> VoiceClip:
    """:func:`encode_voice` off the event loop (PyAV releases the GIL while it codes)."""
    return await asyncio.to_thread(encode_voice, source, **caps)  # type: ignore[arg-type]

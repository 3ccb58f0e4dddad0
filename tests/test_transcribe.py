"""Transcription helpers: subtitles and input checks."""

from __future__ import annotations

import pytest

from bot.errors import InvalidInput
from bot.hypereal.models import TranscriptSegment
from bot.transcribe import MAX_AUDIO_BYTES, AudioInput, check_audio, to_srt


def test_srt_numbers_cues_and_formats_times() -> None:
    segments = [
        TranscriptSegment(text=" Hello. ", start=0.0, end=1.25),
        TranscriptSegment(text="An hour later.", start=3661.5, end=3662.004),
    ]
    assert to_srt(segments) == (
        "1\n00:00:00,000 --> 00:00:01,250\nHello.\n\n2\n01:01:01,500 --> 01:01:02,004\nAn hour later.\n"
    )


def test_no_segments_is_an_empty_file() -> None:
    assert to_srt([]) == ""


@pytest.mark.parametrize(
    ("content_type", "size", "problem"),
    [
        ("image/png", 10, "not an audio file"),
        (None, 10, "not an audio file"),
        ("audio/mpeg", MAX_AUDIO_BYTES + 1, "the limit is 25 MB"),
    ],
)
def test_bad_audio_is_refused(content_type: str | None, size: int, problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem):
        check_audio(AudioInput(url="https://cdn.discordapp.com/a", content_type=content_type, size=size))


def test_voice_messages_and_video_clips_are_accepted() -> None:
    check_audio(AudioInput(url="https://x/a.ogg", content_type="audio/ogg; codecs=opus", size=1000))
    check_audio(AudioInput(url="https://x/a.mp4", content_type="video/mp4", size=1000))

"""Speech recognition: an audio attachment in, the text and an ``.srt`` subtitle file out.

Hypereal's ASR answers synchronously with ``{text, duration, segments[{text, start, end}]}``. The
price is about a credit per minute of audio; the length is unknown before Hypereal has heard it,
so the reservation is estimated from the file size (≈ 1 MB per minute of typical compressed
speech) and settled to what Hypereal reports.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from bot.catalog import Catalog
from bot.errors import InvalidInput, ProviderError
from bot.hypereal import HyperealClient
from bot.hypereal.models import TranscriptSegment
from bot.paid import Charge, PaidRequests, Requester

MAX_AUDIO_BYTES = 25 * 1024 * 1024
BYTES_PER_MINUTE = 1024 * 1024
AUDIO_TYPES = ("audio/", "video/")  # voice messages and clips; Hypereal takes the sound track


@dataclass(frozen=True)
class AudioInput:
    """An audio attachment, checked before anything is reserved."""

    url: str
    content_type: str | None
    size: int
    filename: str = "audio"


@dataclass(frozen=True)
class Transcript:
    """What the member gets back."""

    text: str
    srt: str
    duration: float | None
    charge: Charge


def check_audio(audio: AudioInput) -> None:
    """``InvalidInput`` unless the attachment is labelled audio (or video) and within the size cap.

    This checks what Discord says about the file; :class:`bot.attachments.AttachmentInspector` then
    reads its first bytes to check what it really is.
    """
    name = f"`{audio.filename[:60]}`"
    content_type = (audio.content_type or "").split(";")[0].strip().lower()
    if not content_type.startswith(AUDIO_TYPES):
        raise InvalidInput(f"{name} is not an audio file. Attach an MP3, WAV, M4A, OGG or a voice message.")
    if audio.size > MAX_AUDIO_BYTES:
        raise InvalidInput(
            f"{name} is {audio.size // (1024 * 1024)} MB; the limit is {MAX_AUDIO_BYTES // (1024 * 1024)} MB."
        )


def to_srt(segments: Sequence[TranscriptSegment]) -> str:
    """SubRip subtitles: numbered cues with ``HH:MM:SS,mmm --> HH:MM:SS,mmm`` times."""
    cues = []
    for number, segment in enumerate(segments, 1):
        cues.append(f"{number}\n{_timestamp(segment.start)} --> {_timestamp(segment.end)}\n{segment.text.strip()}\n")
    return "\n".join(cues)


def _timestamp(seconds: float) -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02}:{minutes:02}:{secs:02},{millis:03}"


class TranscriptionService:
    """Check, reserve, transcribe, settle."""

    def __init__(self, *, hypereal: HyperealClient, catalog: Catalog, paid: PaidRequests) -> None:
        self.hypereal = hypereal
        self.catalog = catalog
        self.paid = paid

    def estimate(self, audio: AudioInput) -> int:
        """Credits to reserve: the catalog price per minute times the minutes the file size suggests."""
        spec = self.catalog.default("audio_asr")
        return spec.price.credits * max(1, math.ceil(audio.size / BYTES_PER_MINUTE))

    async def run(
        self,
        requester: Requester,
        audio: AudioInput,
        key: str,
        *,
        deliver: Callable[[Transcript], Awaitable[bool]],
        language: str | None = None,
        on_reserved: Callable[[], Awaitable[object]] | None = None,
    ) -> Transcript:
        """Transcribe ``audio``, post it with ``deliver``, then settle (refund when it could not be posted).

        Raises ``InvalidInput`` before reserving when the file is not usable.
        """
        check_audio(audio)
        spec = self.catalog.default("audio_asr")
        request = {"audio": audio.url, **({"language": language} if language else {})}
        async with self.paid.charging(requester, "audio_asr", spec.id, self.estimate(audio), key) as bill:
            if on_reserved is not None:
                await on_reserved()
            result = await self.hypereal.generate_media(spec.id, request)
            if result.text is None:
                raise ProviderError("Hypereal returned no transcript. Nothing was charged; try again.")
            preview = await self.paid.preview_bill(requester, bill, result.credits_used)
            transcript = Transcript(
                text=result.text, srt=to_srt(result.segments), duration=result.duration, charge=preview
            )
            if not await deliver(transcript):
                await self.paid.refund(key, "the transcript could not be posted anywhere")
                bill.charge = preview
                return transcript
            charge = await self.paid.settle_bill(requester, bill, result.credits_used)
        return Transcript(text=transcript.text, srt=transcript.srt, duration=transcript.duration, charge=charge)

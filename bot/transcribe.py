"""Speech recognition: an audio attachment in, the text and an ``.srt`` subtitle file out.

Hypereal's ASR answers synchronously with ``{text, duration, segments[{text, start, end}]}``. The
price is about a credit per minute of audio; the length is unknown before Hypereal has heard it,
so the reservation is estimated from the file size (≈ 1 MB per minute of typical compressed
speech) and settled to what Hypereal reports.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.catalog import Catalog
from bot.errors import InvalidInput, ProviderError
from bot.hypereal import HyperealClient
from bot.hypereal.models import TranscriptSegment
from bot.paid import Bill, Charge, MemberPort, PaidRequest, PaidRequests, Quote, Requester

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


class TranscriptMember(MemberPort, Protocol):
    """The member asking for a transcript: the paid flow's port plus acknowledging and delivering it."""

    async def acknowledge(self) -> None:
        """The credits are held: show "thinking…"."""
        ...

    async def deliver(self, transcript: Transcript) -> bool:
        """Post the transcript; False when it could not be posted anywhere."""
        ...


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

    async def transcribe(
        self,
        requester: Requester,
        audio: AudioInput,
        key: str,
        member: TranscriptMember,
        *,
        language: str | None = None,
    ) -> Transcript:
        """The paid request: policy, confirmation, reservation, Hypereal, the post, then the charge.

        The charge is written after the post: a transcript that cannot be posted is refunded.
        """
        check_audio(audio)
        spec = self.catalog.default("audio_asr")
        quote = Quote(self.estimate(audio), exact=False)  # the length is unknown until Hypereal heard it
        request = PaidRequest(requester, "audio_asr", spec.id, quote, key, "This transcription")
        body = {"audio": audio.url, **({"language": language} if language else {})}

        async def work(bill: Bill) -> Transcript:
            await member.acknowledge()
            result = await self.hypereal.generate_media(spec.id, body)
            if result.text is None:
                raise ProviderError("Hypereal returned no transcript. Nothing was charged; try again.")
            preview = await self.paid.preview_bill(requester, bill, result.credits_used)
            transcript = Transcript(result.text, to_srt(result.segments), result.duration, preview)
            if not await member.deliver(transcript):
                charge = await self.paid.refund_bill(bill, "the transcript could not be posted anywhere")
                return Transcript(transcript.text, transcript.srt, transcript.duration, charge)
            charge = await self.paid.settle_bill(requester, bill, result.credits_used)
            return Transcript(transcript.text, transcript.srt, transcript.duration, charge)

        return await self.paid.run(request, member, work)

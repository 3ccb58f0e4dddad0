"""Member attachments: only Discord-hosted files go to Hypereal, and only files that are what they claim.

An attachment arrives as metadata in the interaction (url, content type, size, filename), all of it
chosen by whoever sent the interaction. Before anything is reserved, :class:`AttachmentInspector`:

1. **checks the URL**: https on Discord's CDN (``cdn.discordapp.com``, ``media.discordapp.net``) under
   an attachment path (or ``/external/``, the media proxy Discord puts in front of embed images), or
   exactly the origin of ``DISCORD_API_BASE`` under ``/attachments/`` when that is not discord.com —
   how the tests' fake Discord on 127.0.0.1 serves uploads (and what a REST proxy that also serves
   attachments would do). Anything else (``http://127.0.0.1:1/…``, ``169.254.169.254``, any other
   host) is refused: Hypereal is never handed a member-chosen address. Embed images are taken by
   their ``proxy_url`` (Discord's copy), never by the address the embed names;
2. **reads the first bytes** (at most 64 KiB, streamed and then dropped, no redirects) through a session
   whose resolver refuses private addresses (:class:`bot.download.PublicOnlyResolver`);
3. **sniffs them**: images by magic number, then Pillow reads the header for the format and the
   dimensions (no pixels are decoded); audio and video by magic number (ID3 or an MPEG frame sync,
   RIFF/WAVE, OggS, fLaC, ftyp/moov for MP4/M4A/MOV, EBML for WebM/MKV, FORM/AIFF, CAF, AMR).

A refusal is an ``InvalidInput`` naming the file. Results the bot stored itself (the attachment of its
own result message, or a Hypereal output on ``OUTPUT_HOSTS``) are checked by URL only.

Discord wants an interaction acknowledged within 3 seconds, and the cogs reserve credits (and may ask
for a confirmation) before they defer, so refusals stay the ephemeral first answer. Deferring first
would make every refusal a followup after a public "thinking…" message and break the confirmation
prompt; so instead the whole inspection of a command's attachments gets a 2-second budget
(``timeout``), which a CDN answering 64 KiB needs only a fraction of. A file Discord does not hand over
in time is refused with "try again" rather than risking the deadline.
"""

from __future__ import annotations

import asyncio
import io
import logging
import warnings
from collections.abc import Awaitable, Iterable, Sequence

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

from bot.download import AllowList, DownloadRefused, PublicOnlyResolver
from bot.errors import InvalidInput
from bot.images import InputImage, check_input_image
from bot.transcribe import AudioInput, check_audio

log = logging.getLogger(__name__)

# Discord's CDN hosts and the paths member uploads (and proxied embed images) live under.
DISCORD_CDN = {
    "cdn.discordapp.com": ("/attachments/", "/ephemeral-attachments/"),
    "media.discordapp.net": ("/attachments/", "/ephemeral-attachments/", "/external/"),
}
PROXY_PATHS = ("/attachments/",)  # what the DISCORD_API_BASE origin may serve (the fake Discord's uploads)
SNIFF_BYTES = 64 * 1024
SNIFF_TIMEOUT = 2.0  # for all of a command's attachments together; see the module docstring
MAX_IMAGE_SIDE = 16_384
MAX_IMAGE_PIXELS = 64_000_000  # below Pillow's decompression-bomb warning (~89 M pixels)
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF")
IMAGE_NAMES = "PNG, JPEG, WebP or GIF"


def image_magic(data: bytes) -> str | None:
    """The image format the first bytes announce, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def audio_magic(data: bytes) -> str | None:
    """The audio/video container the first bytes announce, or None."""
    if data.startswith(b"ID3"):
        return "MP3"
    if len(data) >= 2 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0:
        return "MPEG audio"  # an MP3 or AAC (ADTS) frame sync
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "WAV"
    if data[:4] == b"FORM" and data[8:12] in (b"AIFF", b"AIFC"):
        return "AIFF"
    if data.startswith(b"OggS"):
        return "Ogg"
    if data.startswith(b"fLaC"):
        return "FLAC"
    if data[4:8] in (b"ftyp", b"moov", b"mdat", b"wide"):
        return "MP4"
    if data.startswith(b"\x1a\x45\xdf\xa3"):
        return "WebM"
    if data.startswith(b"caff"):
        return "CAF"
    if data.startswith(b"#!AMR"):
        return "AMR"
    return None


def webp_size(data: bytes) -> tuple[int, int] | None:
    """A WebP's width and height from its first chunk header (lossy, lossless or extended), or None.

    Pillow decodes WebP through libwebp, which needs the whole file: for the first 64 KiB of a larger
    one the header is read here instead.
    """
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        return int.from_bytes(data[26:28], "little") & 0x3FFF, int.from_bytes(data[28:30], "little") & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    return None


def _pillow_size(data: bytes, name: str, magic: str, *, complete: bool) -> tuple[int, int] | None:
    """The size Pillow reads from the header (no pixels decoded); None when a partial file cannot tell."""
    from PIL import Image  # on first use: start-up stays small (see bench/footprint.py)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as image:
                return image.size
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise InvalidInput(f"{name} has far too many pixels. Use an image of at most 16384×16384.") from None
    except Exception:
        if magic == "JPEG" and not complete:
            # A JPEG's size marker can sit behind large metadata, past the bytes read: its magic number decides.
            return None
        raise InvalidInput(f"{name} is damaged or not really a {magic} image. Attach another image.") from None


def sniff_image(data: bytes, filename: str, *, complete: bool) -> None:
    """``InvalidInput`` unless ``data`` is a sane image (its first bytes; ``complete`` when that is all of it)."""
    name = f"`{filename[:60]}`"
    if not data:
        raise InvalidInput(f"{name} is empty. Attach the image again and try again.")
    magic = image_magic(data)
    if magic is None:
        raise InvalidInput(f"{name} is not an image: its contents are not {IMAGE_NAMES}. Attach an image.")
    if magic == "WEBP" and not complete:
        size = webp_size(data)
        if size is None:
            raise InvalidInput(f"{name} is damaged or not really a WEBP image. Attach another image.")
    else:
        size = _pillow_size(data, name, magic, complete=complete)
    if size is None:
        return
    width, height = size
    if not (1 <= width <= MAX_IMAGE_SIDE and 1 <= height <= MAX_IMAGE_SIDE and width * height <= MAX_IMAGE_PIXELS):
        raise InvalidInput(
            f"{name} is {width}×{height} pixels; images can be up to {MAX_IMAGE_SIDE} pixels a side "
            f"and {MAX_IMAGE_PIXELS // 1_000_000} megapixels."
        )


def sniff_audio(data: bytes, filename: str) -> None:
    """``InvalidInput`` unless ``data`` (the file's first bytes) starts like an audio or video file."""
    name = f"`{filename[:60]}`"
    if not data:
        raise InvalidInput(f"{name} is empty. Attach the recording again and try again.")
    if audio_magic(data) is None:
        raise InvalidInput(
            f"{name} is not an audio file: its contents are not MP3, WAV, M4A, OGG, FLAC or WebM. Attach a recording."
        )


class AttachmentInspector:
    """Checks members' attachments before anything is reserved. One per process; close it on shutdown."""

    def __init__(
        self,
        *,
        discord_api_base: str,
        output_hosts: AllowList,
        sniff_bytes: int = SNIFF_BYTES,
        timeout: float = SNIFF_TIMEOUT,
        resolver: AbstractResolver | None = None,
    ) -> None:
        self.output_hosts = output_hosts
        self.sniff_bytes = sniff_bytes
        self.timeout = timeout
        self._trusted_origin = _proxy_origin(discord_api_base)
        self._resolver = resolver
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # IP literals skip the resolver: is_discord_url only lets through the configured proxy's origin.
            connector = aiohttp.TCPConnector(resolver=PublicOnlyResolver(self._resolver), limit=8)
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=False, timeout=aiohttp.ClientTimeout(total=self.timeout)
            )
        return self._session

    async def close(self) -> None:
        """Close the inspection session."""
        if self._session is not None:
            await self._session.close()

    # ── URLs ─────────────────────────────────────────────────────────────────

    def is_discord_url(self, url: str) -> bool:
        """True for an https attachment URL on Discord's CDN, or one on the configured REST proxy's origin."""
        try:
            parsed = URL(url)
        except (ValueError, TypeError):
            return False
        if not parsed.absolute or parsed.user or parsed.password:
            return False
        host = (parsed.host or "").lower().rstrip(".")
        if self._trusted_origin is not None and (parsed.scheme, host, parsed.port) == self._trusted_origin:
            return parsed.path.startswith(PROXY_PATHS)
        prefixes = DISCORD_CDN.get(host)
        return (
            parsed.scheme == "https"
            and parsed.port == 443
            and prefixes is not None
            and parsed.path.startswith(prefixes)
        )

    def check_url(self, url: str, filename: str) -> None:
        """``InvalidInput`` unless ``url`` is a Discord-hosted file."""
        if not self.is_discord_url(url):
            log.warning("refused a non-Discord attachment URL host=%s", _host_of(url))
            raise InvalidInput(
                f"`{filename[:60]}` is not a file uploaded to Discord, so the bot will not send it to Hypereal. "
                "Upload the file itself and try again."
            )

    def check_result_url(self, url: str) -> None:
        """A stored result's image: Discord's copy of the bot's own upload, or a Hypereal output (OUTPUT_HOSTS)."""
        if self.is_discord_url(url):
            return
        try:
            self.output_hosts.check(URL(url))
        except (DownloadRefused, ValueError, TypeError):
            raise InvalidInput(
                "This result's image is not available to the bot any more. Use /edit with the image file instead."
            ) from None

    # ── contents ─────────────────────────────────────────────────────────────

    async def image(self, image: InputImage) -> InputImage:
        """The image, once its label, size, URL and first bytes are checked (raises ``InvalidInput``)."""
        return (await self.images([image]))[0]

    async def images(self, images: Sequence[InputImage]) -> list[InputImage]:
        """Check several images at once (one time budget for all); the first bad one, in order, is reported."""
        for image in images:
            check_input_image(image)
            self.check_url(image.url, image.filename)

        async def one(image: InputImage) -> None:
            data, complete = await self._first_bytes(image.url, image.filename)
            sniff_image(data, image.filename, complete=complete)

        await self._all(one(image) for image in images)
        return list(images)

    async def audio(self, audio: AudioInput) -> AudioInput:
        """The recording, once its label, size, URL and first bytes are checked (raises ``InvalidInput``)."""
        check_audio(audio)
        self.check_url(audio.url, audio.filename)

        async def one() -> None:
            data, _complete = await self._first_bytes(audio.url, audio.filename)
            sniff_audio(data, audio.filename)

        await self._all([one()])
        return audio

    async def _all(self, checks: Iterable[Awaitable[None]]) -> None:
        """Run the checks together within the time budget; raise the first failure, in order."""
        tasks = list(checks)
        try:
            async with asyncio.timeout(self.timeout):
                results = await asyncio.gather(*tasks, return_exceptions=True)
        except TimeoutError:
            raise InvalidInput(
                "Discord took too long to hand the attachment to the bot. Nothing was charged; try again in a moment."
            ) from None
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _first_bytes(self, url: str, filename: str) -> tuple[bytes, bool]:
        """Up to ``sniff_bytes`` from the start of the file, and whether that was the whole file."""
        name = f"`{filename[:60]}`"
        headers = {"Range": f"bytes=0-{self.sniff_bytes - 1}"}
        data = bytearray()
        try:
            async with self._get_session().get(url, headers=headers, allow_redirects=False) as response:
                if response.status not in (200, 206):
                    raise InvalidInput(
                        f"Discord did not hand over {name} (HTTP {response.status}). Upload it again and try again."
                    )
                async for chunk in response.content.iter_chunked(16 * 1024):
                    data += chunk
                    if len(data) >= self.sniff_bytes:
                        return bytes(data[: self.sniff_bytes]), False  # leaving the block drops the rest
        except (aiohttp.ClientError, OSError):
            log.info("could not read an attachment host=%s", _host_of(url))
            raise InvalidInput(f"The bot could not read {name} from Discord. Upload it again and try again.") from None
        return bytes(data), True


def _proxy_origin(api_base: str) -> tuple[str, str, int | None] | None:
    """The origin of ``DISCORD_API_BASE`` when it is a proxy (not discord.com): files it serves are Discord's."""
    url = URL(api_base)
    host = (url.host or "").lower().rstrip(".")
    if host == "discord.com" or host.endswith(".discord.com"):
        return None
    return (url.scheme, host, url.port)


def _host_of(url: str) -> str:
    try:
        return URL(url).host or "?"
    except (ValueError, TypeError):
        return "?"

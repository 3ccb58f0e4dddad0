"""Member attachments: only Discord-hosted URLs, the first bytes read safely, and sniffed for what they are."""

from __future__ import annotations

import asyncio
import io
import os
import socket
import struct
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from PIL import Image

from bot.attachments import SNIFF_BYTES, AttachmentInspector, sniff_audio, sniff_image
from bot.download import AllowList
from bot.errors import InvalidInput
from bot.images import InputImage
from bot.sandbox.media import render_wav, sample_mp4
from bot.transcribe import AudioInput
from tests.fakediscord import files

HYPEREAL_OUTPUTS = AllowList.parse(["cdn.hypereal.example"])


def _inspector(api_base: str = "http://127.0.0.1:5555/api/v10", **kwargs: object) -> AttachmentInspector:
    return AttachmentInspector(discord_api_base=api_base, output_hosts=HYPEREAL_OUTPUTS, **kwargs)  # type: ignore[arg-type]


def _png_header(width: int, height: int) -> bytes:
    """The start of a PNG that claims this size: a valid IHDR chunk, then the first IDAT's header."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    header = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return header + struct.pack(">I", 1 << 20) + b"IDAT" + b"\0" * 64


def _encoded(fmt: str, size: tuple[int, int] = (700, 700), **options: object) -> bytes:
    """Noise (so it does not compress) encoded as ``fmt``: bigger than the 64 KiB the bot reads."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)).save(buffer, fmt, **options)
    return buffer.getvalue()


# ── URLs ─────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:1/x.png",
        "http://169.254.169.254/x.png",
        "https://169.254.169.254/attachments/1/2/x.png",
        "http://cdn.discordapp.com/attachments/1/2/x.png",  # not https
        "https://cdn.discordapp.com/avatars/1/x.png",  # not an attachment
        "https://cdn.discordapp.com.evil.example/attachments/1/2/x.png",
        "https://cdn.discordapp.com@evil.example/attachments/1/2/x.png",
        "https://user:pw@cdn.discordapp.com/attachments/1/2/x.png",
        "https://cdn.discordapp.com:8443/attachments/1/2/x.png",
        "https://images.example.com/attachments/1/2/x.png",
        "http://127.0.0.1:5555/api/v10/users/@me",  # the proxy's origin, but not an upload
        "http://127.0.0.1:5556/attachments/1/x.png",  # another port
        "https://cdn.hypereal.example/x.png",  # a Hypereal output is not a member's upload
        "file:///etc/passwd",
        "attachments/1/x.png",
        "",
    ],
)
def test_urls_that_are_not_discord_uploads_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput, match=r"`cat.png` is not a file uploaded to Discord"):
        _inspector().check_url(url, "cat.png")


@pytest.mark.parametrize(
    "url",
    [
        "https://cdn.discordapp.com/attachments/1/2/cat.png?ex=65f&is=65e&hm=abc",
        "https://media.discordapp.net/attachments/1/2/cat.png?width=300",
        "https://media.discordapp.net/external/abc/https/example.com/cat.png",  # an embed image's proxy_url
        "http://127.0.0.1:5555/attachments/1/cat.png",  # DISCORD_API_BASE's origin (the fake Discord)
    ],
)
def test_discord_uploads_pass(url: str) -> None:
    _inspector().check_url(url, "cat.png")


def test_loopback_is_trusted_only_as_the_configured_proxy() -> None:
    inspector = _inspector("https://discord.com/api/v10")
    assert not inspector.is_discord_url("http://127.0.0.1:5555/attachments/1/cat.png")
    assert inspector.is_discord_url("https://cdn.discordapp.com/attachments/1/2/cat.png")


def test_stored_results_may_also_be_hypereal_outputs() -> None:
    inspector = _inspector()
    inspector.check_result_url("https://cdn.discordapp.com/attachments/1/2/image-1.png")
    inspector.check_result_url("https://cdn.hypereal.example/out/1.png")
    for url in ("http://169.254.169.254/x.png", "https://evil.example/x.png", "http://cdn.hypereal.example/x.png"):
        with pytest.raises(InvalidInput, match="not available to the bot any more"):
            inspector.check_result_url(url)


# ── sniffing ─────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "`x.png` is empty"),
        (files.HTML, "is not an image: its contents are not PNG"),
        (b"GIF87", "is not an image"),
        (b"\x89PNG\r\n\x1a\n" + b"0" * 100, "is damaged or not really a PNG image"),
        (_png_header(100_000, 100_000), "has far too many pixels"),
        (_png_header(20_000, 10), "20000×10 pixels; images can be up to 16384 pixels a side"),
        (_png_header(9_000, 9_000), "images can be up to 16384 pixels a side and 64 megapixels"),
    ],
)
def test_bad_images_are_refused(data: bytes, problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem):
        sniff_image(data, "x.png", complete=len(data) < SNIFF_BYTES)


@pytest.mark.parametrize(
    "data",
    [
        files.PNG,
        _encoded("PNG")[:SNIFF_BYTES],
        _encoded("JPEG")[:SNIFF_BYTES],
        _encoded("GIF")[:SNIFF_BYTES],
        _encoded("WEBP")[:SNIFF_BYTES],  # libwebp cannot open a partial file: the header is read by hand
        _encoded("WEBP", lossless=True)[:SNIFF_BYTES],
        _encoded("WEBP", size=(20, 20)),
    ],
)
def test_images_pass_from_their_first_bytes(data: bytes) -> None:
    sniff_image(data, "x", complete=len(data) < SNIFF_BYTES)


@pytest.mark.parametrize(
    "data",
    [
        files.MP3,
        b"\xff\xfb\x90\x64" + b"\x00" * 100,  # an MP3 without a tag
        render_wav(),
        b"OggS\x00\x02" + b"\x00" * 100,
        b"fLaC\x00\x00\x00\x22" + b"\x00" * 100,
        sample_mp4(),
        b"\x1a\x45\xdf\xa3" + b"\x00" * 100,  # WebM/Matroska
    ],
)
def test_recordings_pass(data: bytes) -> None:
    sniff_audio(data, "voice.ogg")


@pytest.mark.parametrize("data", [b"", files.HTML, files.PNG, b"\xff\xd8\xff\xe0JFIF"])
def test_non_recordings_are_refused(data: bytes) -> None:
    with pytest.raises(InvalidInput, match=r"`voice.ogg` is (empty|not an audio file)"):
        sniff_audio(data, "voice.ogg")


# ── reading the first bytes from a real server ───────────────────────────────


@dataclass
class Uploads:
    """A local stand-in for Discord's CDN, serving under /attachments/ like the fake Discord."""

    base: str = ""
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    ranges: list[str | None] = field(default_factory=list)
    big_sent: list[int] = field(default_factory=list)
    big_done: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)  # lets the slow upload end at teardown

    def url(self, name: str) -> str:
        return f"{self.base}/attachments/1/{name}"


BIG_BODY = 64 * 1024 * 1024


@pytest.fixture
async def uploads() -> AsyncIterator[Uploads]:
    served = Uploads()

    async def upload(request: web.Request) -> web.StreamResponse:
        served.ranges.append(request.headers.get("Range"))
        name = request.match_info["name"]
        if name == "slow.png":
            await served.release.wait()
        if name == "big.png":  # ignores Range, as a server may: the bot must stop reading by itself
            response = web.StreamResponse(headers={"Content-Type": "image/png"})
            await response.prepare(request)
            sent = 0
            try:
                await response.write(files.PNG[:33])
                while sent < BIG_BODY:
                    await response.write(b"\0" * 65536)
                    sent += 65536
            except (ConnectionError, RuntimeError):
                pass
            finally:
                served.big_sent.append(sent)
                served.big_done.set()
            return response
        if name not in served.files:
            return web.Response(status=404)
        body, content_type = served.files[name]
        return web.Response(body=body, content_type=content_type)

    app = web.Application()
    app.router.add_get("/attachments/1/{name}", upload)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    served.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield served
    served.release.set()
    await runner.cleanup()


@pytest.fixture
async def inspector(uploads: Uploads) -> AsyncIterator[AttachmentInspector]:
    checker = _inspector(f"{uploads.base}/api/v10", timeout=5)
    yield checker
    await checker.close()


def _image(uploads: Uploads, name: str) -> InputImage:
    return InputImage(url=uploads.url(name), content_type="image/png", size=1000, filename=name)


async def test_a_real_image_passes_and_only_its_start_is_asked_for(
    uploads: Uploads, inspector: AttachmentInspector
) -> None:
    uploads.files["cat.png"] = (files.PNG, "image/png")
    checked = await inspector.images([_image(uploads, "cat.png")])
    assert [i.url for i in checked] == [uploads.url("cat.png")]
    assert uploads.ranges == [f"bytes=0-{SNIFF_BYTES - 1}"]


@pytest.mark.parametrize(
    ("name", "body", "problem"),
    [
        ("empty.png", b"", "`empty.png` is empty"),
        ("page.png", files.HTML, "`page.png` is not an image"),
        ("gone.png", None, "Discord did not hand over `gone.png` \\(HTTP 404\\)"),
    ],
)
async def test_files_that_are_not_what_they_claim_are_refused(
    uploads: Uploads, inspector: AttachmentInspector, name: str, body: bytes | None, problem: str
) -> None:
    if body is not None:
        uploads.files[name] = (body, "image/png")  # the server, too, calls it a PNG
    with pytest.raises(InvalidInput, match=problem):
        await inspector.image(_image(uploads, name))


async def test_the_first_bad_file_is_named(uploads: Uploads, inspector: AttachmentInspector) -> None:
    uploads.files["good.png"] = (files.PNG, "image/png")
    uploads.files["bad.png"] = (files.HTML, "image/png")
    with pytest.raises(InvalidInput, match=r"`bad.png`"):
        await inspector.images([_image(uploads, "good.png"), _image(uploads, "bad.png")])


async def test_reading_stops_after_the_first_64_kib(uploads: Uploads, inspector: AttachmentInspector) -> None:
    with pytest.raises(InvalidInput, match="damaged or not really a PNG"):  # a PNG signature, then zeros
        await inspector.image(_image(uploads, "big.png"))
    await asyncio.wait_for(uploads.big_done.wait(), timeout=5)
    assert uploads.big_sent[0] < BIG_BODY  # the bot hung up long before the end


async def test_a_file_discord_does_not_hand_over_in_time_is_refused(uploads: Uploads) -> None:
    checker = _inspector(f"{uploads.base}/api/v10", timeout=0.2)
    try:
        with pytest.raises(InvalidInput, match=r"took too long.*Nothing was charged"):
            await checker.image(_image(uploads, "slow.png"))
    finally:
        await checker.close()


async def test_audio_is_sniffed_too(uploads: Uploads, inspector: AttachmentInspector) -> None:
    uploads.files["voice.mp3"] = (files.MP3, "audio/mpeg")
    uploads.files["fake.mp3"] = (files.HTML, "audio/mpeg")
    audio = AudioInput(url=uploads.url("voice.mp3"), content_type="audio/mpeg", size=400, filename="voice.mp3")
    assert await inspector.audio(audio) == audio
    fake = AudioInput(url=uploads.url("fake.mp3"), content_type="audio/mpeg", size=400, filename="fake.mp3")
    with pytest.raises(InvalidInput, match=r"`fake.mp3` is not an audio file"):
        await inspector.audio(fake)


class _PointsAtLoopback(AbstractResolver):
    """A DNS that maps Discord's CDN name to an internal address (DNS rebinding)."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [{"hostname": host, "host": "127.0.0.1", "port": port, "family": family, "proto": 0, "flags": 0}]

    async def close(self) -> None:
        return None


async def test_a_cdn_name_resolving_to_a_private_address_is_not_read() -> None:
    checker = _inspector(resolver=_PointsAtLoopback())
    image = InputImage(url="https://cdn.discordapp.com/attachments/1/2/cat.png", content_type="image/png", size=10)
    try:
        with pytest.raises(InvalidInput, match="could not read `image` from Discord"):
            await checker.image(image)
    finally:
        await checker.close()

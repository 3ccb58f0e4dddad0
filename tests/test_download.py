"""The safe downloader against a real local server: allow-list, private addresses, redirects, size cap."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from bot.download import AllowList, DownloadFailed, DownloadRefused, SafeDownloader, is_public_address

PNG = b"\x89PNG\r\n\x1a\n" + b"x" * 1000
BAD_LOCATIONS = [
    "http://[::1",
    "https://evil\\@cdn.hypereal.tech/",
    "https://xn--zz.example/a.png",
    "https://user@cdn.hypereal.tech/a.png",
    "http://127.0.0.1:99999/a.png",
    "javascript:alert(1)",
    "/files/a b.png",
]


@pytest.fixture
async def origin() -> AsyncIterator[str]:
    """A local output server: files, redirects on and off the list, a big streamed body."""

    async def file(request: web.Request) -> web.Response:
        return web.Response(body=PNG, content_type="image/png")

    async def redirect_same(request: web.Request) -> web.Response:
        raise web.HTTPFound("/files/a.png")

    async def redirect_away(request: web.Request) -> web.Response:
        raise web.HTTPFound("http://evil.example.com/a.png")

    async def redirect_loopback(request: web.Request) -> web.Response:
        raise web.HTTPFound("http://127.0.0.1:1/a.png")

    async def redirect_raw(request: web.Request) -> web.Response:
        # A Location exactly as a broken or hostile CDN might send it.
        return web.Response(status=302, headers={"Location": BAD_LOCATIONS[int(request.match_info["n"])]})

    async def big(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()  # no Content-Length: the cap must hold while streaming
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(64):
            await response.write(b"\0" * 65536)
        return response

    app = web.Application()
    app.router.add_get("/files/a.png", file)
    app.router.add_get("/r/same", redirect_same)
    app.router.add_get("/r/away", redirect_away)
    app.router.add_get("/r/loopback", redirect_loopback)
    app.router.add_get("/r/raw/{n}", redirect_raw)
    app.router.add_get("/big", big)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture
async def downloader(origin: str, tmp_path: Path) -> AsyncIterator[SafeDownloader]:
    loader = SafeDownloader(
        AllowList.parse(["cdn.hypereal.tech", origin]), max_bytes=1024 * 1024, timeout=10, temp_dir=tmp_path
    )
    yield loader
    await loader.close()


async def test_downloads_allowed_origin_to_a_temp_file(downloader: SafeDownloader, origin: str) -> None:
    result = await downloader.download(f"{origin}/files/a.png")
    assert result.path.read_bytes() == PNG
    assert (result.size, result.content_type, result.filename) == (len(PNG), "image/png", "a.png")
    result.remove()
    assert not result.path.exists()


async def test_follows_redirects_within_the_allowed_origin(downloader: SafeDownloader, origin: str) -> None:
    result = await downloader.download(f"{origin}/r/same")
    assert result.path.read_bytes() == PNG


@pytest.mark.parametrize("path", ["/r/away", "/r/loopback"])
async def test_refuses_redirects_off_the_list(downloader: SafeDownloader, origin: str, path: str) -> None:
    with pytest.raises(DownloadRefused):
        await downloader.download(f"{origin}{path}")


@pytest.mark.parametrize(
    "url",
    [
        "http://cdn.hypereal.tech/a.png",  # listed host, but not https
        "https://evil.example.com/a.png",  # not on the list
        "https://127.0.0.1/a.png",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/a.png",
        "https://2130706433/a.png",  # 127.0.0.1 in decimal
        "https://0x7f000001/a.png",  # 127.0.0.1 in hex
        "https://0x7f.1/a.png",  # short form
        "ftp://cdn.hypereal.tech/a.png",
    ],
)
async def test_refuses_unsafe_urls(downloader: SafeDownloader, url: str) -> None:
    with pytest.raises(DownloadRefused):
        await downloader.download(url)


async def test_refuses_bodies_over_the_cap(downloader: SafeDownloader, origin: str, tmp_path: Path) -> None:
    with pytest.raises(DownloadRefused, match="limit"):
        await downloader.download(f"{origin}/big", max_bytes=1_000_000)
    assert list(tmp_path.iterdir()) == []  # the partial file is gone


class _PointsAtLoopback(AbstractResolver):
    """A DNS that maps an allowed name to an internal address (DNS rebinding)."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [{"hostname": host, "host": "127.0.0.1", "port": port, "family": family, "proto": 0, "flags": 0}]

    async def close(self) -> None:
        return None


async def test_allowed_name_resolving_to_a_private_address_is_refused_at_connect(tmp_path: Path) -> None:
    loader = SafeDownloader(
        AllowList.parse(["cdn.hypereal.tech"]), max_bytes=1024, temp_dir=tmp_path, resolver=_PointsAtLoopback()
    )
    try:
        with pytest.raises(DownloadRefused, match="private or local"):
            await loader.download("https://cdn.hypereal.tech/a.png")
    finally:
        await loader.close()


@pytest.mark.parametrize(
    ("address", "public"),
    [("8.8.8.8", True), ("10.0.0.1", False), ("192.168.1.1", False), ("169.254.169.254", False), ("::1", False),
     ("::ffff:127.0.0.1", False), ("fe80::1", False), ("2606:4700::1111", True), ("0.0.0.0", False)],
)  # fmt: skip
def test_public_address_classification(address: str, public: bool) -> None:
    assert is_public_address(address) is public


def test_allow_list_entries_are_exact_origins() -> None:
    allowed = AllowList.parse(["http://127.0.0.1:8765", "CDN.Hypereal.tech"])
    assert allowed.origins == {("http", "127.0.0.1", 8765)}
    assert allowed.hosts == {"cdn.hypereal.tech"}
    with pytest.raises(ValueError, match="host:port"):
        AllowList.parse(["ftp://127.0.0.1:21"])


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example\\@cdn.hypereal.tech/x",  # backslash in the authority
        "https://xn--zz.example/x",  # bogus punycode: yarl's .host raises UnicodeError
        "https://xn--ls8h.la/x",  # an emoji label, invalid under IDNA 2008
        "https://xn--ls8h-invalid/x",  # a valid but unlisted name: refused by the allow-list
        "https://user@cdn.hypereal.tech/x",
        "https://cdn.hypereal.tech/a b.png",
        "https://cdn.hypereal.tech/a\nb.png",
        "javascript:alert(1)",
        "/files/a.png",
        "http://[::1",
        "https://cdn.hypereal.tech:99999/a.png",
        "",
    ],
)
async def test_malformed_links_are_refused_never_raised(downloader: SafeDownloader, url: str) -> None:
    with pytest.raises(DownloadRefused) as caught:
        await downloader.download(url)
    assert caught.value.user_message.endswith(".")


@pytest.mark.parametrize("number", range(len(BAD_LOCATIONS)))
async def test_a_malformed_redirect_location_is_refused(downloader: SafeDownloader, origin: str, number: int) -> None:
    with pytest.raises(DownloadRefused, match="redirected to a malformed link"):
        await downloader.download(f"{origin}/r/raw/{number}")


async def test_an_unreachable_allowed_origin_is_a_transport_failure(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on (bound, never listening)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        loader = SafeDownloader(AllowList.parse([f"http://127.0.0.1:{port}"]), max_bytes=1024, temp_dir=tmp_path)
        try:
            with pytest.raises(DownloadFailed, match="could not be reached"):
                await loader.download(f"http://127.0.0.1:{port}/a.png")
        finally:
            await loader.close()


class _Broken(AbstractResolver):
    """A resolver that fails in a way aiohttp does not wrap (as a buggy dependency would)."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        raise self.error

    async def close(self) -> None:
        return None


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (RuntimeError("boom"), DownloadFailed),
        (KeyError("family"), DownloadFailed),
        (UnicodeError("label too long"), DownloadRefused),  # IDNA trouble: the link, not the network
    ],
)
async def test_unexpected_errors_inside_map_to_the_two_contract_errors(
    tmp_path: Path, error: Exception, expected: type[Exception]
) -> None:
    loader = SafeDownloader(
        AllowList.parse(["cdn.hypereal.tech"]), max_bytes=1024, temp_dir=tmp_path, resolver=_Broken(error)
    )
    try:
        with pytest.raises(expected):
            await loader.download("https://cdn.hypereal.tech/a.png")
    finally:
        await loader.close()


def test_allow_list_refuses_malformed_entries_in_words() -> None:
    for entry in ("cdn.example:443", "a b.example", "https://evil\\@cdn.example:443", "http://[::1"):
        with pytest.raises(ValueError, match="OUTPUT_HOSTS entry"):
            AllowList.parse([entry])
    assert AllowList.parse(["münchen.example"]).hosts == {"xn--mnchen-3ya.example"}

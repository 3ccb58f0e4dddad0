"""Safe downloads of Hypereal outputs: allow-listed hosts only, never private addresses, size-capped, streamed to disk.

Hypereal hands back output URLs we must fetch ourselves (its CDN blocks hotlinking). Those URLs arrive
in unsigned webhooks and API answers, so they are untrusted: an attacker who could steer one at
``http://169.254.169.254/`` or ``http://127.0.0.1:…`` would make the bot fetch internal resources. So:

- the URL must be https and its host on the allow-list (``OUTPUT_HOSTS``); an entry with a scheme and
  port (``http://127.0.0.1:8765``) allows exactly that origin, the only way plain http or loopback is allowed;
- host names are resolved by our own resolver, which refuses private, loopback, link-local and other
  non-global addresses at connect time (so DNS cannot point an allowed name at an internal address);
- IP literals in any spelling (decimal ``2130706433``, hex, short forms) are never on the allow-list;
- every link, and every redirect's ``Location``, must first have a sane shape (``bot.urls``, the same
  check the Hypereal models apply): a backslash, userinfo, a bogus ``xn--`` host or a malformed
  ``Location`` is refused in words, never raised as a ``ValueError``/``UnicodeError``;
- redirects are followed by hand, each hop checked again; the body is streamed to a temporary file
  with a size cap and an overall timeout, so memory stays flat whatever the size.

``SafeDownloader.download`` raises only ``DownloadRefused`` (including ``DownloadTooLarge``) — the link
must not or cannot be fetched, retrying will not help — or ``DownloadFailed`` — a transport problem worth
another try. Nothing else escapes it, so a caller's retry and refund logic sees only these two.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from bot.errors import BotError
from bot.urls import BadURL, ascii_host, join_location, parse_url

log = logging.getLogger(__name__)

CHUNK_SIZE = 64 * 1024
MAX_REDIRECTS = 3


class DownloadRefused(BotError):
    """The URL is not one the bot may fetch (scheme, host, address, size); nothing was downloaded."""


class DownloadTooLarge(DownloadRefused):
    """The file is over the size cap: it exists and is fine, the bot just will not relay it."""


class DownloadFailed(BotError):
    """The download started but did not complete (HTTP error, timeout, connection lost)."""


@dataclass(frozen=True)
class DownloadedFile:
    """A finished download on disk. The caller deletes ``path`` when done (``DownloadedFile.remove``)."""

    path: Path
    size: int
    content_type: str
    filename: str

    def remove(self) -> None:
        """Delete the temporary file (ignores a file already gone)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


@dataclass(frozen=True)
class AllowList:
    """Parsed ``OUTPUT_HOSTS``: https host names, plus exact origins for entries written with a scheme."""

    hosts: frozenset[str]
    origins: frozenset[tuple[str, str, int]]

    @classmethod
    def parse(cls, entries: Sequence[str]) -> AllowList:
        """``cdn.example.com`` allows https on that host; ``http://127.0.0.1:8765`` allows exactly that origin."""
        hosts: set[str] = set()
        origins: set[tuple[str, str, int]] = set()
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            problem = f"OUTPUT_HOSTS entry {entry!r} must be a host name or look like https://host:port"
            try:
                if "://" in entry:
                    url = parse_url(entry)
                    if not url.raw_host or url.port is None:
                        raise ValueError(problem)
                    origins.add((url.scheme, url.raw_host.lower(), url.port))
                else:
                    hosts.add(ascii_host(entry))
            except BadURL:
                raise ValueError(problem) from None
        return cls(frozenset(hosts), frozenset(origins))

    def is_exact_origin(self, url: URL) -> bool:
        """True when the URL's origin is listed with its scheme and port (loopback allowed only this way)."""
        return (url.scheme, (url.raw_host or "").lower(), url.port or 0) in self.origins

    def check(self, url: URL) -> None:
        """Raise ``DownloadRefused`` unless the URL may be fetched."""
        # raw_host is the ASCII (punycode) form: .host would decode it, and a bogus xn-- label raises.
        host = (url.raw_host or "").lower().rstrip(".")
        if self.is_exact_origin(url):
            return
        if url.scheme != "https":
            raise DownloadRefused(f"The output link is not https ({url.scheme}), so the bot will not download it.")
        if _looks_like_ip(host):
            raise DownloadRefused("The output link points at a bare IP address, so the bot will not download it.")
        if host not in self.hosts:
            raise DownloadRefused(f"The output host {host or '?'} is not on the bot's allow-list (OUTPUT_HOSTS).")


def _looks_like_ip(host: str) -> bool:
    """Any IP spelling, including the decimal/hex/octal/short forms that inet_aton accepts."""
    candidate = host.strip("[]")
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        pass
    else:
        return True
    try:
        socket.inet_aton(candidate)
    except OSError:
        return False
    return True


def is_public_address(address: str) -> bool:
    """False for private, loopback, link-local, multicast, reserved and unspecified addresses (IPv4 and IPv6)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class PrivateAddressRefused(OSError):
    """Raised by :class:`PublicOnlyResolver` when a name resolves only to non-public addresses."""


class PublicOnlyResolver(AbstractResolver):
    """Resolves host names but drops every non-public address; fails when none is left.

    Checking at connect time (not before) closes the gap where a name resolves to a public address
    for the check and a private one for the connection.
    """

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        public = [result for result in results if is_public_address(result["host"])]
        if not public:
            raise PrivateAddressRefused(f"{host} resolves only to private or local addresses; refusing to connect")
        return public

    async def close(self) -> None:
        await self._inner.close()


class SafeDownloader:
    """Downloads output files under the rules above. One instance per process; close it on shutdown."""

    def __init__(
        self,
        allowed: AllowList,
        *,
        max_bytes: int,
        timeout: float = 120.0,
        temp_dir: Path | None = None,
        resolver: AbstractResolver | None = None,
    ) -> None:
        self.allowed = allowed
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.temp_dir = temp_dir
        self._resolver = resolver
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(resolver=PublicOnlyResolver(self._resolver), limit=8)
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
        return self._session

    async def close(self) -> None:
        """Close the download session."""
        if self._session is not None:
            await self._session.close()

    async def download(self, url: str, *, max_bytes: int | None = None, filename: str | None = None) -> DownloadedFile:
        """Fetch ``url`` into a temporary file and return it; raises only ``DownloadRefused`` or ``DownloadFailed``."""
        cap = self.max_bytes if max_bytes is None else min(max_bytes, self.max_bytes)
        try:
            parsed = parse_url(url)
        except BadURL as exc:
            raise DownloadRefused(f"The output link is malformed ({exc}), so the bot will not download it.") from None
        try:
            async with asyncio.timeout(self.timeout):
                return await self._download(parsed, cap, filename)
        except (DownloadRefused, DownloadFailed):
            raise
        except TimeoutError:
            raise DownloadFailed("Downloading the result took too long. Try again later with /jobs.") from None
        except (ValueError, aiohttp.InvalidURL) as exc:
            # A link yarl or aiohttp could not handle after all (UnicodeError is a ValueError): it will not improve.
            log.warning("refused an output link aiohttp could not handle: %s", type(exc).__name__)
            raise DownloadRefused("The output link could not be read, so the bot will not download it.") from None
        except Exception as exc:
            # The contract is two exceptions; anything else (a connector or disk error) is worth another try.
            log.warning("download failed unexpectedly: %s", type(exc).__name__, exc_info=True)
            raise DownloadFailed(f"Downloading the result failed ({type(exc).__name__}).") from None

    async def _download(self, url: URL, cap: int, filename: str | None) -> DownloadedFile:
        session = self._get_session()
        for _hop in range(MAX_REDIRECTS + 1):
            self.allowed.check(url)
            try:
                response = await session.get(url, allow_redirects=False)
            except aiohttp.ClientConnectorError as exc:
                raise _connect_error(url, exc) from None
            except aiohttp.InvalidURL:
                raise DownloadRefused("The output link could not be read, so the bot will not download it.") from None
            except aiohttp.ClientError as exc:
                raise DownloadFailed(f"Downloading the result failed ({type(exc).__name__}).") from None
            async with response:
                if response.status in (301, 302, 303, 307, 308):
                    url = _redirect_target(url, response.headers.get("Location"))
                    continue
                if response.status != 200:
                    raise DownloadFailed(f"The output host answered HTTP {response.status}.")
                if response.content_length is not None and response.content_length > cap:
                    raise DownloadTooLarge(f"The result is {response.content_length} bytes, over the {cap}-byte limit.")
                content_type = response.headers.get("Content-Type", "application/octet-stream").split(";")[0].strip()
                name = filename or Path(url.path).name or "output"
                return await self._stream_to_file(response, cap, content_type, name)
        raise DownloadRefused("The output link redirected too many times.")

    async def _stream_to_file(
        self, response: aiohttp.ClientResponse, cap: int, content_type: str, name: str
    ) -> DownloadedFile:
        size = 0
        # delete=False: the file outlives this function; DownloadedFile.remove() deletes it.
        with tempfile.NamedTemporaryFile(
            prefix="hypereal-", suffix=Path(name).suffix, dir=self.temp_dir, delete=False
        ) as handle:
            path = Path(handle.name)
            try:
                async for chunk in response.content.iter_chunked(CHUNK_SIZE):
                    size += len(chunk)
                    if size > cap:
                        raise DownloadTooLarge(f"The result is over the {cap}-byte limit; it was not downloaded.")
                    await asyncio.to_thread(handle.write, chunk)
            except aiohttp.ClientError as exc:
                path.unlink(missing_ok=True)
                raise DownloadFailed(f"The download was interrupted ({type(exc).__name__}).") from None
            except BaseException:
                path.unlink(missing_ok=True)
                raise
        log.info("downloaded output host=%s bytes=%s type=%s", response.url.host, size, content_type)
        return DownloadedFile(path=path, size=size, content_type=content_type, filename=name)


def _connect_error(url: URL, exc: aiohttp.ClientConnectorError) -> DownloadRefused | DownloadFailed:
    """Our resolver's refusal of a private address is final; any other connection failure is transport."""
    host = url.raw_host or "?"
    if isinstance(exc.os_error, PrivateAddressRefused):
        return DownloadRefused(f"The output host {host} could not be reached safely: {exc.os_error}")
    return DownloadFailed(f"The output host {host} could not be reached ({type(exc.os_error).__name__}).")


def _redirect_target(url: URL, location: str | None) -> URL:
    """Where a redirect leads, checked for shape (the allow-list is checked by the next hop)."""
    if not location:
        raise DownloadFailed("The output host answered a redirect without a location.")
    try:
        return join_location(url, location)
    except BadURL as exc:
        raise DownloadRefused(
            f"The output host redirected to a malformed link ({exc}), so the bot will not download it."
        ) from None

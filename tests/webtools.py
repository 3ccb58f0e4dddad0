"""Test tools for the web server: a raw HTTP/1.1 client and the webhook endpoint served from a thread.

The raw client writes the request exactly as told — in pieces, with pauses, chunked or not — which
no HTTP library does on purpose. The threaded server lets synchronous code (hypothesis) drive the
real aiohttp app, the real job store and a real SQLite file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from pydantic import SecretStr

from bot.app import build_services
from bot.catalog import Catalog
from bot.db import SQLiteDatabase
from bot.download import AllowList, SafeDownloader
from bot.health import WriteProbe
from bot.hypereal import HyperealClient
from bot.jobs import JobService, JobTiming, install_webhook_route
from bot.jobs.store import JobStore, NewJob, new_job_id, new_webhook_token
from bot.kv import KeyValueStore
from bot.settings import Settings
from bot.web import BODY_TIMEOUT_SECONDS, HealthProbe, WebServer, create_web_app

T = TypeVar("T")

PENDING_HYPEREAL_ID = "hj_pending_0001"
FINISHED_HYPEREAL_ID = "hj_finished_0001"


@dataclass
class RawResponse:
    """What came back: the status (0 when the server closed without answering), headers and body."""

    status: int
    head: bytes
    body: bytes


def request_head(
    method: str, path: str, headers: list[tuple[str, str]], *, length: int | None, chunked: bool = False
) -> bytes:
    """The request line and headers; Content-Length (or chunked) as asked, and Connection: close."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    elif length is not None:
        lines.append(f"Content-Length: {length}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def encode_parts(parts: list[bytes], *, chunked: bool) -> list[bytes]:
    """The body pieces as written on the wire (each piece one chunk when chunked, then the last chunk)."""
    if not chunked:
        return parts
    return [b"%x\r\n%s\r\n" % (len(part), part) for part in parts if part] + [b"0\r\n\r\n"]


def parse_response(data: bytes) -> RawResponse:
    """Split an HTTP response into status, head and body (0 when nothing or garbage came back)."""
    head, _, body = data.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        status = 0
    return RawResponse(status, head, body)


def raw_request(
    port: int,
    method: str,
    path: str,
    parts: list[bytes],
    *,
    headers: list[tuple[str, str]] | None = None,
    chunked: bool = False,
    pause: float = 0.0,
    timeout: float = 10.0,
) -> RawResponse:
    """Send one request over a blocking socket, the body in ``parts`` with ``pause`` seconds between them."""
    body_length = sum(len(part) for part in parts)
    head = request_head(method, path, headers or [], length=body_length, chunked=chunked)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head)
        try:
            for n, piece in enumerate(encode_parts(parts, chunked=chunked)):
                if n and pause:
                    time.sleep(pause)
                sock.sendall(piece)
        except OSError:
            pass  # the server may answer (413, 404…) and close before the whole body is sent
        received = bytearray()
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
    return parse_response(bytes(received))


async def araw_request(
    port: int,
    method: str,
    path: str,
    parts: list[bytes],
    *,
    headers: list[tuple[str, str]] | None = None,
    chunked: bool = False,
    pause: float = 0.0,
) -> RawResponse:
    """:func:`raw_request` on asyncio streams, for tests that run inside the server's own loop."""
    body_length = sum(len(part) for part in parts)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request_head(method, path, headers or [], length=body_length, chunked=chunked))
        for n, piece in enumerate(encode_parts(parts, chunked=chunked)):
            await writer.drain()
            if n and pause:
                await asyncio.sleep(pause)
            writer.write(piece)
        await writer.drain()
        return parse_response(await reader.read())
    finally:
        writer.close()
        await asyncio.gather(writer.wait_closed(), return_exceptions=True)


class LogRecorder(logging.Handler):
    """Every record at INFO and above, whatever the logger (the fault suite bounds the log's volume)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []
        self._lock_records = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock_records:
            self.records.append(record)

    @property
    def volume(self) -> int:
        """Bytes the records would take formatted with their tracebacks."""
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
        return sum(len(formatter.format(record)) + 1 for record in list(self.records))

    @property
    def tracebacks(self) -> list[logging.LogRecord]:
        """Records carrying an exception (a traceback each)."""
        return [record for record in list(self.records) if record.exc_info]


@contextlib.contextmanager
def recording_logs() -> Iterator[LogRecorder]:
    """Attach a :class:`LogRecorder` to the root logger for the duration of a ``with`` block."""
    recorder = LogRecorder()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(recorder)
    root.setLevel(min(previous, logging.INFO) if previous else logging.INFO)
    try:
        yield recorder
    finally:
        root.removeHandler(recorder)
        root.setLevel(previous)


@dataclass
class WebhookTokens:
    """One token of each kind the fuzz aims at."""

    pending: str
    finished: str
    unknown: str = field(default_factory=new_webhook_token)


class ThreadedWebhookServer:
    """The real webhook route, job store and SQLite file, served by an event loop in a thread.

    No poller runs: the jobs stay as the tests put them unless a webhook changes them.
    """

    def __init__(self, tmp_path: Path, *, body_timeout: float = BODY_TIMEOUT_SECONDS) -> None:
        self._tmp_path = tmp_path
        self._body_timeout = body_timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="webhook-server", daemon=True)
        self.port = 0
        self.tokens: WebhookTokens
        self._closers: list[Any] = []

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run ``coro`` on the server's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def __enter__(self) -> ThreadedWebhookServer:
        self._thread.start()
        self.call(self._start())
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        self.db = db = await SQLiteDatabase.open(self._tmp_path / "webhooks.sqlite3")
        await db.migrate()
        http = aiohttp.ClientSession()
        settings = Settings(_env_file=None, discord_token="x", hypereal_api_key="k")  # type: ignore[call-arg]
        # Nothing listens on port 9: no poller runs, so the client is never used.
        hypereal = HyperealClient(http, "http://127.0.0.1:9", SecretStr("k"))
        downloader = SafeDownloader(AllowList.parse(["http://127.0.0.1:9"]), max_bytes=1000)
        services = build_services(settings, db, http, hypereal, Catalog.load(), downloader, time.time)
        self.store = store = JobStore(db, time.time)
        jobs = JobService(
            store=store,
            hypereal=hypereal,
            paid=services.paid,
            catalog=services.catalog,
            downloader=downloader,
            clock=time.time,
            public_url="http://127.0.0.1:1",
            timing=JobTiming(first_poll=60.0, max_poll=60.0),
        )
        self.tokens = WebhookTokens(pending=new_webhook_token(), finished=new_webhook_token())
        await self._job(self.tokens.pending, PENDING_HYPEREAL_ID, finished=False)
        await self._job(self.tokens.finished, FINISHED_HYPEREAL_ID, finished=True)
        app = create_web_app(
            HealthProbe(lambda: True, WriteProbe(KeyValueStore(db)).problem),
            install_webhook_route(jobs, body_timeout=self._body_timeout),
        )
        self.web = WebServer(app, "127.0.0.1", 0)
        await self.web.start()
        assert self.web.port is not None
        self.port = self.web.port
        self._closers = [self.web.close, jobs.stop, downloader.close, http.close, db.close]

    async def _job(self, token: str, hypereal_id: str, *, finished: bool) -> None:
        now = time.time()
        job = await self.store.create(
            NewJob(new_job_id(), 1, 3, 2, "video", "m", "video", {}, f"k-{hypereal_id}", 1),
            webhook_token=token,
            deadline_at=int(now) + 3600,
            recheck_at=now + 3600,
        )
        assert await self.store.mark_pending(job.id, hypereal_id, None, 1, now + 3600)
        if finished:
            assert await self.store.mark_completed(job.id, "https://cdn.example/x.mp4", 1)
            assert await self.store.mark_delivered(job.id, 1, 3, None)

    async def _stop(self) -> None:
        for close in self._closers:
            await close()

    def snapshot(self) -> list[tuple[Any, ...]]:
        """Every column of every job: what a webhook may change."""
        rows = self.call(self.db.fetch_all("SELECT * FROM jobs ORDER BY id"))
        return [tuple(row) for row in rows]

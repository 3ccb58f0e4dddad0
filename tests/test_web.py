"""The web server under hostile input: whole bodies, deep nesting, slow clients, the connection cap,
accept errors at a low file-descriptor limit, and a /healthz that checks a database write."""

from __future__ import annotations

import asyncio
import json
import resource
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot.db import Database, SQLiteDatabase
from bot.health import PROBE_KEY, WriteProbe, raise_open_file_limit
from bot.jobs.webhook import MAX_NESTING, nesting_exceeds
from bot.kv import KeyValueStore
from bot.web import HealthProbe, WebServer, create_web_app
from tests.webtools import PENDING_HYPEREAL_ID, ThreadedWebhookServer, araw_request, raw_request, recording_logs

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def webhooks(tmp_path: Path) -> Iterator[ThreadedWebhookServer]:
    with ThreadedWebhookServer(tmp_path, body_timeout=0.5) as server:
        yield server


def _completion() -> bytes:
    return json.dumps({"jobId": PENDING_HYPEREAL_ID, "status": "completed"}).encode()


def _stored_webhook(server: ThreadedWebhookServer) -> object:
    value = server.call(
        server.db.fetch_value("SELECT webhook_payload FROM jobs WHERE hypereal_job_id = ?", (PENDING_HYPEREAL_ID,))
    )
    return None if value is None else json.loads(value)


# ── 5a: the whole body, however it arrives ────────────────────────────────────


def test_a_webhook_body_in_two_tcp_writes_with_a_pause_is_accepted(webhooks: ThreadedWebhookServer) -> None:
    body = _completion()
    response = raw_request(
        webhooks.port, "POST", f"/hypereal/webhook/{webhooks.tokens.pending}", [body[:10], body[10:]], pause=0.3
    )
    assert response.status == 200, response.body
    assert json.loads(response.body)["detail"] == "ok"
    assert _stored_webhook(webhooks) == {"jobId": PENDING_HYPEREAL_ID, "status": "completed"}


def test_a_chunked_webhook_with_pauses_is_accepted(webhooks: ThreadedWebhookServer) -> None:
    body = _completion()
    parts = [body[i : i + 7] for i in range(0, len(body), 7)]
    response = raw_request(
        webhooks.port, "POST", f"/hypereal/webhook/{webhooks.tokens.pending}", parts, chunked=True, pause=0.05
    )
    assert response.status == 200, response.body
    assert _stored_webhook(webhooks) == {"jobId": PENDING_HYPEREAL_ID, "status": "completed"}


def test_a_body_over_the_cap_is_413_with_or_without_a_length(webhooks: ThreadedWebhookServer) -> None:
    path = f"/hypereal/webhook/{webhooks.tokens.pending}"
    big = [b"x" * 40_000, b"x" * 40_000]
    assert raw_request(webhooks.port, "POST", path, big).status == 413
    assert raw_request(webhooks.port, "POST", path, big, chunked=True).status == 413
    assert _stored_webhook(webhooks) is None


def test_a_body_that_stalls_is_408_at_the_body_deadline(webhooks: ThreadedWebhookServer) -> None:
    started = time.monotonic()
    # Content-Length says 100, ten bytes come, then nothing.
    with socket.create_connection(("127.0.0.1", webhooks.port), timeout=10) as sock:
        sock.sendall(
            f"POST /hypereal/webhook/{webhooks.tokens.pending} HTTP/1.1\r\nHost: x\r\n"
            "Content-Length: 100\r\n\r\n0123456789".encode()
        )
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert time.monotonic() - started < 5
    assert _stored_webhook(webhooks) is None


# ── 5b: deep nesting ─────────────────────────────────────────────────────────


def test_deep_nesting_is_a_clear_400_with_bounded_logging(webhooks: ThreadedWebhookServer) -> None:
    path = f"/hypereal/webhook/{webhooks.tokens.pending}"
    with recording_logs() as logs:
        for _ in range(200):
            response = raw_request(webhooks.port, "POST", path, [b"[" * 40_000])
            assert response.status == 400
            assert json.loads(response.body)["detail"] == f"body is nested deeper than {MAX_NESTING} levels"
        nested_objects = b'{"a":' * 65 + b"1" + b"}" * 65
        assert raw_request(webhooks.port, "POST", path, [nested_objects]).status == 400
    assert logs.tracebacks == []
    assert logs.volume < 2_000  # was 11 MB of tracebacks for 9,000 requests
    assert _stored_webhook(webhooks) is None


def test_nesting_is_counted_outside_strings_only() -> None:
    assert not nesting_exceeds('{"jobId": "' + "[" * 500 + '", "status": "x"}')
    assert not nesting_exceeds("[" * MAX_NESTING + "]" * MAX_NESTING)
    assert nesting_exceeds("[" * (MAX_NESTING + 1))
    assert nesting_exceeds('[{"a": ' * 40 + "1")
    assert not nesting_exceeds('"' + "\\" * 10_000)  # unterminated: linear, and no brackets counted
    # Linear even for the string shape that makes a backtracking pattern quadratic.
    started = time.perf_counter()
    nesting_exceeds('"\\"' * 20_000 + "[" * 70)
    assert time.perf_counter() - started < 0.5


def test_a_json_body_in_utf16_is_read(webhooks: ThreadedWebhookServer) -> None:
    body = json.dumps({"jobId": PENDING_HYPEREAL_ID, "status": "processing"}).encode("utf-16")
    response = raw_request(webhooks.port, "POST", f"/hypereal/webhook/{webhooks.tokens.pending}", [body])
    assert response.status == 200, response.body


# ── 5d: slow clients and the connection cap ──────────────────────────────────


async def _ok() -> str | None:
    return None


RELEASE: dict[WebServer, asyncio.Event] = {}


@pytest.fixture
async def small_server() -> AsyncIterator[WebServer]:
    """/healthz plus a /hold route whose handler waits, behind a cap of 10 and a 0.5 s header deadline."""
    release = asyncio.Event()

    async def hold(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="released")

    def install(app: web.Application) -> None:
        app.router.add_get("/hold", hold)

    app = create_web_app(HealthProbe(lambda: True, _ok), install)
    # The default header deadline is 10 s; the mechanism is the same.
    server = WebServer(app, "127.0.0.1", 0, max_connections=10, header_timeout=0.5)
    await server.start()
    RELEASE[server] = release
    yield server
    release.set()
    await server.close()


async def test_partial_headers_are_cut_off_at_the_header_deadline(small_server: WebServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", small_server.port)
    started = time.monotonic()
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    closed = False
    for _ in range(40):  # a slowloris: one header byte every 0.1 s never completes the head
        try:
            writer.write(b"X")
            await writer.drain()
        except ConnectionError:
            closed = True
            break
        try:
            data = await asyncio.wait_for(reader.read(100), 0.1)
        except TimeoutError:
            continue
        if data == b"":
            closed = True
            break
    writer.close()
    assert closed
    assert time.monotonic() - started < 2.0


async def test_past_the_cap_the_oldest_idle_connection_makes_room(small_server: WebServer) -> None:
    assert small_server.port is not None
    idle = [await asyncio.open_connection("127.0.0.1", small_server.port) for _ in range(30)]
    for _, writer in idle:
        writer.write(b"GET /healthz HTTP/1.1\r\n")  # partial headers, then silence
    await asyncio.sleep(0.1)
    started = time.monotonic()
    response = await araw_request(small_server.port, "GET", "/healthz", [])
    assert response.status == 200
    assert time.monotonic() - started < 1.0
    guard = small_server.guard
    assert guard is not None
    assert guard.open <= guard.max_connections
    assert guard.evicted >= 20
    for _, writer in idle:
        writer.close()


async def test_when_every_connection_is_in_a_handler_a_newcomer_gets_a_fast_503(small_server: WebServer) -> None:
    assert small_server.port is not None
    held = [asyncio.create_task(araw_request(small_server.port, "GET", "/hold", [])) for _ in range(10)]
    guard = small_server.guard
    assert guard is not None
    for _ in range(250):
        if guard.open >= 10:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)  # every one of them inside the handler
    started = time.monotonic()
    refused = await araw_request(small_server.port, "GET", "/healthz", [])
    assert refused.status == 503
    assert time.monotonic() - started < 1.0
    assert guard.refused == 1
    RELEASE.pop(small_server).set()
    assert [r.status for r in await asyncio.gather(*held)] == [200] * 10


def test_the_soft_open_file_limit_is_raised_to_the_hard_one() -> None:
    script = (
        "import resource, sys\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))\n"
        "from bot.health import raise_open_file_limit\n"
        "before, after = raise_open_file_limit()\n"
        "print(before, after, *resource.getrlimit(resource.RLIMIT_NOFILE))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=30)
    before, after, soft, hard = map(int, result.stdout.split())
    assert before == min(256, hard)
    assert after == soft == hard
    # Already at the hard limit: nothing to do, and it says so.
    current = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if current == resource.getrlimit(resource.RLIMIT_NOFILE)[1]:
        assert raise_open_file_limit() == (current, current)


ACCEPT_STORM = """
import asyncio, logging, os, resource, sys
from bot.web import HealthProbe, WebServer, create_web_app

async def ok():
    return None

async def main():
    web = WebServer(create_web_app(HealthProbe(lambda: True, ok)), "127.0.0.1", 0)
    await web.start()
    print(web.port, flush=True)
    hog = []  # every descriptor taken: each accept fails with EMFILE
    try:
        while True:
            hog.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        pass
    await asyncio.sleep(float(sys.argv[1]))
    for fd in hog:
        os.close(fd)
    print("released", flush=True)
    await asyncio.sleep(60)

logging.basicConfig(level=logging.INFO, stream=sys.stderr)
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
asyncio.run(main())
"""


async def test_accept_errors_at_a_low_descriptor_limit_log_little_and_the_server_recovers() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", ACCEPT_STORM, "3", cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        port = int(await asyncio.wait_for(process.stdout.readline(), 20))
        # 200 connections knock while the server has no descriptor to accept them with.
        knocking = [await asyncio.open_connection("127.0.0.1", port) for _ in range(200)]
        assert await asyncio.wait_for(process.stdout.readline(), 20) == b"released\n"
        for _, writer in knocking:
            writer.close()
        url = f"http://127.0.0.1:{port}/healthz"
        async with aiohttp.ClientSession() as http, http.get(url, timeout=aiohttp.ClientTimeout(10)) as response:
            assert response.status == 200
    finally:
        process.kill()
        await process.wait()
    log = (await process.stderr.read()).decode()
    assert "cannot accept connections" in log
    assert log.count("cannot accept connections") <= 2
    assert "Traceback" not in log
    assert len(log) < 3_000


# ── 9: /healthz checks a write ───────────────────────────────────────────────


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    db = await SQLiteDatabase.open(tmp_path / "health.sqlite3")
    await db.migrate()
    yield db
    await db.close()


async def _health_server(db: Database, *, interval: float) -> tuple[WebServer, str]:
    probe = WriteProbe(KeyValueStore(db), interval=interval)
    server = WebServer(create_web_app(HealthProbe(lambda: True, probe.problem)), "127.0.0.1", 0)
    await server.start()
    return server, f"http://127.0.0.1:{server.port}/healthz"


async def _get(url: str) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.json()


async def _until_status(url: str, status: int, timeout: float = 5.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        got, body = await _get(url)
        if got == status or time.monotonic() > deadline:
            assert got == status, body
            return body
        await asyncio.sleep(0.05)


async def _fill(db: Database) -> None:
    """Cap the file at its current size, then write until SQLite says it is full, down to tiny rows."""
    pages = await db.fetch_value("PRAGMA page_count")
    await db.fetch_value(f"PRAGMA max_page_count = {int(pages)}")
    kv = KeyValueStore(db)
    n = 0
    for size in (2000, 200, 20, 1):
        failure: Exception | None = None
        while failure is None:
            n += 1
            try:
                await kv.set(f"filler:{n}", "x" * size)
            except Exception as exc:
                failure = exc
        assert "full" in str(failure)


async def test_healthz_is_503_with_the_reason_when_the_database_is_full_and_recovers(database: Database) -> None:
    await _fill(database)
    server, url = await _health_server(database, interval=0.2)
    try:
        status, body = await _get(url)
        assert status == 503
        assert body["reasons"] == ["database: write failed: database or disk is full"]
        assert body["database"] is False
        await database.fetch_value("PRAGMA max_page_count = 1000000")
        body = await _until_status(url, 200)
        assert body == {"status": "ok", "gateway": True, "database": True, "reasons": []}
    finally:
        await server.close()


async def test_healthz_is_503_while_the_database_refuses_writes_and_recovers(database: Database) -> None:
    server, url = await _health_server(database, interval=0.2)
    try:
        assert (await _get(url))[0] == 200
        await database.fetch_value("PRAGMA query_only = 1")  # every write now fails, reads still work
        body = await _until_status(url, 503)
        assert body["reasons"] == ["database: write failed: attempt to write a readonly database"]
        await database.fetch_value("PRAGMA query_only = 0")
        await _until_status(url, 200)
    finally:
        await server.close()


async def test_the_write_probe_writes_at_most_once_per_interval(database: Database) -> None:
    server, url = await _health_server(database, interval=10.0)
    kv = KeyValueStore(database)
    try:
        await asyncio.gather(*(_get(url) for _ in range(20)))
        first = await kv.get(PROBE_KEY)
        assert first is not None
        for _ in range(20):
            assert (await _get(url))[0] == 200
        assert await kv.get(PROBE_KEY) == first  # no second write within the interval
    finally:
        await server.close()


async def test_healthz_says_when_the_gateway_is_down(database: Database) -> None:
    probe = WriteProbe(KeyValueStore(database))
    server = WebServer(create_web_app(HealthProbe(lambda: False, probe.problem)), "127.0.0.1", 0)
    await server.start()
    try:
        status, body = await _get(f"http://127.0.0.1:{server.port}/healthz")
    finally:
        await server.close()
    assert status == 503
    assert body["reasons"] == ["gateway: not connected to Discord"]

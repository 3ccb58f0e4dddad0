"""Slow clients: 1,000 connections that send half a request head and stall, against the real bot,
while /healthz, Hypereal's webhook and a slash command keep answering quickly."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from bot.web import HEADER_TIMEOUT_SECONDS
from tests.conftest import RunningBot

SLOW = 1000


async def open_slow_connections(port: int, count: int) -> list[asyncio.StreamWriter]:
    """``count`` connections, each with a partial request head and then silence."""
    writers = []
    for _ in range(count):
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /hypereal/webhook/0123456789abcdef0123 HTTP/1.1\r\nHost: x\r\nContent-")
        writers.append(writer)
    return writers


@pytest.mark.timeout(60)
async def test_a_thousand_slow_connections_do_not_stop_health_webhooks_or_commands(webhook_bot: RunningBot) -> None:
    fake, sandbox = webhook_bot.fake, webhook_bot.sandbox
    port = webhook_bot.app.bot.web.port
    assert port is not None
    opened = time.monotonic()
    slow = await open_slow_connections(port, SLOW)
    try:
        await asyncio.sleep(0.2)
        guard = webhook_bot.app.bot.web.guard
        assert guard is not None
        assert guard.open >= SLOW  # they are all held open, none answered

        started = time.monotonic()
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/healthz") as response:
            assert response.status == 200, await response.text()
        health_seconds = time.monotonic() - started
        assert health_seconds < 2.0

        started = time.monotonic()
        credits = await fake.response(await fake.invoke("credits"))
        assert "**1000** of 1000 credits left" in credits.embeds[0]["fields"][0]["value"]
        command_seconds = time.monotonic() - started
        assert command_seconds < 5.0

        # Polling waits 30 s: a result within 15 s came by Hypereal's webhook, through the crowd.
        started = time.monotonic()
        await fake.invoke("video", prompt="a cat surfing")
        await fake.wait_for(lambda: [m for m in fake.messages() if "is ready" in m.content], timeout=15)
        webhook_seconds = time.monotonic() - started
        assert [status for _, _, status in sandbox.webhooks_sent] == [200]

        # The request-head deadline closes every one of them (they stayed 86 s and more before).
        for _ in range(150):
            if guard.open == 0:
                break
            await asyncio.sleep(0.1)
        assert guard.open == 0
        closed_after = time.monotonic() - opened
        assert closed_after < HEADER_TIMEOUT_SECONDS + 4
        print(
            f"\n{SLOW} slow connections: /healthz {health_seconds:.2f} s, /credits {command_seconds:.2f} s,"
            f" /video by webhook {webhook_seconds:.2f} s, all closed by the server after {closed_after:.1f} s"
        )
    finally:
        for writer in slow:
            writer.close()


LOW_LIMIT_SERVER = """
import asyncio, logging, resource, sys
from bot.web import HealthProbe, WebServer, create_web_app

async def ok():
    return None

async def main():
    web = WebServer(create_web_app(HealthProbe(lambda: True, ok)), "127.0.0.1", 0)
    await web.start()
    print(web.port, web.guard.max_connections, flush=True)
    await asyncio.sleep(120)

logging.basicConfig(level=logging.INFO, stream=sys.stderr)
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
asyncio.run(main())
"""


@pytest.mark.timeout(60)
async def test_at_a_256_descriptor_limit_a_thousand_slow_connections_leave_healthz_answering() -> None:
    """The probe's setting: at 256 descriptors /healthz timed out and the accept loop wrote 196 MB of log."""
    root = Path(__file__).resolve().parent.parent
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", LOW_LIMIT_SERVER, cwd=root,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stderr is not None
    slow: list[asyncio.StreamWriter] = []
    try:
        port, cap = map(int, (await asyncio.wait_for(process.stdout.readline(), 20)).split())
        assert cap == 128  # half the descriptors
        slow = await open_slow_connections(port, SLOW)
        started = time.monotonic()
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            for _ in range(5):
                async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                    assert response.status == 200
        answered_in = time.monotonic() - started
        assert answered_in < 5.0
    finally:
        for writer in slow:
            writer.close()
        process.kill()
        await process.wait()
    log = (await process.stderr.read()).decode()
    assert "Traceback" not in log
    assert len(log) < 2_000
    print(
        f"\nat 256 descriptors, {SLOW} slow connections: 5 × /healthz in {answered_in:.2f} s, {len(log)} bytes of log"
    )

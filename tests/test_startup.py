"""`python -m bot` with HYPEREAL_SANDBOX=1 logs in and reaches the gateway connect step, then stops on SIGTERM.

A deliberately tiny Discord stand-in (login routes + a websocket that records IDENTIFY) keeps this
test independent of the full fake Discord used by the end-to-end tests.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "stub-token-SECRET-123"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DiscordStub:
    """Answers login and records what arrives on the gateway."""

    def __init__(self) -> None:
        self.identified = asyncio.Event()
        self.identify: dict | None = None
        self.port = 0

    def _json(self, data: object, status: int = 200) -> web.Response:
        # body= (not text=): aiohttp would add "; charset=utf-8", which discord.py does not parse as JSON.
        return web.Response(body=json.dumps(data).encode(), status=status, content_type="application/json")

    async def me(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bot {TOKEN}":
            return self._json({"message": "401: Unauthorized", "code": 0}, 401)
        return self._json({"id": "1000", "username": "stub-bot", "discriminator": "0", "avatar": None, "bot": True})

    async def app_info(self, request: web.Request) -> web.Response:
        return self._json(
            {"id": "1000", "name": "stub", "icon": None, "description": "", "bot_public": True,
             "bot_require_code_grant": False, "verify_key": "00", "flags": 0, "owner": {
                 "id": "1", "username": "owner", "discriminator": "0", "avatar": None}}
        )  # fmt: skip

    async def gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None}))
        async for message in ws:
            payload = json.loads(message.data)
            if payload.get("op") == 2:
                self.identify = payload["d"]
                self.identified.set()
        return ws

    async def gateway_bot(self, request: web.Request) -> web.Response:
        """The recommended shard count (the bot shards automatically when SHARD_COUNT is unset)."""
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return self._json({"url": f"ws://127.0.0.1:{self.port}/gateway", "shards": 1, "session_start_limit": limit})

    async def sync(self, request: web.Request) -> web.Response:
        commands = await request.json()
        return self._json([{"description": "", **command, "id": str(2000 + n), "application_id": "1000", "version": "1"}
                           for n, command in enumerate(commands)])  # fmt: skip

    async def anything(self, request: web.Request) -> web.Response:
        return self._json({"message": "Unknown route", "code": 0}, 404)


@pytest.fixture
async def stub() -> AsyncIterator[DiscordStub]:
    stub = DiscordStub()
    app = web.Application()
    app.router.add_get("/api/v10/users/@me", stub.me)
    app.router.add_get("/api/v10/oauth2/applications/@me", stub.app_info)
    app.router.add_get("/gateway", stub.gateway)
    app.router.add_get("/api/v10/gateway/bot", stub.gateway_bot)
    app.router.add_put("/api/v10/applications/1000/commands", stub.sync)
    app.router.add_route("*", "/{tail:.*}", stub.anything)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    stub.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield stub
    await runner.cleanup()


async def _start_bot(stub: DiscordStub, tmp_path: Path, token: str, web_port: int) -> asyncio.subprocess.Process:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "DISCORD_TOKEN": token,
        "HYPEREAL_SANDBOX": "1",
        "DISCORD_API_BASE": f"http://127.0.0.1:{stub.port}/api/v10",
        "DISCORD_GATEWAY_URL": f"ws://127.0.0.1:{stub.port}/gateway",
        "DATABASE_PATH": str(tmp_path / "bot.sqlite3"),
        "WEB_HOST": "127.0.0.1",
        "WEB_PORT": str(web_port),
    }
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def test_bot_with_sandbox_reaches_the_gateway_and_stops_on_sigterm(stub: DiscordStub, tmp_path: Path) -> None:
    web_port = _free_port()
    process = await _start_bot(stub, tmp_path, TOKEN, web_port)
    try:
        await asyncio.wait_for(stub.identified.wait(), timeout=30)
        assert stub.identify is not None
        assert stub.identify["token"] == TOKEN
        # Minimal intents: no members, no presences, no message content.
        assert stub.identify["intents"] & (1 << 1) == 0
        assert stub.identify["intents"] & (1 << 15) == 0
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{web_port}/healthz") as response:
            # Connected to the gateway but never READY: the health check says so.
            assert response.status == 503
            body = await response.json()
        assert body["database"] is True
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=5) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    _, stderr = await process.communicate()
    log = stderr.decode()
    assert "sandbox provider" in log
    assert TOKEN not in log
    assert (tmp_path / "bot.sqlite3").exists()


async def test_a_rejected_token_is_one_clear_line_and_exit_2(stub: DiscordStub, tmp_path: Path) -> None:
    process = await _start_bot(stub, tmp_path, "wrong-token-XYZ", _free_port())
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 2
    log = stderr.decode()
    assert "Discord rejected DISCORD_TOKEN" in log
    assert "Traceback" not in log
    assert "wrong-token-XYZ" not in log

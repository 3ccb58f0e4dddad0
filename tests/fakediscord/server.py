"""A fake Discord (REST v10 + gateway v10) on 127.0.0.1 for the unmodified discord.py client.

It records every REST call, keeps every version of every message, enforces Discord-like rate
limits when asked (announced with coherent ``X-RateLimit-*`` headers; 429s carry ``Via`` and a
JSON ``retry_after``), injects faults, and lets a test play the users: slash commands, autocomplete,
button clicks, modal submits and plain messages, built from the commands the bot really synced.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import math
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakediscord.state import (
    BASIC,
    MANAGE_GUILD,
    Channel,
    Guild,
    MessageRecord,
    Role,
    StoredFile,
    User,
    iso_now,
    snowflake,
)

EDIT_LIMIT = 5  # message edits (and sends) per channel...
EDIT_WINDOW = 5.0  # ...per this many seconds
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024
GUILDS_PER_SHARD = 1000  # GET /gateway/bot recommends one shard per this many guilds (as Discord does)
MAX_GUILDS_PER_SESSION = 2500  # a session serving more is closed with 4011 "Sharding required"
VOICE_MESSAGE = 1 << 13  # message flag IS_VOICE_MESSAGE
# Filler guild ids are snowflakes whose timestamp part counts up from here (mid-2018), one ms per guild,
# so ``(guild_id >> 22) % shard_count`` goes round-robin over the shards for any count.
FILLER_TIMESTAMP_MS = 119_000_000_000


def shard_of(guild_id: int, shard_count: int) -> int:
    """The shard that serves ``guild_id`` when the bot runs ``shard_count`` shards (Discord's formula)."""
    return (guild_id >> 22) % shard_count


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # Exactly "application/json": discord.py does not parse JSON for "application/json; charset=utf-8".
    return web.Response(body=json.dumps(data).encode(), status=status, content_type="application/json", headers=headers)


def _error(status: int, message: str, code: int = 0) -> web.Response:
    return _json({"message": message, "code": code}, status)


@dataclass
class Call:
    """One REST call the bot made."""

    method: str
    route: str  # template, e.g. /channels/{channel_id}/messages/{message_id}
    path: str
    json: Any
    files: list[StoredFile]
    time: float
    status: int = 0


@dataclass
class Fault:
    """Answer ``count`` requests matching ``pattern`` ("METHOD /route/template") with ``status``."""

    pattern: str
    status: int
    count: int
    body: dict[str, Any] | None = None
    retry_after: float = 0.2


@dataclass
class InteractionHandle:
    """A slash command, click, autocomplete or modal submit the fake sent, and what the bot answered."""

    id: int
    token: str
    type: int
    channel_id: int
    user: User
    payload: dict[str, Any]
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    original_id: int | None = None
    message_id: int | None = None  # the message whose component was used (clicks)
    followup_ids: list[int] = field(default_factory=list)
    choices: list[dict[str, Any]] | None = None
    modal: dict[str, Any] | None = None
    token_deleted: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def callback_types(self) -> list[int]:
        """Callback types received, in order (4 message, 5 defer, 6 deferred update, 7 update, 8, 9)."""
        return [c["type"] for c in self.callbacks]


@dataclass
class GatewaySession:
    """One gateway websocket: the shard it identified as, and its own sequence numbers."""

    ws: web.WebSocketResponse
    number: int
    shard_id: int = 0
    shard_count: int = 1
    identified: bool = False
    identified_at: float = 0.0  # time.monotonic() of IDENTIFY (tests check identify pacing with it)
    guild_ids: list[int] = field(default_factory=list)
    seq: int = 0

    def serves(self, guild_id: int | None) -> bool:
        """Whether events of ``guild_id`` reach this session (no guild, as DMs: shard 0 only)."""
        if guild_id is None:
            return self.shard_id == 0
        return shard_of(guild_id, self.shard_count) == self.shard_id


class RateLimiter:
    """Discord-like per-channel limits on message sends and edits."""

    def __init__(self, limit: int = EDIT_LIMIT, window: float = EDIT_WINDOW) -> None:
        self.limit = limit
        self.window = window
        self._stamps: dict[str, deque[float]] = {}

    def check(self, bucket: str) -> tuple[bool, dict[str, str], float]:
        """(allowed, headers, retry_after); records the request when allowed."""
        now = time.time()
        stamps = self._stamps.setdefault(bucket, deque())
        while stamps and stamps[0] <= now - self.window:
            stamps.popleft()
        if len(stamps) >= self.limit:
            retry = stamps[0] + self.window - now
            return False, self._headers(bucket, 0, retry, now), retry
        stamps.append(now)
        reset_after = stamps[0] + self.window - now
        return True, self._headers(bucket, self.limit - len(stamps), reset_after, now), 0.0

    def _headers(self, bucket: str, remaining: int, reset_after: float, now: float) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": f"{now + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": bucket,
            "X-RateLimit-Scope": "user",
        }


class FakeDiscord:
    """The fake. ``await start()``, point the bot at ``api_base``/``gateway_url``, play users, assert."""

    APPLICATION_ID = 900_000_000_000_000_001
    GUILD_ID = 100_000_000_000_000_001
    OTHER_GUILD_ID = 100_000_000_000_000_002
    CHANNEL_ID = 200_000_000_000_000_001
    OTHER_CHANNEL_ID = 200_000_000_000_000_002
    THREAD_ID = 200_000_000_000_000_003
    ALERT_CHANNEL_ID = 200_000_000_000_000_004
    OTHER_GUILD_CHANNEL_ID = 200_000_000_000_000_005
    NSFW_CHANNEL_ID = 200_000_000_000_000_006  # age-restricted
    NSFW_THREAD_ID = 200_000_000_000_000_007  # a thread in the age-restricted channel (see add_nsfw_thread)
    ROLE_ID = 300_000_000_000_000_001
    ADMIN_ROLE_ID = 300_000_000_000_000_002
    BOT = User(APPLICATION_ID, "Hypereal", bot=True)
    ADMIN = User(400_000_000_000_000_001, "admin")
    MEMBER = User(400_000_000_000_000_002, "member")
    OTHER_MEMBER = User(400_000_000_000_000_003, "other")

    def __init__(
        self,
        token: str = "fake-discord-token",
        *,
        ratelimits: bool = False,
        ratelimit_window: float = EDIT_WINDOW,
        extra_guilds: int = 0,
        gateway_close_code: int | None = None,
        max_concurrency: int = 1,
    ) -> None:
        self.token = token
        # Close every gateway session with this code on IDENTIFY (4004 bad token, 4013/4014 intents, 4011 shards…).
        self.gateway_close_code = gateway_close_code
        self.ratelimits = ratelimits
        # Tests may shrink the window (same 5-per-window shape) to keep the suite fast.
        self.limiter = RateLimiter(EDIT_LIMIT, ratelimit_window)
        self.calls: list[Call] = []
        self.messages_by_id: dict[int, MessageRecord] = {}
        self.interactions: dict[str, InteractionHandle] = {}
        self.synced: dict[int | None, list[dict[str, Any]]] = {}
        self.faults: list[Fault] = []
        self.uploads: dict[str, StoredFile] = {}
        self.rate_limited: list[Call] = []
        self.guilds = self._build_guilds()
        self.channels: dict[int, Channel] = {c.id: c for g in self.guilds.values() for c in g.channels}
        self.add_filler_guilds(extra_guilds)
        # Reported in GET /gateway/bot's session_start_limit; discord.py's default hook identifies 1 per 5 s.
        self.max_concurrency = max_concurrency
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._sessions: list[GatewaySession] = []
        self._session_numbers = itertools.count(1)
        self._ready = asyncio.Event()
        self.identify_count = 0  # gateway sessions identified so far (a restarted bot identifies again)
        self.identified: list[GatewaySession] = []  # every session that identified, in order (closed ones too)
        self._synced_event = asyncio.Event()
        self._changed = asyncio.Event()
        self._nonces: dict[tuple[int, str], int] = {}
        # Channels where the bot lacks Send Voice Messages (a voice message there answers 403 / 50013).
        self.voice_messages_denied: set[int] = set()

    # ── the world ────────────────────────────────────────────────────────────

    def _build_guilds(self) -> dict[int, Guild]:
        main = Guild(
            id=self.GUILD_ID,
            name="Test Server",
            owner_id=self.ADMIN.id,
            roles=[
                Role(self.GUILD_ID, "@everyone", BASIC, position=0),
                Role(self.ROLE_ID, "Artists", BASIC),
                Role(self.ADMIN_ROLE_ID, "Admins", BASIC | MANAGE_GUILD, position=2),
            ],
            channels=[
                Channel(self.CHANNEL_ID, "general", guild_id=self.GUILD_ID),
                Channel(self.OTHER_CHANNEL_ID, "generation", guild_id=self.GUILD_ID),
                Channel(self.THREAD_ID, "a-thread", type=11, guild_id=self.GUILD_ID, parent_id=self.CHANNEL_ID),
                Channel(self.ALERT_CHANNEL_ID, "admin-alerts", guild_id=self.GUILD_ID),
                Channel(self.NSFW_CHANNEL_ID, "after-dark", guild_id=self.GUILD_ID, nsfw=True),
            ],
            members={
                self.ADMIN.id: (self.ADMIN, (self.ADMIN_ROLE_ID,)),
                self.MEMBER.id: (self.MEMBER, (self.ROLE_ID,)),
                self.OTHER_MEMBER.id: (self.OTHER_MEMBER, ()),
                self.BOT.id: (self.BOT, ()),
            },
        )
        other = Guild(
            id=self.OTHER_GUILD_ID,
            name="Other Server",
            owner_id=self.OTHER_MEMBER.id,
            roles=[Role(self.OTHER_GUILD_ID, "@everyone", BASIC, position=0)],
            channels=[Channel(self.OTHER_GUILD_CHANNEL_ID, "lobby", guild_id=self.OTHER_GUILD_ID)],
            members={
                self.OTHER_MEMBER.id: (self.OTHER_MEMBER, ()),
                self.MEMBER.id: (self.MEMBER, ()),
                self.BOT.id: (self.BOT, ()),
            },
        )
        return {main.id: main, other.id: other}

    def add_nsfw_thread(self) -> int:
        """A thread in the age-restricted channel, known to interactions only (not in GUILD_CREATE): its id."""
        thread = Channel(
            self.NSFW_THREAD_ID, "after-dark-thread", type=11, guild_id=self.GUILD_ID, parent_id=self.NSFW_CHANNEL_ID
        )
        self.channels[thread.id] = thread
        return thread.id

    def add_filler_guilds(self, count: int) -> list[int]:
        """Add ``count`` servers (one channel, the bot and one member each); returns their ids.

        Their ids are snowflakes with consecutive timestamps, so they spread evenly over the shards
        of any shard count (``(id >> 22) % count`` goes round-robin). Each channel id is its guild's id + 1.
        Add them before the bot connects: a connected session is not sent GUILD_CREATE for them.
        """
        start = len(self.guilds)
        added = []
        for n in range(start, start + count):
            guild_id = (FILLER_TIMESTAMP_MS + n) << 22
            self.guilds[guild_id] = Guild(
                id=guild_id,
                name=f"Server {n}",
                owner_id=self.MEMBER.id,
                roles=[Role(guild_id, "@everyone", BASIC, position=0)],
                channels=[Channel(guild_id + 1, "general", guild_id=guild_id)],
                members={self.MEMBER.id: (self.MEMBER, ()), self.BOT.id: (self.BOT, ())},
            )
            self.channels[guild_id + 1] = self.guilds[guild_id].channels[0]
            added.append(guild_id)
        return added

    def recommended_shards(self) -> int:
        """What GET /gateway/bot answers: one shard per 1,000 guilds, at least one."""
        return max(1, math.ceil(len(self.guilds) / GUILDS_PER_SHARD))

    def guilds_on_shard(self, shard_id: int, shard_count: int) -> list[int]:
        """The ids of the guilds shard ``shard_id`` of ``shard_count`` serves."""
        return [g for g in self.guilds if shard_of(g, shard_count) == shard_id]

    def guild_on_shard(self, shard_id: int, shard_count: int) -> Guild:
        """A guild served by that shard (a filler guild is added when none is): for tests across shards."""
        for guild_id in self.guilds_on_shard(shard_id, shard_count):
            return self.guilds[guild_id]
        while True:
            (guild_id,) = self.add_filler_guilds(1)
            if shard_of(guild_id, shard_count) == shard_id:
                return self.guilds[guild_id]

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:<port>."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        """What DISCORD_API_BASE must be."""
        return f"{self.base_url}/api/v10"

    @property
    def gateway_url(self) -> str:
        """What DISCORD_GATEWAY_URL must be."""
        return f"ws://127.0.0.1:{self.port}/gateway"

    # ── lifetime ─────────────────────────────────────────────────────────────

    async def start(self) -> None:
        """Serve on 127.0.0.1, a free port."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/attachments/{key}/{filename}", self._attachment)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def close(self) -> None:
        """Close every gateway session and the server."""
        for session in list(self._sessions):
            with contextlib.suppress(Exception):
                await session.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ── waiting ──────────────────────────────────────────────────────────────

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Wait until ``predicate()`` is truthy (re-checked after every recorded change); returns its value."""
        async with asyncio.timeout(timeout):
            while True:
                value = predicate()
                if value:
                    return value
                event = self._changed
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), timeout=0.05)

    @property
    def connected_sessions(self) -> int:
        """Gateway websockets open right now (a killed bot's socket closes with its process)."""
        return len(self._sessions)

    @property
    def shards_connected(self) -> list[tuple[int, int]]:
        """``(shard_id, shard_count)`` of every open, identified session, sorted."""
        return sorted((s.shard_id, s.shard_count) for s in self._sessions if s.identified)

    async def wait_for_ready(self, timeout: float = 10.0) -> None:
        """Until the bot identified and got READY and its guilds (the first session, with several shards)."""
        await asyncio.wait_for(self._ready.wait(), timeout)

    async def wait_for_shards(self, shard_count: int, timeout: float = 30.0) -> None:
        """Until every shard of ``shard_count`` has an open, identified session (over any number of processes)."""
        wanted = [(n, shard_count) for n in range(shard_count)]
        await self.wait_for(lambda: sorted(set(self.shards_connected)) == wanted, timeout)

    async def wait_for_commands(self, timeout: float = 10.0) -> None:
        """Until the bot synced its commands (to a guild or globally)."""
        await asyncio.wait_for(self._synced_event.wait(), timeout)

    def commands(self, guild_id: int | None = None) -> list[dict[str, Any]]:
        """The commands synced to ``guild_id`` (None = global)."""
        return self.synced.get(guild_id, [])

    # ── gateway ──────────────────────────────────────────────────────────────

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=None, max_msg_size=0)
        await ws.prepare(request)
        session = GatewaySession(ws, next(self._session_numbers))
        self._sessions.append(session)
        self._notify()
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None}))
        try:
            async for message in ws:
                payload = json.loads(message.data)
                op = payload.get("op")
                if op == 1:
                    await ws.send_str(json.dumps({"op": 11, "d": None, "s": None, "t": None}))
                elif op == 2:
                    await self._identify(session, payload["d"])
                elif op == 6:
                    await ws.send_str(json.dumps({"op": 9, "d": False, "s": None, "t": None}))
        finally:
            with contextlib.suppress(ValueError):
                self._sessions.remove(session)
            self._notify()
        return ws

    async def _identify(self, session: GatewaySession, data: dict[str, Any]) -> None:
        ws = session.ws
        if data.get("token") != self.token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return
        if self.gateway_close_code is not None:
            self.identify_count += 1
            await ws.close(code=self.gateway_close_code, message=b"Closed by the test.")
            return
        shard = data.get("shard") or [0, 1]
        try:
            shard_id, shard_count = int(shard[0]), int(shard[1])
        except (TypeError, ValueError, IndexError):
            shard_id, shard_count = -1, 0
        if shard_count < 1 or not 0 <= shard_id < shard_count:
            await ws.close(code=4010, message=b"Invalid shard.")
            return
        guild_ids = self.guilds_on_shard(shard_id, shard_count)
        if len(guild_ids) > MAX_GUILDS_PER_SESSION:
            # Discord: a session (unsharded, or too few shards) may serve at most 2,500 guilds.
            await ws.close(code=4011, message=b"Sharding required.")
            return
        session.shard_id, session.shard_count, session.guild_ids = shard_id, shard_count, guild_ids
        session.identified_at = time.monotonic()
        ready = {
            "v": 10,
            "user": {**self.BOT.payload(), "verified": True, "mfa_enabled": False, "flags": 0},
            "guilds": [{"id": str(g), "unavailable": True} for g in guild_ids],
            "session_id": f"fake-session-{session.number}",
            "shard": [shard_id, shard_count],  # as Discord: echoes IDENTIFY's [shard_id, shard_count]
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.APPLICATION_ID), "flags": 0},
            "private_channels": [],
            "relationships": [],
        }
        await self._send(session, "READY", ready)
        for guild_id in guild_ids:
            await self._send(session, "GUILD_CREATE", self.guilds[guild_id].payload())
        session.identified = True
        self.identified.append(session)
        self.identify_count += 1
        self._ready.set()
        self._notify()

    async def _send(self, session: GatewaySession, event: str, data: dict[str, Any]) -> None:
        session.seq += 1  # sequence numbers are per session, as on Discord
        await session.ws.send_str(json.dumps({"op": 0, "t": event, "s": session.seq, "d": data}))

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a DISPATCH to the session(s) of the shard serving its guild (``data["guild_id"]``).

        Events without a guild (DMs, and interactions in DMs) go to shard 0 only, as on Discord.
        """
        guild_id = int(data["guild_id"]) if data.get("guild_id") else None
        targets = [s for s in self._sessions if s.identified and s.serves(guild_id)]
        if not targets:
            where = f"guild {guild_id}" if guild_id is not None else "DMs (shard 0)"
            raise RuntimeError(
                f"no gateway session serves {where} (connected shards: {self.shards_connected}): is the bot connected?"
            )
        for session in targets:
            await self._send(session, event, data)

    # ── playing users ────────────────────────────────────────────────────────

    def _find_command(self, name: str, guild_id: int | None) -> dict[str, Any]:
        for scope in (guild_id, None):
            for command in self.synced.get(scope, []):
                if command["name"] == name:
                    return command
        known = sorted({c["name"] for cmds in self.synced.values() for c in cmds})
        raise KeyError(f"command {name!r} was not synced (known: {known})")

    def attachment(self, filename: str, data: bytes, content_type: str) -> dict[str, Any]:
        """An attachment a user uploads, served by the fake itself; pass it as an option value.

        What it claims (``content_type``, ``size``, ``url``) is the test's to edit: a modified client
        can put anything there, and the bot must check it.
        """
        attachment_id = snowflake()
        key = str(attachment_id)
        self.uploads[key] = StoredFile(filename, data, content_type)
        url = f"{self.base_url}/attachments/{key}/{filename}"
        return {
            "id": key,
            "filename": filename,
            "size": len(data),
            "url": url,
            "proxy_url": url,
            "content_type": content_type,
        }

    def _options(self, schema: list[dict[str, Any]], values: dict[str, Any], resolved: dict[str, Any]) -> list[dict]:
        options = []
        by_name = {option["name"]: option for option in schema}
        for name, value in values.items():
            option = by_name.get(name) or by_name.get(name.replace("_", "-"))
            if option is None:
                raise KeyError(f"option {name!r} is not in the synced schema ({sorted(by_name)})")
            kind = option["type"]
            if kind == 11:
                resolved.setdefault("attachments", {})[value["id"]] = value
                value = value["id"]
            elif kind == 4:
                value = int(value)
            elif kind == 10:
                value = float(value)
            elif kind == 5:
                value = bool(value)
            elif kind in (6, 7, 8):
                value = self._resolve(kind, value.id if isinstance(value, User) else int(value), resolved)
            else:
                value = str(value)
            options.append({"name": option["name"], "type": kind, "value": value})
        missing = [o["name"] for o in schema if o.get("required") and o["name"] not in {p["name"] for p in options}]
        if missing:
            raise KeyError(f"required options missing: {missing}")
        return options

    def _resolve(self, kind: int, object_id: int, resolved: dict[str, Any]) -> str:
        """Fill ``resolved`` for a user (6), channel (7) or role (8) option, as Discord does."""
        key = str(object_id)
        if kind == 6:
            for guild in self.guilds.values():
                if object_id in guild.members:
                    user, _roles = guild.members[object_id]
                    resolved.setdefault("users", {})[key] = user.payload()
                    member = guild.member_payload(object_id, with_permissions=True)
                    member.pop("user")
                    resolved.setdefault("members", {})[key] = member
                    break
        elif kind == 7:
            channel = self.channels[object_id]
            resolved.setdefault("channels", {})[key] = {**channel.payload(), "permissions": str(BASIC)}
        else:
            role = next(r for g in self.guilds.values() for r in g.roles if r.id == object_id)
            resolved.setdefault("roles", {})[key] = role.payload()
        return key

    def _base_interaction(self, kind: int, user: User, channel_id: int, data: dict[str, Any]) -> InteractionHandle:
        channel = self.channels[channel_id]
        guild = self.guilds.get(channel.guild_id or 0)
        interaction_id = snowflake()
        token = f"itoken-{interaction_id}"
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(self.APPLICATION_ID),
            "type": kind,
            "data": data,
            "channel_id": str(channel_id),
            "channel": channel.payload(),
            "token": token,
            "version": 1,
            "locale": "en-US",
            "entitlements": [],
            "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
            "authorizing_integration_owners": {"0": str(guild.id)} if guild else {"1": str(user.id)},
            "context": 0 if guild else 1,
        }
        if guild is not None:
            payload["guild_id"] = str(guild.id)
            payload["guild_locale"] = "en-US"
            payload["member"] = guild.member_payload(user.id, with_permissions=True)
            payload["app_permissions"] = str(BASIC)
        else:
            payload["user"] = user.payload()
            payload["app_permissions"] = str(BASIC)
        handle = InteractionHandle(interaction_id, token, kind, channel_id, user, payload)
        self.interactions[token] = handle
        return handle

    async def invoke(self, command: str, *, user: User | None = None, channel_id: int | None = None,
                     **options: Any) -> InteractionHandle:  # fmt: skip
        """Run a slash command as ``user`` in ``channel_id`` ("group sub" names subcommands)."""
        user = user or self.MEMBER
        channel_id = channel_id or self.CHANNEL_ID
        guild_id = self.channels[channel_id].guild_id
        parts = command.split()
        schema = self._find_command(parts[0], guild_id)
        resolved: dict[str, Any] = {}
        data: dict[str, Any] = {"id": schema["id"], "name": schema["name"], "type": 1}
        if len(parts) == 1:
            data["options"] = self._options(schema.get("options", []), options, resolved)
        else:
            sub = next(o for o in schema.get("options", []) if o["name"] == parts[1])
            if len(parts) == 3:
                leaf = next(o for o in sub.get("options", []) if o["name"] == parts[2])
                inner = {"name": leaf["name"], "type": 1,
                         "options": self._options(leaf.get("options", []), options, resolved)}  # fmt: skip
                data["options"] = [{"name": sub["name"], "type": 2, "options": [inner]}]
            else:
                data["options"] = [
                    {
                        "name": sub["name"],
                        "type": 1,
                        "options": self._options(sub.get("options", []), options, resolved),
                    }
                ]
        if guild_id is not None and schema.get("guild_id"):
            data["guild_id"] = str(guild_id)
        if resolved:
            data["resolved"] = resolved
        handle = self._base_interaction(2, user, channel_id, data)
        await self.dispatch("INTERACTION_CREATE", handle.payload)
        return handle

    async def autocomplete(self, command: str, *, focused: str, user: User | None = None,
                           channel_id: int | None = None, **options: Any) -> list[dict[str, Any]]:  # fmt: skip
        """Ask the bot for autocomplete choices of option ``focused`` while the user types."""
        user = user or self.MEMBER
        channel_id = channel_id or self.CHANNEL_ID
        schema = self._find_command(command, self.channels[channel_id].guild_id)
        by_name = {o["name"]: o for o in schema.get("options", [])}
        values = []
        for name, value in options.items():
            entry = {"name": name, "type": by_name[name]["type"], "value": value}
            if name == focused:
                entry["focused"] = True
            values.append(entry)
        data = {"id": schema["id"], "name": schema["name"], "type": 1, "options": values}
        handle = self._base_interaction(4, user, channel_id, data)
        await self.dispatch("INTERACTION_CREATE", handle.payload)
        await self.wait_for(lambda: handle.choices is not None)
        return handle.choices or []

    async def invoke_message_command(self, name: str, message: MessageRecord, *,
                                     user: User | None = None) -> InteractionHandle:  # fmt: skip
        """Run a message context-menu command (Apps ▸ ``name``) on ``message``, as Discord sends it."""
        user = user or self.MEMBER
        schema = self._find_command(name, self.channels[message.channel_id].guild_id)
        target = copy.deepcopy(message.current)
        data: dict[str, Any] = {
            "id": schema["id"], "name": schema["name"], "type": 3, "target_id": str(message.id),
            "resolved": {"messages": {str(message.id): target}},
        }  # fmt: skip
        handle = self._base_interaction(2, user, message.channel_id, data)
        await self.dispatch("INTERACTION_CREATE", handle.payload)
        return handle

    async def click(self, message: MessageRecord, custom_id: str, *, user: User | None = None) -> InteractionHandle:
        """Press a button on a message."""
        user = user or self.MEMBER
        data = {"custom_id": custom_id, "component_type": 2}
        handle = self._base_interaction(3, user, message.channel_id, data)
        handle.payload["message"] = copy.deepcopy(message.current)
        handle.message_id = message.id
        await self.dispatch("INTERACTION_CREATE", handle.payload)
        return handle

    async def select(self, message: MessageRecord, custom_id: str, values: list[str], *,
                     user: User | None = None) -> InteractionHandle:  # fmt: skip
        """Pick ``values`` in a message's string select menu (component type 3)."""
        user = user or self.MEMBER
        data = {"custom_id": custom_id, "component_type": 3, "values": values}
        handle = self._base_interaction(3, user, message.channel_id, data)
        handle.payload["message"] = copy.deepcopy(message.current)
        handle.message_id = message.id
        await self.dispatch("INTERACTION_CREATE", handle.payload)
        return handle

    async def submit_modal(self, custom_id: str, values: dict[str, str], *, user: User | None = None,
                           channel_id: int | None = None) -> InteractionHandle:  # fmt: skip
        """Submit a modal the bot opened (text inputs by custom_id)."""
        user = user or self.MEMBER
        rows = [{"type": 1, "components": [{"type": 4, "custom_id": k, "value": v}]} for k, v in values.items()]
        data = {"custom_id": custom_id, "components": rows}
        handle = self._base_interaction(5, user, channel_id or self.CHANNEL_ID, data)
        await self.dispatch("INTERACTION_CREATE", handle.payload)
        return handle

    async def send_user_message(self, channel_id: int, user: User, content: str, *, reply_to: int | None = None,
                                embeds: list[dict[str, Any]] | None = None) -> MessageRecord:  # fmt: skip
        """A member posts a message (dispatched as MESSAGE_CREATE), optionally replying to another.

        ``embeds`` are stored as given: a test decides whether an embed image has a ``proxy_url``
        (Discord adds one when its media proxy fetched the image) and where it points.
        """
        channel = self.channels[channel_id]
        data: dict[str, Any] = {"content": content}
        if embeds is not None:
            data["embeds"] = embeds
        if reply_to is not None:
            data["message_reference"] = {"message_id": str(reply_to), "channel_id": str(channel_id)}
        record = self._create_message(channel_id, data, [], author=user)
        payload = copy.deepcopy(record.current)
        if f"<@{self.BOT.id}>" in content:  # a mention of the bot, as Discord resolves it
            payload["mentions"] = [self.BOT.payload()]
        if channel.guild_id is not None:
            guild = self.guilds[channel.guild_id]
            payload["member"] = {k: v for k, v in guild.member_payload(user.id).items() if k != "user"}
        if reply_to is not None and reply_to in self.messages_by_id:
            payload["referenced_message"] = copy.deepcopy(self.messages_by_id[reply_to].current)
        await self.dispatch("MESSAGE_CREATE", payload)
        return record

    # ── what the users saw ───────────────────────────────────────────────────

    def messages(self, channel_id: int | None = None, *, include_ephemeral: bool = True) -> list[MessageRecord]:
        """Messages in a channel (all channels when None), in creation order."""
        return [
            m
            for m in self.messages_by_id.values()
            if (channel_id is None or m.channel_id == channel_id) and (include_ephemeral or not m.ephemeral)
        ]

    def message(self, message_id: int) -> MessageRecord:
        """One message by id."""
        return self.messages_by_id[message_id]

    def original(self, handle: InteractionHandle) -> MessageRecord | None:
        """The interaction's original response message."""
        return self.messages_by_id.get(handle.original_id) if handle.original_id else None

    async def response(self, handle: InteractionHandle, timeout: float = 10.0) -> MessageRecord:
        """Wait until the interaction has a visible (non-loading) response; returns that message."""

        def done() -> MessageRecord | None:
            original = self.original(handle)
            if original is not None and not original.loading and original.versions:
                return original
            return None

        return await self.wait_for(done, timeout)

    def calls_to(self, method: str, route: str) -> list[Call]:
        """Recorded calls with this method and route template."""
        return [c for c in self.calls if c.method == method and c.route == route]

    def unknown_routes(self) -> list[Call]:
        """Calls the fake did not recognise (a test can assert there were none)."""
        return [c for c in self.calls if c.route == "?"]

    # ── faults ───────────────────────────────────────────────────────────────

    def inject(self, pattern: str, status: int, *, count: int = 1, body: dict[str, Any] | None = None,
               retry_after: float = 0.2) -> Fault:  # fmt: skip
        """Answer the next ``count`` calls matching ``pattern`` (regex on "METHOD route") with ``status``."""
        fault = Fault(pattern, status, count, body, retry_after)
        self.faults.append(fault)
        return fault

    def _fault_for(self, method: str, route: str) -> web.Response | None:
        for fault in self.faults:
            if fault.count > 0 and re.search(fault.pattern, f"{method} {route}"):
                fault.count -= 1
                if fault.status == 429:
                    return self._too_many(fault.retry_after, {}, "fault")
                body = fault.body or {"message": f"injected {fault.status}", "code": 0}
                return _json(body, fault.status)
        return None

    def _too_many(self, retry_after: float, headers: dict[str, str], bucket: str) -> web.Response:
        headers = {**headers, "Via": "1.1 google", "Retry-After": f"{max(retry_after, 0.001):.3f}"}
        headers.setdefault("X-RateLimit-Bucket", bucket)
        headers.setdefault("X-RateLimit-Scope", "user")
        body = {"message": "You are being rate limited.", "retry_after": round(max(retry_after, 0.001), 3),
                "global": False}  # fmt: skip
        return _json(body, 429, headers)

    # ── REST ─────────────────────────────────────────────────────────────────

    _ROUTES: tuple[tuple[str, str, str], ...] = (
        ("GET", r"/users/@me", "/users/@me"),
        ("GET", r"/oauth2/applications/@me", "/oauth2/applications/@me"),
        ("GET", r"/gateway/bot", "/gateway/bot"),
        ("GET", r"/gateway", "/gateway"),
        ("PUT", r"/applications/(?P<app>\d+)/commands", "/applications/{app}/commands"),
        ("GET", r"/applications/(?P<app>\d+)/commands", "/applications/{app}/commands"),
        ("PUT", r"/applications/(?P<app>\d+)/guilds/(?P<guild>\d+)/commands",
         "/applications/{app}/guilds/{guild}/commands"),
        ("GET", r"/applications/(?P<app>\d+)/guilds/(?P<guild>\d+)/commands",
         "/applications/{app}/guilds/{guild}/commands"),
        ("POST", r"/interactions/(?P<id>\d+)/(?P<token>[^/]+)/callback", "/interactions/{id}/{token}/callback"),
        ("GET", r"/webhooks/(?P<app>\d+)/(?P<token>[^/]+)/messages/@original",
         "/webhooks/{app}/{token}/messages/@original"),
        ("PATCH", r"/webhooks/(?P<app>\d+)/(?P<token>[^/]+)/messages/@original",
         "/webhooks/{app}/{token}/messages/@original"),
        ("DELETE", r"/webhooks/(?P<app>\d+)/(?P<token>[^/]+)/messages/@original",
         "/webhooks/{app}/{token}/messages/@original"),
        ("PATCH", r"/webhooks/(?P<app>\d+)/(?P<token>[^/]+)/messages/(?P<message>\d+)",
         "/webhooks/{app}/{token}/messages/{message_id}"),
        ("DELETE", r"/webhooks/(?P<app>\d+)/(?P<token>[^/]+)/messages/(?P<message>\d+)",
         "/webhooks/{app}/{token}/messages/{message_id}"),
        ("GET", r"/webhooks/(?P<app>\d+)/(?P<token>[^/]+)/messages/(?P<message>\d+)",
         "/webhooks/{app}/{token}/messages/{message_id}"),
        ("POST", r"/webhooks/(?P<app>\d+)/(?P<token>[^/]+)", "/webhooks/{app}/{token}"),
        ("POST", r"/channels/(?P<channel>\d+)/messages", "/channels/{channel_id}/messages"),
        ("GET", r"/channels/(?P<channel>\d+)/messages/(?P<message>\d+)",
         "/channels/{channel_id}/messages/{message_id}"),
        ("PATCH", r"/channels/(?P<channel>\d+)/messages/(?P<message>\d+)",
         "/channels/{channel_id}/messages/{message_id}"),
        ("DELETE", r"/channels/(?P<channel>\d+)/messages/(?P<message>\d+)",
         "/channels/{channel_id}/messages/{message_id}"),
        ("GET", r"/channels/(?P<channel>\d+)", "/channels/{channel_id}"),
        ("POST", r"/users/@me/channels", "/users/@me/channels"),
        ("GET", r"/guilds/(?P<guild>\d+)", "/guilds/{guild_id}"),
    )  # fmt: skip

    async def _read_body(self, request: web.Request) -> tuple[Any, list[StoredFile]]:
        if not request.can_read_body:
            return None, []
        if request.content_type.startswith("multipart/"):
            payload: Any = None
            files: list[StoredFile] = []
            reader = await request.multipart()
            async for part in reader:
                if part.name == "payload_json":
                    payload = json.loads(await part.text())  # type: ignore[union-attr]
                else:
                    data = await part.read()  # type: ignore[union-attr]
                    content_type = part.headers.get("Content-Type", "application/octet-stream")
                    files.append(StoredFile(part.filename or "file", bytes(data), content_type))  # type: ignore[union-attr]
            return payload, files
        raw = await request.read()
        return (json.loads(raw) if raw else None), []

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        method = request.method
        body, files = await self._read_body(request)
        match: re.Match[str] | None = None
        route = "?"
        for route_method, pattern, template in self._ROUTES:
            if route_method == method and (match := re.fullmatch(pattern, path)):
                route = template
                break
        call = Call(method, route, path, copy.deepcopy(body), files, time.monotonic())
        self.calls.append(call)
        response = await self._answer(request, call, match, body, files)
        call.status = response.status
        if response.status == 429:
            self.rate_limited.append(call)
        self._notify()
        return response

    async def _answer(self, request: web.Request, call: Call, match: re.Match[str] | None, body: Any,
                      files: list[StoredFile]) -> web.Response:  # fmt: skip
        if match is None:
            return _error(404, "Unknown route")
        groups = match.groupdict()
        webhook_route = call.route.startswith(("/webhooks", "/interactions"))
        if not webhook_route and request.headers.get("Authorization") != f"Bot {self.token}":
            return _error(401, "401: Unauthorized")
        fault = self._fault_for(call.method, call.route)
        if fault is not None:
            return fault
        handler = getattr(self, "_r_" + re.sub(r"\W+", "_", f"{call.method} {call.route}").strip("_").lower())
        return await handler(groups, body, files)

    # login and commands

    async def _r_get_users_me(self, groups: dict, body: Any, files: list) -> web.Response:
        return _json({**self.BOT.payload(), "verified": True, "mfa_enabled": False, "flags": 0})

    async def _r_get_oauth2_applications_me(self, groups: dict, body: Any, files: list) -> web.Response:
        return _json({
            "id": str(self.APPLICATION_ID), "name": "Hypereal", "icon": None, "description": "",
            "bot_public": True, "bot_require_code_grant": False, "verify_key": "0" * 64, "flags": 0,
            "owner": self.ADMIN.payload(), "team": None, "summary": "",
        })  # fmt: skip

    async def _r_get_gateway_bot(self, groups: dict, body: Any, files: list) -> web.Response:
        return _json({"url": self.gateway_url, "shards": self.recommended_shards(),
                      "session_start_limit": {"total": 1000, "remaining": max(0, 1000 - self.identify_count),
                                              "reset_after": 86_400_000 if self.identify_count else 0,
                                              "max_concurrency": self.max_concurrency}})  # fmt: skip

    async def _r_get_gateway(self, groups: dict, body: Any, files: list) -> web.Response:
        return _json({"url": self.gateway_url})

    def _store_commands(self, scope: int | None, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        stored = []
        for command in commands:
            entry = {"description": "", **command, "id": str(snowflake()),
                     "application_id": str(self.APPLICATION_ID), "version": "1"}  # fmt: skip
            if scope is not None:
                entry["guild_id"] = str(scope)
            stored.append(entry)
        self.synced[scope] = stored
        self._synced_event.set()
        return stored

    async def _r_put_applications_app_commands(self, groups: dict, body: Any, files: list) -> web.Response:
        return _json(self._store_commands(None, body))

    async def _r_get_applications_app_commands(self, groups: dict, body: Any, files: list) -> web.Response:
        return _json(self.synced.get(None, []))

    async def _r_put_applications_app_guilds_guild_commands(self, groups: dict, body: Any,
                                                            files: list) -> web.Response:  # fmt: skip
        return _json(self._store_commands(int(groups["guild"]), body))

    async def _r_get_applications_app_guilds_guild_commands(self, groups: dict, body: Any,
                                                            files: list) -> web.Response:  # fmt: skip
        return _json(self.synced.get(int(groups["guild"]), []))

    # messages

    def _create_message(self, channel_id: int, data: dict[str, Any], files: list[StoredFile], *,
                        author: User | None = None, ephemeral: bool = False, loading: bool = False,
                        webhook: bool = False) -> MessageRecord:  # fmt: skip
        message_id = snowflake()
        record = MessageRecord(message_id, channel_id, ephemeral=ephemeral, loading=loading)
        self.messages_by_id[message_id] = record
        self._apply(record, data, files, author=author or self.BOT, new=True, webhook=webhook)
        return record

    def _apply(self, record: MessageRecord, data: dict[str, Any] | None, files: list[StoredFile], *,
               author: User | None = None, new: bool = False, webhook: bool = False) -> None:  # fmt: skip
        data = data or {}
        previous = record.versions[-1] if record.versions else None
        channel = self.channels.get(record.channel_id)
        message: dict[str, Any] = copy.deepcopy(previous) if previous else {
            "id": str(record.id),
            "channel_id": str(record.channel_id),
            "author": (author or self.BOT).payload(),
            "content": "",
            "timestamp": iso_now(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "components": [],
            "pinned": False,
            "type": 0,
            "flags": 0,
        }  # fmt: skip
        if new and channel is not None and channel.guild_id is not None:
            message["guild_id"] = str(channel.guild_id)
        if new and webhook:
            message["webhook_id"] = str(self.APPLICATION_ID)
        if not new:
            message["edited_timestamp"] = iso_now()
        for key in ("content", "embeds", "components", "allowed_mentions", "nonce", "message_reference"):
            if key in data:
                message[key] = data[key]
        if data.get("message_reference"):
            message["type"] = 19
        flags = data.get("flags")
        if flags is not None:
            message["flags"] = int(flags) & ~(1 << 7) | (int(message.get("flags", 0)) & (1 << 6))
        if record.ephemeral:
            message["flags"] = int(message.get("flags", 0)) | (1 << 6)
        current_files = list(record.latest_files)
        if "attachments" in data or files:
            kept_ids = {str(a.get("id")) for a in data.get("attachments", []) if "id" in a}
            kept = [a for a in message.get("attachments", []) if str(a.get("id")) in kept_ids and not files]
            current_files = [f for f in current_files if f.filename in {a["filename"] for a in kept}]
            attachments = list(kept)
            for index, stored in enumerate(files):
                key = f"{record.id}-{len(record.versions)}-{index}"
                self.uploads[key] = stored
                url = f"{self.base_url}/attachments/{key}/{stored.filename}"
                attachments.append({
                    "id": str(snowflake()), "filename": stored.filename, "size": len(stored.data),
                    "url": url, "proxy_url": url, "content_type": stored.content_type,
                })  # fmt: skip
            described = {str(a.get("id")): a for a in data.get("attachments", []) if "id" in a}
            for index, attachment in enumerate(attachments[len(kept) :]):
                # Voice messages describe their upload (by its index) with duration_secs and a waveform.
                for key in ("duration_secs", "waveform"):
                    if key in described.get(str(index), {}):
                        attachment[key] = described[str(index)][key]
            message["attachments"] = attachments
            current_files = current_files + files if kept else list(files)
        record.loading = False if not new else record.loading
        if record.loading:
            message["flags"] = int(message.get("flags", 0)) | (1 << 7)
        else:
            message["flags"] = int(message.get("flags", 0)) & ~(1 << 7)
        record.snapshot(message, current_files)

    def _limited(self, bucket: str) -> tuple[web.Response | None, dict[str, str]]:
        if not self.ratelimits:
            return None, {}
        allowed, headers, retry = self.limiter.check(bucket)
        if not allowed:
            return self._too_many(retry, headers, bucket), {}
        return None, headers

    async def _r_post_channels_channel_id_messages(self, groups: dict, body: Any, files: list) -> web.Response:
        channel_id = int(groups["channel"])
        if channel_id not in self.channels:
            return _error(404, "Unknown Channel", 10003)
        limited, headers = self._limited(f"send-{channel_id}")
        if limited is not None:
            return limited
        body = body or {}
        if int(body.get("flags") or 0) & VOICE_MESSAGE:
            if channel_id in self.voice_messages_denied:
                return _error(403, "Missing Permissions", 50013)
            if body.get("content") or body.get("embeds") or len(files) != 1:
                return _error(400, "Voice messages need exactly one audio file and no text", 50161)
        nonce = body.get("nonce")
        if nonce is not None and body.get("enforce_nonce"):
            existing = self._nonces.get((channel_id, str(nonce)))
            if existing is not None:
                return _json(self.messages_by_id[existing].current, headers=headers)
        record = self._create_message(channel_id, body, files)
        if nonce is not None:
            self._nonces[(channel_id, str(nonce))] = record.id
        return _json(record.current, headers=headers)

    async def _r_get_channels_channel_id_messages_message_id(self, groups: dict, body: Any,
                                                             files: list) -> web.Response:  # fmt: skip
        record = self.messages_by_id.get(int(groups["message"]))
        if record is None or record.deleted:
            return _error(404, "Unknown Message", 10008)
        return _json(record.current)

    async def _r_patch_channels_channel_id_messages_message_id(self, groups: dict, body: Any,
                                                               files: list) -> web.Response:  # fmt: skip
        record = self.messages_by_id.get(int(groups["message"]))
        if record is None or record.deleted:
            return _error(404, "Unknown Message", 10008)
        limited, headers = self._limited(f"edit-{record.channel_id}")
        if limited is not None:
            return limited
        self._apply(record, body, files)
        return _json(record.current, headers=headers)

    async def _r_delete_channels_channel_id_messages_message_id(self, groups: dict, body: Any,
                                                                files: list) -> web.Response:  # fmt: skip
        record = self.messages_by_id.get(int(groups["message"]))
        if record is None or record.deleted:
            return _error(404, "Unknown Message", 10008)
        record.deleted = True
        return web.Response(status=204)

    async def _r_get_channels_channel_id(self, groups: dict, body: Any, files: list) -> web.Response:
        channel = self.channels.get(int(groups["channel"]))
        if channel is None:
            return _error(404, "Unknown Channel", 10003)
        return _json(channel.payload())

    async def _r_post_users_me_channels(self, groups: dict, body: Any, files: list) -> web.Response:
        recipient_id = int(body["recipient_id"])
        user = next((u for g in self.guilds.values() for u, _ in g.members.values() if u.id == recipient_id), None)
        if user is None:
            return _error(400, "Invalid Recipient", 50033)
        channel_id = recipient_id + 7  # a stable DM channel id per user
        channel = Channel(channel_id, f"dm-{user.name}", type=1, recipient=user)
        self.channels[channel_id] = channel
        return _json(channel.payload())

    async def _r_get_guilds_guild_id(self, groups: dict, body: Any, files: list) -> web.Response:
        guild = self.guilds.get(int(groups["guild"]))
        if guild is None:
            return _error(404, "Unknown Guild", 10004)
        return _json({**guild.payload(), "approximate_member_count": len(guild.members)})

    # interactions

    def _handle(self, token: str) -> InteractionHandle | None:
        handle = self.interactions.get(token)
        return None if handle is None or handle.token_deleted else handle

    async def _r_post_interactions_id_token_callback(self, groups: dict, body: Any, files: list) -> web.Response:
        handle = self._handle(groups["token"])
        if handle is None:
            return _error(404, "Unknown interaction", 10062)
        if handle.callbacks and body.get("type") != 8:
            return _error(400, "Interaction has already been acknowledged.", 40060)
        handle.callbacks.append(copy.deepcopy(body))
        kind = body["type"]
        data = body.get("data") or {}
        ephemeral = bool(int(data.get("flags", 0) or 0) & (1 << 6))
        resource: dict[str, Any] | None = None
        if kind == 4:
            record = self._create_message(handle.channel_id, data, files, ephemeral=ephemeral, webhook=True)
            handle.original_id = record.id
            resource = {"type": 4, "message": record.current}
        elif kind == 5:
            record = self._create_message(handle.channel_id, {}, [], ephemeral=ephemeral, loading=True, webhook=True)
            handle.original_id = record.id
            resource = {"type": 5, "message": record.current}
        elif kind in (6, 7) and handle.message_id is not None:
            handle.original_id = handle.message_id  # edits of @original now target the clicked message
            record = self.messages_by_id[handle.message_id]
            if kind == 6:
                handle.changed.set()
                return _json({"interaction": {"id": str(handle.id), "type": handle.type}})
            limited, _headers = self._limited(f"edit-{record.channel_id}")
            if limited is not None:
                handle.callbacks.pop()
                return limited
            self._apply(record, data, files)
            resource = {"type": 7, "message": record.current}
        elif kind == 7:
            return _error(400, "Update message needs a component interaction", 50035)
        elif kind == 8:
            handle.choices = data.get("choices", [])
        elif kind == 9:
            handle.modal = data
        handle.changed.set()
        answer: dict[str, Any] = {
            "interaction": {
                "id": str(handle.id),
                "type": handle.type,
                "response_message_id": str(handle.original_id) if handle.original_id else None,
                "response_message_loading": kind == 5,
                "response_message_ephemeral": ephemeral,
            }
        }
        if resource is not None:
            answer["resource"] = resource
        return _json(answer)

    def _webhook_message(self, groups: dict) -> tuple[InteractionHandle | None, MessageRecord | None]:
        handle = self._handle(groups["token"])
        if handle is None:
            return None, None
        message_id = handle.original_id if "message" not in groups else int(groups["message"])
        return handle, self.messages_by_id.get(message_id) if message_id else None

    async def _r_get_webhooks_app_token_messages_original(self, groups: dict, body: Any,
                                                          files: list) -> web.Response:  # fmt: skip
        handle, record = self._webhook_message(groups)
        if handle is None:
            return _error(404, "Unknown Webhook", 10015)
        if record is None:
            return _error(404, "Unknown Message", 10008)
        return _json(record.current)

    async def _edit_via_webhook(self, groups: dict, body: Any, files: list) -> web.Response:
        handle, record = self._webhook_message(groups)
        if handle is None:
            return _error(404, "Unknown Webhook", 10015)
        if record is None or record.deleted:
            return _error(404, "Unknown Message", 10008)
        limited, headers = self._limited(f"edit-{record.channel_id}")
        if limited is not None:
            return limited
        self._apply(record, body, files)
        handle.changed.set()
        return _json(record.current, headers=headers)

    async def _r_patch_webhooks_app_token_messages_original(self, groups: dict, body: Any,
                                                            files: list) -> web.Response:  # fmt: skip
        return await self._edit_via_webhook(groups, body, files)

    async def _r_patch_webhooks_app_token_messages_message_id(self, groups: dict, body: Any,
                                                              files: list) -> web.Response:  # fmt: skip
        return await self._edit_via_webhook(groups, body, files)

    async def _r_get_webhooks_app_token_messages_message_id(self, groups: dict, body: Any,
                                                            files: list) -> web.Response:  # fmt: skip
        return await self._r_get_webhooks_app_token_messages_original(groups, body, files)

    async def _delete_via_webhook(self, groups: dict) -> web.Response:
        handle, record = self._webhook_message(groups)
        if handle is None:
            return _error(404, "Unknown Webhook", 10015)
        if record is None or record.deleted:
            return _error(404, "Unknown Message", 10008)
        record.deleted = True
        return web.Response(status=204)

    async def _r_delete_webhooks_app_token_messages_original(self, groups: dict, body: Any,
                                                             files: list) -> web.Response:  # fmt: skip
        return await self._delete_via_webhook(groups)

    async def _r_delete_webhooks_app_token_messages_message_id(self, groups: dict, body: Any,
                                                               files: list) -> web.Response:  # fmt: skip
        return await self._delete_via_webhook(groups)

    async def _r_post_webhooks_app_token(self, groups: dict, body: Any, files: list) -> web.Response:
        handle = self._handle(groups["token"])
        if handle is None:
            return _error(404, "Unknown Webhook", 10015)
        body = body or {}
        original = self.messages_by_id.get(handle.original_id) if handle.original_id else None
        if original is not None and original.loading and not original.deleted:
            # The first followup after a defer replaces the loading message (as Discord does).
            limited, headers = self._limited(f"edit-{original.channel_id}")
            if limited is not None:
                return limited
            self._apply(original, body, files)
            handle.changed.set()
            return _json(original.current, headers=headers)
        limited, headers = self._limited(f"send-{handle.channel_id}")
        if limited is not None:
            return limited
        ephemeral = bool(int(body.get("flags", 0) or 0) & (1 << 6))
        record = self._create_message(handle.channel_id, body, files, ephemeral=ephemeral, webhook=True)
        handle.followup_ids.append(record.id)
        handle.changed.set()
        return _json(record.current, headers=headers)

    async def _attachment(self, request: web.Request) -> web.Response:
        stored = self.uploads.get(request.match_info["key"])
        if stored is None:
            return web.Response(status=404)
        return web.Response(body=stored.data, content_type=stored.content_type.split(";")[0])

    def expire_token(self, handle: InteractionHandle) -> None:
        """Make the interaction's token unusable (as after 15 minutes or a deleted interaction)."""
        handle.token_deleted = True

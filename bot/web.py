"""The bot's aiohttp web server: /healthz, Hypereal's webhooks and /metrics, hardened against slow clients.

Built by an app factory and served by ``AppRunner`` inside the bot's own event loop, so handlers
share the bot's database and services. Handlers answer fast and hand work to services.

Slow or hostile clients are bounded three ways: a connection must deliver a complete request head
within ``HEADER_TIMEOUT_SECONDS`` of opening (or of its previous response), request bodies are read
under a deadline by the handlers that read them, and at most ``max_connections`` connections are
open — past that the oldest connection that is not in a handler is closed to make room, and when
every one is busy the newcomer gets a fast 503. Accept errors (out of file descriptors) are
logged at most once a minute, and free descriptors by shedding idle connections.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler

from bot.health import open_file_limit

log = logging.getLogger(__name__)
# aiohttp's per-connection errors go here, through a ThrottledServerLog.
server_log = logging.getLogger(f"{__name__}.http")

# A request head (line + headers) must be complete this long after the connection opens or its
# previous response ends; aiohttp's keep-alive timer enforces it (partial headers do not reset it).
HEADER_TIMEOUT_SECONDS = 10.0
# Handlers that read a body read it within this (bot.jobs.webhook).
BODY_TIMEOUT_SECONDS = 10.0
MAX_CONNECTIONS = 1024
LISTEN_BACKLOG = 128
LOG_EVERY_SECONDS = 60.0
ACCEPT_ERROR = "socket.accept() out of system resource"
REFUSAL = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


@dataclass(frozen=True)
class HealthProbe:
    """How /healthz learns the state of the process without importing Discord.

    ``database_problem`` answers None when a database write works, else the reason.
    """

    gateway_connected: Callable[[], bool]
    database_problem: Callable[[], Awaitable[str | None]]


HEALTH_KEY = web.AppKey("health", HealthProbe)

RouteInstaller = Callable[[web.Application], None]


async def healthz(request: web.Request) -> web.Response:
    """200 when the gateway is connected and a database write works, else 503; ``reasons`` says what is wrong."""
    probe = request.app[HEALTH_KEY]
    gateway = probe.gateway_connected()
    database_problem = await probe.database_problem()
    reasons = []
    if not gateway:
        reasons.append("gateway: not connected to Discord")
    if database_problem is not None:
        reasons.append(f"database: {database_problem}")
    healthy = not reasons
    return web.json_response(
        {
            "status": "ok" if healthy else "degraded",
            "gateway": gateway,
            "database": database_problem is None,
            "reasons": reasons,
        },
        status=200 if healthy else 503,
    )


def create_web_app(health: HealthProbe, *installers: RouteInstaller) -> web.Application:
    """The app factory: /healthz plus whatever routes the installers add (e.g. the webhook endpoint)."""
    app = web.Application(client_max_size=1024 * 1024)
    app[HEALTH_KEY] = health
    app.router.add_get("/healthz", healthz)
    for install in installers:
        install(app)
    return app


class LogThrottle:
    """Lets one log line through per ``interval`` and counts the ones it held back."""

    def __init__(self, interval: float = LOG_EVERY_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._last: float | None = None
        self.suppressed = 0

    def allow(self) -> int | None:
        """The number of lines held back since the last one let through, or None to stay quiet."""
        now = self._clock()
        if self._last is not None and now - self._last < self._interval:
            self.suppressed += 1
            return None
        self._last = now
        held, self.suppressed = self.suppressed, 0
        return held


class ThrottledServerLog(logging.Filter):
    """aiohttp logs each malformed request with a full traceback: one short line a minute instead.

    A client that sends broken HTTP is the client's problem; what the operator needs is to know it
    happens, not 11 MB of tracebacks. A handler's own exception keeps its traceback (a bug), but at
    the same rate.
    """

    def __init__(self, interval: float = LOG_EVERY_SECONDS) -> None:
        super().__init__()
        self._throttle = LogThrottle(interval)

    def filter(self, record: logging.LogRecord) -> bool:
        """Let one record through per interval, saying how many were held back."""
        held = self._throttle.allow()
        if held is None:
            return False
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.msg, record.args = "malformed HTTP request: %s", (str(exc.message).strip()[:200],)
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"  # the client's fault, not ours
        if held:
            record.msg = f"{record.msg} ({held} similar not logged)"
        return True


@dataclass
class _Connection:
    busy: int = 0  # requests of this connection inside a handler


class ConnectionGuard:
    """Caps open connections; makes room by closing the oldest connection that is not in a handler."""

    def __init__(self, max_connections: int) -> None:
        self.max_connections = max_connections
        self._open: OrderedDict[asyncio.BaseTransport, _Connection] = OrderedDict()  # oldest first
        self.evicted = 0
        self.refused = 0
        self._throttle = LogThrottle()

    @property
    def open(self) -> int:
        """Connections currently admitted."""
        return len(self._open)

    def protocol(self, server: Callable[[], asyncio.Protocol]) -> asyncio.Protocol:
        """A protocol for one accepted connection: aiohttp's, behind the cap."""
        return _GuardedProtocol(self, server())

    def admit(self, transport: asyncio.BaseTransport) -> bool:
        """Take ``transport`` in (closing an idle one if full), or refuse it: False."""
        if len(self._open) >= self.max_connections and not self.shed(1):
            self.refused += 1
            self._note("refused")
            return False
        self._open[transport] = _Connection()
        return True

    def shed(self, count: int) -> int:
        """Close up to ``count`` of the oldest connections not in a handler; returns how many."""
        idle = [transport for transport, state in self._open.items() if state.busy == 0][:count]
        for transport in idle:
            del self._open[transport]
            transport.abort()  # at once: a slow client gets no say in how long closing takes
        if idle:
            self.evicted += len(idle)
            self._note("closed")
        return len(idle)

    def release(self, transport: asyncio.BaseTransport) -> None:
        """The connection ended (closed by either side)."""
        self._open.pop(transport, None)

    def enter(self, transport: asyncio.BaseTransport | None) -> None:
        """A request of ``transport`` entered a handler: not to be closed for room."""
        state = self._open.get(transport) if transport is not None else None
        if state is not None:
            state.busy += 1

    def leave(self, transport: asyncio.BaseTransport | None) -> None:
        """The handler answered."""
        state = self._open.get(transport) if transport is not None else None
        if state is not None:
            state.busy -= 1

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Marks the request's connection busy while its handler runs."""
        transport = request.transport
        self.enter(transport)
        try:
            return await handler(request)
        finally:
            self.leave(transport)

    def _note(self, what: str) -> None:
        held = self._throttle.allow()
        if held is not None:
            log.warning(
                "web server at its cap of %s connections: %s a connection (closed %s, refused %s so far)",
                self.max_connections,
                what,
                self.evicted,
                self.refused,
            )


class _GuardedProtocol(asyncio.Protocol):
    """aiohttp's protocol for one connection, or a fast 503 when the guard refuses the connection."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol) -> None:
        self._guard = guard
        self._inner = inner
        self._transport: asyncio.BaseTransport | None = None
        self._admitted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._admitted = self._guard.admit(transport)
        if self._admitted:
            self._inner.connection_made(transport)
        else:
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(REFUSAL)
            transport.close()

    def data_received(self, data: bytes) -> None:
        if self._admitted:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._admitted else None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._guard.release(self._transport)
        if self._admitted:
            self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._admitted:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._admitted:
            self._inner.resume_writing()


class WebServer:
    """Starts and stops an aiohttp application on host:port inside the running loop."""

    def __init__(
        self,
        app: web.Application,
        host: str,
        port: int,
        *,
        max_connections: int | None = None,
        header_timeout: float = HEADER_TIMEOUT_SECONDS,
    ) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._max_connections = max_connections
        self._header_timeout = header_timeout
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous_handler: Any = None
        self._accept_throttle = LogThrottle()
        self._server_log_filter = ThrottledServerLog()
        self.guard: ConnectionGuard | None = None
        self.port: int | None = None

    async def start(self) -> None:
        """Bind and serve; ``port`` holds the bound port afterwards (useful with port 0)."""
        # Half the descriptors at most: the database, Discord and Hypereal need theirs too.
        cap = self._max_connections or max(16, min(MAX_CONNECTIONS, open_file_limit() // 2))
        self.guard = guard = ConnectionGuard(cap)
        self._app.middlewares.append(guard.middleware)
        server_log.addFilter(self._server_log_filter)
        self._runner = web.AppRunner(
            self._app,
            access_log=None,
            handle_signals=False,
            keepalive_timeout=self._header_timeout,
            logger=server_log,
        )
        await self._runner.setup()
        server = self._runner.server
        assert server is not None
        self._loop = loop = asyncio.get_running_loop()
        self._previous_handler = loop.get_exception_handler()
        loop.set_exception_handler(self._on_loop_error)
        self._listener = await loop.create_server(
            lambda: guard.protocol(server), self._host, self._port, backlog=LISTEN_BACKLOG
        )
        sockets = self._listener.sockets
        self.port = sockets[0].getsockname()[1] if sockets else self._port
        log.info("web server listening host=%s port=%s max_connections=%s", self._host, self.port, cap)

    def _on_loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """asyncio reports each failed accept (EMFILE…) with a traceback, many per tick: one line a minute."""
        if context.get("message") == ACCEPT_ERROR:
            if self.guard is not None:
                self.guard.shed(max(1, self.guard.open // 10))  # free descriptors for the next accept
            held = self._accept_throttle.allow()
            if held is not None:
                log.warning(
                    "web server cannot accept connections (%s); asyncio retries each second (%s similar not logged)",
                    context.get("exception"),
                    held,
                )
            return
        if self._previous_handler is not None:
            self._previous_handler(loop, context)
        else:
            loop.default_exception_handler(context)

    async def close(self) -> None:
        """Stop accepting and close open connections."""
        if self._listener is not None:
            self._listener.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._listener = None
        server_log.removeFilter(self._server_log_filter)
        if self._loop is not None and self._loop.get_exception_handler() == self._on_loop_error:
            self._loop.set_exception_handler(self._previous_handler)
            self._loop = None

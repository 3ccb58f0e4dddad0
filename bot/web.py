"""The bot's aiohttp web server: health check now, Hypereal webhooks once jobs exist.

Built by an app factory and run by ``AppRunner``/``TCPSite`` inside the bot's own event loop, so
handlers share the bot's database and services. Handlers answer fast and hand work to services.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HealthProbe:
    """How /healthz learns the state of the process without importing Discord."""

    gateway_connected: Callable[[], bool]
    database_ok: Callable[[], Awaitable[bool]]


HEALTH_KEY = web.AppKey("health", HealthProbe)

RouteInstaller = Callable[[web.Application], None]


async def healthz(request: web.Request) -> web.Response:
    """200 when the gateway is connected and the database answers, else 503; the body says which part is down."""
    probe = request.app[HEALTH_KEY]
    gateway = probe.gateway_connected()
    database = await probe.database_ok()
    healthy = gateway and database
    return web.json_response(
        {"status": "ok" if healthy else "degraded", "gateway": gateway, "database": database},
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


class WebServer:
    """Starts and stops an aiohttp application on host:port inside the running loop."""

    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self) -> None:
        """Bind and serve; ``port`` holds the bound port afterwards (useful with port 0)."""
        self._runner = web.AppRunner(self._app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        sockets = self._runner.addresses
        self.port = sockets[0][1] if sockets else self._port
        log.info("web server listening host=%s port=%s", self._host, self.port)

    async def close(self) -> None:
        """Stop accepting and close open connections."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

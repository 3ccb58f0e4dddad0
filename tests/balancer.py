"""A load balancer in front of several bot processes' web ports, as README's "Scaling out" puts one.

Round-robin over the backends; a backend that refuses the connection or drops it is skipped for the
next one (nginx's ``proxy_next_upstream error``), so a webhook for a killed process's job reaches a
live process — which accepts any job's webhook, found by its token in the shared database.
"""

from __future__ import annotations

import itertools
from types import TracebackType

import aiohttp
from aiohttp import web

from tests.conftest import free_port


class Balancer:
    """An HTTP balancer on 127.0.0.1 over ``ports``; ``url`` is what every process gets as ``PUBLIC_URL``."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.port = free_port()
        self.unanswered = 0  # requests no backend answered (502)
        self._turn = itertools.count()
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Balancer:
        app = web.Application(client_max_size=2**20)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._http is not None
        body = await request.read()
        headers = {name: value for name, value in request.headers.items() if name.lower() == "content-type"}
        first = next(self._turn)
        for offset in range(len(self.ports)):
            port = self.ports[(first + offset) % len(self.ports)]
            url = f"http://127.0.0.1:{port}{request.path_qs}"
            try:
                async with self._http.request(request.method, url, data=body, headers=headers) as answer:
                    payload = await answer.read()
                    return web.Response(status=answer.status, body=payload, content_type=answer.content_type)
            except (aiohttp.ClientError, TimeoutError):
                continue  # down or dropped the connection (killed mid-request): the next backend
        self.unanswered += 1
        return web.Response(status=502, text="no backend answered")

"""The bot's Prometheus metrics: one registry per running app (no module-level collectors), and ``GET /metrics``.

``prometheus_client``'s default registry is process-global; a registry of our own keeps two bots
in one test process apart and keeps library collectors we did not ask for out of ``/metrics``.
No label ever carries a guild, user or job id (cardinality and privacy): commands are labelled by
command name, Hypereal requests by endpoint name (never by path, which holds job ids).

``/metrics`` is off unless ``METRICS_TOKEN`` is set, and then answers only ``Authorization: Bearer
<METRICS_TOKEN>``: the web port faces the internet for Hypereal's webhooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from pydantic import SecretStr

from bot.web import RouteInstaller

log = logging.getLogger(__name__)

# Hypereal answers in milliseconds (status polls) to minutes (image generation).
HYPEREAL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
LOOP_LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)

Refresher = Callable[[], Awaitable[None]]


class Metrics:
    """Every metric the services update. Built once by the composition root and passed in."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._refreshers: list[Refresher] = []
        registry = self.registry
        self.jobs_unconfirmed_refunded = Counter(
            "jobs_unconfirmed_refunded",
            "Jobs refunded because Hypereal never confirmed their submit (the answer was lost).",
            registry=registry,
        )
        self.job_step_failures = Counter(
            "job_step_failures",
            "Job steps (poll, download, delivery) that raised unexpectedly.",
            registry=registry,
        )
        self.jobs_given_up = Counter(
            "jobs_given_up",
            "Jobs failed and refunded after repeated step failures.",
            registry=registry,
        )
        self.results_undeliverable = Counter(
            "results_undeliverable",
            "Paid results that could not be posted anywhere and were refunded.",
            ["kind"],
            registry=registry,
        )
        self.commands = Counter(
            "discord_commands",
            "Slash and menu commands run, by command and outcome (ok; refused: the member was told why; error).",
            ["command", "outcome"],
            registry=registry,
        )
        self.hypereal_requests = Counter(
            "hypereal_requests",
            "Requests to Hypereal by endpoint and HTTP status (timeout / unreachable when there was none).",
            ["endpoint", "status"],
            registry=registry,
        )
        self.hypereal_seconds = Histogram(
            "hypereal_request_duration_seconds",
            "Time from sending a Hypereal request to its status line, by endpoint.",
            ["endpoint"],
            buckets=HYPEREAL_BUCKETS,
            registry=registry,
        )
        self.jobs = Gauge(
            "jobs",
            "Async jobs (video, audio, 3D) in the database by state, counted at scrape time.",
            ["state"],
            registry=registry,
        )
        self.credits = Counter(
            "credits",
            "Credits reserved, settled (charged) and refunded, by category.",
            ["action", "category"],
            registry=registry,
        )
        self.discord_rate_limited = Counter(
            "discord_rate_limited",
            "429 answers seen from Discord's REST API (discord.py waits and retries them).",
            registry=registry,
        )
        self.gateway_latency = Gauge(
            "discord_gateway_latency_seconds",
            "Discord gateway heartbeat round trip (NaN until the first heartbeat is acknowledged).",
            registry=registry,
        )
        self.gateway_latency.set(float("nan"))
        self.event_loop_lag = Histogram(
            "event_loop_lag_seconds",
            "How late the event loop ran a timer that should have fired at once: above ~0.1 s, everything waits.",
            buckets=LOOP_LAG_BUCKETS,
            registry=registry,
        )
        self.event_loop_lag_last = Gauge(
            "event_loop_lag_last_seconds", "The latest event-loop lag sample.", registry=registry
        )

    # ── hooks the services call ──────────────────────────────────────────────

    def observe_hypereal(self, endpoint: str, status: int | str, seconds: float) -> None:
        """One Hypereal request ended (``status``: the HTTP status, or ``timeout`` / ``unreachable``)."""
        self.hypereal_requests.labels(endpoint=endpoint, status=str(status)).inc()
        self.hypereal_seconds.labels(endpoint=endpoint).observe(max(0.0, seconds))

    def count_credits(self, action: str, category: str, amount: int) -> None:
        """``amount`` credits were ``reserved``, ``settled`` (charged) or ``refunded`` in ``category``."""
        self.credits.labels(action=action, category=category).inc(max(0, amount))

    def count_command(self, command: str, outcome: str) -> None:
        """A command finished: ``ok``, ``refused`` (a clear message to the member) or ``error`` (unexpected)."""
        self.commands.labels(command=command, outcome=outcome).inc()

    def observe_loop_lag(self, seconds: float) -> None:
        """One event-loop lag sample."""
        self.event_loop_lag.observe(seconds)
        self.event_loop_lag_last.set(seconds)

    def watch_gateway_latency(self, latency: Callable[[], float]) -> None:
        """Read the gateway latency from ``latency()`` at every scrape."""
        self.gateway_latency.set_function(latency)

    def add_refresher(self, refresh: Refresher) -> None:
        """Run ``refresh()`` before every scrape (gauges read from the database, such as jobs by state)."""
        self._refreshers.append(refresh)

    async def exposition(self) -> bytes:
        """The Prometheus text format, after every refresher ran (a failing one leaves its gauges as they were)."""
        for refresh in self._refreshers:
            try:
                await refresh()
            except Exception:
                log.exception("metrics refresh failed")
        return generate_latest(self.registry)


class LoopLagMonitor:
    """An owned background task that measures how late the event loop runs a short sleep."""

    def __init__(self, metrics: Metrics, interval: float = 0.5) -> None:
        self.metrics = metrics
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start sampling (inside the running loop)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="event-loop-lag")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(self.interval)
            self.metrics.observe_loop_lag(max(0.0, loop.time() - started - self.interval))

    async def stop(self) -> None:
        """Stop sampling and wait for the task to end."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


def _authorized(request: web.Request, token: SecretStr) -> bool:
    expected = f"Bearer {token.get_secret_value()}".encode()
    given = request.headers.get("Authorization", "").encode()
    return hmac.compare_digest(given, expected)  # constant time: the header is the only secret here


def install_metrics_route(metrics: Metrics, token: SecretStr | None) -> RouteInstaller:
    """A route installer for ``create_web_app``: ``GET /metrics`` when a token is set, nothing otherwise."""

    async def serve_metrics(request: web.Request) -> web.Response:
        if not _authorized(request, token):  # type: ignore[arg-type]
            return web.Response(
                status=401,
                text="401: send Authorization: Bearer <METRICS_TOKEN>\n",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        body = await metrics.exposition()
        # Our names are plain ASCII, so the output is the classic 0.0.4 text format every Prometheus reads.
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})

    def install(app: web.Application) -> None:
        if token is None:
            return  # off: /metrics answers 404 like any unknown path
        app.router.add_get("/metrics", serve_metrics)

    return install

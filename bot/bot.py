"""The Discord client: a ``commands.Bot`` wired with the services, the error-handling tree and the web server."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.errors import ConnectionClosed
from discord.ext import commands
from discord.gateway import DiscordWebSocket
from discord.shard import Shard

from bot.errors import BotError, ConfigError
from bot.invite import invite_url
from bot.kv import KeyValueStore
from bot.startup import FATAL_GATEWAY_CLOSES, Backoff, unreachable_reason

if TYPE_CHECKING:
    from bot.metrics import Metrics
    from bot.services import Services
    from bot.web import WebServer

log = logging.getLogger(__name__)
shard_log = logging.getLogger("discord.shard")  # where discord.py logs shard retries (see bot.logs)

# Every cog is listed here and loaded fail-fast: a bot whose credits cog failed must not take paid jobs.
INITIAL_EXTENSIONS: tuple[str, ...] = (
    "cogs.meta",
    "cogs.credits",
    "cogs.admin",
    "cogs.moderation",
    "cogs.operator",
    "cogs.images",
    "cogs.chat",
    "cogs.jobs",
    "cogs.media",
    "cogs.privacy",
    "cogs.settings",
)

COMMANDS_HASH_KEY = "global_commands_hash"

# On shutdown, commands and button presses already running get this long to finish their Discord
# calls and ledger writes before the HTTP client and the database close under them.
SHUTDOWN_GRACE_SECONDS = 3.0
# discord.py names the tasks it runs handlers in; these are the ones that may hold a reservation.
HANDLER_TASK_PREFIXES = (
    "CommandTree-invoker",
    "discord-ui-view-dispatch-",
    "discord-ui-dynamic-item-",
    "discord.py: on_message",
)


# Discord lets a bot start at most ``max_concurrency`` sessions per this many seconds: shards whose
# ``shard_id % max_concurrency`` match share one slot of the window.
IDENTIFY_WINDOW_SECONDS = 5.0


# Login failures that mean "Discord cannot be reached right now" (DNS, refused, TLS, timeout, a 5xx outage):
# the bot waits and tries again instead of exiting, because a container restart loop helps nobody.
DISCORD_UNREACHABLE = (aiohttp.ClientError, OSError, TimeoutError, discord.DiscordServerError)


def point_discord_at(api_base: str, gateway_url: str) -> None:
    """Send REST calls to ``api_base`` and connect the gateway to ``gateway_url`` (a proxy, or the test fake).

    These two class attributes are where discord.py builds every URL from; they must be set before login.
    """
    discord.http.Route.BASE = api_base.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


def command_name(interaction: discord.Interaction[Any]) -> str:
    """The command's full name (``quota show``, a menu's label) for metrics; ``unknown`` when Discord sent another."""
    command = interaction.command
    return command.qualified_name if command is not None else "unknown"


def command_outcome(error: BaseException) -> str:
    """``refused`` when the member was told what to fix (bad input, no credits, checks), else ``error``."""
    original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
    refused = (BotError, app_commands.CheckFailure, app_commands.TransformerError)
    return "refused" if isinstance(original, refused) else "error"


def rate_limit_trace(metrics: Metrics) -> aiohttp.TraceConfig:
    """An aiohttp trace for discord.py's HTTP session that counts every 429 Discord answers (REST and CDN)."""
    trace = aiohttp.TraceConfig()

    async def on_request_end(
        session: aiohttp.ClientSession, context: object, params: aiohttp.TraceRequestEndParams
    ) -> None:
        if params.response.status == 429:
            metrics.discord_rate_limited.inc()

    trace.on_request_end.append(on_request_end)
    return trace


ErrorHandler = Callable[[discord.Interaction[Any], BaseException], Awaitable[None]]
SetupStep = Callable[[], object]


class HyperealTree(app_commands.CommandTree["HyperealBot"]):
    """The command tree, with the bot's single error handler for app commands (given by the composition root)."""

    error_handler: ErrorHandler | None = None

    async def on_error(
        self, interaction: discord.Interaction[HyperealBot], error: app_commands.AppCommandError
    ) -> None:
        """Turn errors into a clear ephemeral message; unexpected ones are logged with a reference the user sees."""
        self.client.services.metrics.count_command(command_name(interaction), command_outcome(error))
        if self.error_handler is None:
            log.error("command failed with no error handler installed", exc_info=error)
            return
        await self.error_handler(interaction, error)


class HyperealBot(commands.AutoShardedBot):
    """The gateway client. It holds the services; cogs reach them as ``bot.services``."""

    def __init__(
        self,
        services: Services,
        web: WebServer,
        *,
        on_error: ErrorHandler | None = None,
        on_setup: Sequence[SetupStep] = (),
        identify_window: float = IDENTIFY_WINDOW_SECONDS,
        **options: Any,
    ) -> None:
        settings = services.settings
        intents = discord.Intents.none()
        intents.guilds = True
        if settings.message_content_intent:
            # Only chat's "reply to continue" and mentions need message events and their content.
            intents.guild_messages = True
            intents.dm_messages = True
            intents.message_content = True
        super().__init__(
            command_prefix=commands.when_mentioned,
            help_command=None,
            intents=intents,
            tree_cls=HyperealTree,
            max_messages=None,
            member_cache_flags=discord.MemberCacheFlags.none(),
            chunk_guilds_at_startup=False,
            allowed_mentions=discord.AllowedMentions.none(),
            http_trace=rate_limit_trace(services.metrics),
            # Unset: the count Discord recommends (needed past 2,500 servers); SHARD_IDS splits them over processes.
            shard_count=settings.shard_count,
            shard_ids=settings.shard_ids,
            **options,
        )
        self.services = services
        self._shard_launches: set[asyncio.Future[None]] = set()  # see launch_shard
        # IDENTIFY pacing (see before_identify_hook): GET /gateway/bot's max_concurrency, read in launch_shards.
        self.identify_window = identify_window
        self.max_concurrency = 1
        self._identified_at: dict[int, float] = {}  # rate-limit bucket → monotonic time of its last IDENTIFY
        self._identify_locks: dict[int, asyncio.Lock] = {}
        self.web = web
        self.tree.error_handler = on_error  # type: ignore[attr-defined]
        self._on_setup = tuple(on_setup)
        self.started_at = time.monotonic()
        self._setup_started = False
        self._stopping = asyncio.Event()  # set by close(): ends a wait between login tries at once
        services.metrics.watch_gateway_latency(lambda: self.latency)

    @property
    def uptime(self) -> float:
        """Seconds since the bot was built (the process start, near enough)."""
        return time.monotonic() - self.started_at

    def invite_link(self) -> str | None:
        """The OAuth2 link that adds the bot with exactly the permissions it uses (None before login)."""
        return invite_url(self.application_id) if self.application_id else None

    async def start_when_reachable(self, token: str) -> None:
        """``Client.start`` (login, then the gateway), but a Discord that cannot be reached is waited for.

        Each failed try is one warning line naming the URL and the reason; the wait doubles up to a
        minute. A rejected token (``LoginFailure``) and anything raised once ``setup_hook`` began are
        not retried: they propagate to the entry point, which turns them into one line and an exit status.
        """
        backoff = Backoff()
        while not self.is_closed():
            try:
                await self.login(token)
                break
            except DISCORD_UNREACHABLE as exc:
                if self._setup_started:
                    raise
                delay = backoff.delay()
                log.warning(
                    "cannot reach Discord at %s (%s): retrying in %.0f s",
                    discord.http.Route.BASE,
                    unreachable_reason(exc),
                    delay,
                )
                await self._reset_http()
                await self._wait_unless_stopping(delay)
        await self._connect_when_reachable()

    async def _connect_when_reachable(self) -> None:
        """``connect()``, restarted when the very first gateway connection could not be opened.

        discord.py 2.7 retries a failed connection by resuming from ``self.ws``, which is still None when
        no connection ever opened: it raises AttributeError after its first wait. Its own retry already
        logged one line (see ``bot.logs.ReconnectNotice``); here we only wait, with a capped backoff.
        """
        backoff = Backoff()
        while not self.is_closed():
            try:
                await self.connect(reconnect=True)
                return
            except AttributeError:
                if self.ws is not None:
                    raise
                await self._wait_unless_stopping(backoff.delay())

    async def _wait_unless_stopping(self, delay: float) -> None:
        """Sleep ``delay`` seconds, or less if ``close()`` is called meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=delay)

    async def _reset_http(self) -> None:
        """Close the session a failed login opened, so the next try builds a fresh one (no unclosed sockets)."""
        await self.http.close()
        # static_login() makes a new connector only when none is set; the closed one cannot be reused.
        self.http.connector = discord.utils.MISSING

    async def on_app_command_completion(
        self, interaction: discord.Interaction[HyperealBot], command: app_commands.Command[Any, ..., Any] | Any
    ) -> None:
        """Count a command that ran to its end without raising (errors are counted by the tree's handler)."""
        self.services.metrics.count_command(command_name(interaction), "ok")

    async def setup_hook(self) -> None:
        """Wire only: load the cogs (fail-fast), start the web server, run the composition root's setup steps
        (the job poller), sync commands. Never waits on the gateway."""
        self._setup_started = True
        for extension in INITIAL_EXTENSIONS:
            await self.load_extension(extension)
        await self._start_web()
        for step in self._on_setup:
            step()
        link = self.invite_link()
        if link:
            log.info("invite link: %s", link)
        try:
            await self.sync_commands()
        except discord.HTTPException as exc:
            # The bot still works with the commands Discord already has; the next start tries again.
            log.error("could not sync slash commands status=%s code=%s: %s", exc.status, exc.code, exc.text)
        except DISCORD_UNREACHABLE as exc:
            log.error("could not sync slash commands (%s); the next start tries again", unreachable_reason(exc))

    async def _start_web(self) -> None:
        """Start the web server; a port that cannot be bound is a configuration problem, said in one line."""
        settings = self.services.settings
        try:
            await self.web.start()
        except OSError as exc:
            reason = (exc.strerror or type(exc).__name__).lower()
            raise ConfigError(
                f"The web server cannot listen on {settings.web_host}:{settings.web_port} ({reason}): stop the "
                "program using that port or set WEB_PORT (and WEB_HOST) to a free one."
            ) from None

    async def sync_commands(self) -> None:
        """Sync to the dev guild when one is set; otherwise globally, and only when the definitions changed."""
        dev_guild = self.services.settings.discord_dev_guild_id
        if dev_guild is not None:
            guild = discord.Object(id=dev_guild)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            log.info("synced commands to dev guild guild=%s count=%s", dev_guild, len(synced))
            return
        kv = KeyValueStore(self.services.db)
        digest = self.commands_hash()
        if await kv.get(COMMANDS_HASH_KEY) == digest:
            log.info("global commands unchanged, not syncing hash=%s", digest[:12])
            return
        synced = await self.tree.sync()
        await kv.set(COMMANDS_HASH_KEY, digest)
        log.info("synced global commands count=%s hash=%s", len(synced), digest[:12])

    def commands_hash(self) -> str:
        """A stable hash of every global command definition as Discord would receive it."""
        payload = sorted((command.to_dict(self.tree) for command in self.tree.get_commands()), key=lambda c: c["name"])
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def gateway_connected(self) -> bool:
        """True while every shard of this process is connected and READY has been received."""
        shards = self.shards
        return (
            bool(shards)
            and not self.is_closed()
            and self.is_ready()
            and not any(s.is_closed() for s in shards.values())
        )

    async def launch_shards(self) -> None:
        """As discord.py, but the gateway is always ``DISCORD_GATEWAY_URL`` (a proxy, or the test fake).

        With ``SHARD_COUNT`` unset discord.py asks ``GET /gateway/bot`` for the count and would also take
        Discord's gateway address from that answer; only the count is taken here. The same answer's
        ``session_start_limit.max_concurrency`` paces IDENTIFY (see :meth:`before_identify_hook`), so
        it is fetched with ``SHARD_COUNT`` set too.
        """
        if self.shard_count is None:
            self.shard_count, _url, limits = await self.http.get_bot_gateway()
            log.info("sharding as Discord recommends shards=%s", self.shard_count)
        else:
            try:
                _count, _url, limits = await self.http.get_bot_gateway()
            except (discord.HTTPException, *DISCORD_UNREACHABLE) as exc:
                # Only the IDENTIFY pace depends on it: one shard per window is always allowed.
                log.warning("could not read the session start limit (%s); identifying one shard per 5 s", exc)
                limits = {}
        self.max_concurrency = max(1, int(limits.get("max_concurrency") or 1))
        if len(self.shard_ids or range(self.shard_count)) > 1:
            log.info("identifying shards max_concurrency=%s", self.max_concurrency)
        await super().launch_shards()

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """Wait until this shard's rate-limit bucket may IDENTIFY again (instead of discord.py's 5 s each).

        Discord allows ``max_concurrency`` IDENTIFYs per 5 s, one per bucket ``shard_id % max_concurrency``
        (session_start_limit in GET /gateway/bot): with 16, sixteen shards start at once instead of one
        every 5 s. A bucket's IDENTIFYs (a launch, a later re-identify) take turns under its lock.
        """
        bucket = (shard_id or 0) % self.max_concurrency
        lock = self._identify_locks.setdefault(bucket, asyncio.Lock())
        async with lock:
            last = self._identified_at.get(bucket)
            if last is not None:
                wait = last + self.identify_window - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            self._identified_at[bucket] = time.monotonic()

    async def launch_shard(self, gateway: Any, shard_id: int, *, initial: bool = False) -> None:
        """Connect one shard, retrying every 5 s as discord.py does — with two differences.

        A close code that no retry can fix (a bad token, an invalid shard, sharding required…:
        :data:`bot.startup.FATAL_GATEWAY_CLOSES`) is raised, so start-up ends with its one-line
        explanation instead of retrying for ever; and ``close()`` cancels the retries, so SIGTERM
        during a gateway outage finishes.
        """
        attempt = asyncio.ensure_future(self._connect_shard(gateway, shard_id, initial=initial))
        self._shard_launches.add(attempt)
        try:
            await attempt
        except asyncio.CancelledError:
            if not self.is_closed():
                raise
        finally:
            self._shard_launches.discard(attempt)

    async def _connect_shard(self, gateway: Any, shard_id: int, *, initial: bool) -> None:
        while True:
            try:
                ws = await asyncio.wait_for(
                    DiscordWebSocket.from_client(self, initial=initial, gateway=gateway, shard_id=shard_id),
                    timeout=self.shard_connect_timeout,
                )
                break
            except ConnectionClosed as exc:
                if exc.code in FATAL_GATEWAY_CLOSES:
                    raise
                shard_log.exception("Failed to connect for shard_id: %s. Retrying...", shard_id)
            except Exception:
                shard_log.exception("Failed to connect for shard_id: %s. Retrying...", shard_id)
            initial = False
            await asyncio.sleep(5.0)
        # From here as discord.py's own launch_shard: the shard reads its socket while the others connect.
        # (Its queue and shard map are private to AutoShardedClient, hence the mangled names.)
        shard = Shard(ws, self, self._AutoShardedClient__queue.put_nowait)  # type: ignore[attr-defined]
        self._AutoShardedClient__shards[shard_id] = shard  # type: ignore[attr-defined]
        shard.launch()

    async def close(self) -> None:
        """Let running handlers finish, close the gateway, then the web server.

        The composition root closes the database and HTTP session after this returns.
        """
        self._stopping.set()
        await self._drain_handlers(SHUTDOWN_GRACE_SECONDS)
        # The job poller posts through this client's HTTP session: stop it (a delivery in flight gets its grace)
        # before the session closes, or in-flight deliveries would fail, count as failed steps and be refunded.
        await self.services.jobs.stop()
        await super().close()
        for attempt in list(self._shard_launches):
            attempt.cancel()
        await self.web.close()

    async def _drain_handlers(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for command, button and message handlers that are still running."""
        current = asyncio.current_task()
        running = {
            task
            for task in asyncio.all_tasks()
            if task is not current and not task.done() and task.get_name().startswith(HANDLER_TASK_PREFIXES)
        }
        if not running:
            return
        log.info("shutting down: waiting for %s running handler(s)", len(running))
        _, pending = await asyncio.wait(running, timeout=grace)
        if pending:
            log.warning("shutting down: %s handler(s) still running after %.0f s are cancelled", len(pending), grace)
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=1.0)

"""The Discord client: a ``commands.Bot`` wired with the services, the error-handling tree and the web server."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import discord
import yarl
from discord import app_commands
from discord.ext import commands

from bot.kv import KeyValueStore

if TYPE_CHECKING:
    from bot.services import Services
    from bot.web import WebServer

log = logging.getLogger(__name__)

# Every cog is listed here and loaded fail-fast: a bot whose credits cog failed must not take paid jobs.
INITIAL_EXTENSIONS: tuple[str, ...] = (
    "cogs.meta",
    "cogs.credits",
    "cogs.admin",
    "cogs.operator",
    "cogs.images",
    "cogs.chat",
    "cogs.jobs",
    "cogs.media",
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


def point_discord_at(api_base: str, gateway_url: str) -> None:
    """Send REST calls to ``api_base`` and connect the gateway to ``gateway_url`` (a proxy, or the test fake).

    These two class attributes are where discord.py builds every URL from; they must be set before login.
    """
    discord.http.Route.BASE = api_base.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


ErrorHandler = Callable[[discord.Interaction[Any], BaseException], Awaitable[None]]
SetupStep = Callable[[], object]


class HyperealTree(app_commands.CommandTree["HyperealBot"]):
    """The command tree, with the bot's single error handler for app commands (given by the composition root)."""

    error_handler: ErrorHandler | None = None

    async def on_error(
        self, interaction: discord.Interaction[HyperealBot], error: app_commands.AppCommandError
    ) -> None:
        """Turn errors into a clear ephemeral message; unexpected ones are logged with a reference the user sees."""
        if self.error_handler is None:
            log.error("command failed with no error handler installed", exc_info=error)
            return
        await self.error_handler(interaction, error)


class HyperealBot(commands.Bot):
    """The gateway client. It holds the services; cogs reach them as ``bot.services``."""

    def __init__(
        self,
        services: Services,
        web: WebServer,
        *,
        on_error: ErrorHandler | None = None,
        on_setup: Sequence[SetupStep] = (),
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
            **options,
        )
        self.services = services
        self.web = web
        self.tree.error_handler = on_error  # type: ignore[attr-defined]
        self._on_setup = tuple(on_setup)

    async def setup_hook(self) -> None:
        """Wire only: load the cogs (fail-fast), start the web server, run the composition root's setup steps
        (the job poller), sync commands. Never waits on the gateway."""
        for extension in INITIAL_EXTENSIONS:
            await self.load_extension(extension)
        await self.web.start()
        for step in self._on_setup:
            step()
        try:
            await self.sync_commands()
        except discord.HTTPException as exc:
            # The bot still works with the commands Discord already has; the next start tries again.
            log.error("could not sync slash commands status=%s code=%s: %s", exc.status, exc.code, exc.text)

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
        """True while the websocket is open and READY has been received."""
        return self.ws is not None and not self.is_closed() and self.is_ready()

    async def close(self) -> None:
        """Let running handlers finish, close the gateway, then the web server.

        The composition root closes the database and HTTP session after this returns.
        """
        await self._drain_handlers(SHUTDOWN_GRACE_SECONDS)
        await super().close()
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

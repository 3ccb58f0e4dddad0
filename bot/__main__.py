"""Entry point: ``python -m bot``. Builds settings and logging, runs the bot until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

import discord

from bot.app import BotApp
from bot.errors import ConfigError
from bot.logs import configure_logging
from bot.settings import Settings, load_settings

log = logging.getLogger("bot")


async def run(settings: Settings) -> int:
    """Run until a stop signal; returns the process exit status."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with BotApp(settings) as app:
            await app.run_until(stop)
    except discord.LoginFailure:
        log.error("Discord rejected DISCORD_TOKEN: copy the bot token again from the developer portal into .env.")
        return 1
    except discord.PrivilegedIntentsRequired:
        log.error(
            "MESSAGE_CONTENT_INTENT=1 needs the Message Content intent: enable it in the developer portal (Bot tab) "
            "or set MESSAGE_CONTENT_INTENT=0."
        )
        return 1
    log.info("stopped cleanly")
    return 0


def main() -> int:
    """Load settings (one clear line and exit 2 when they are wrong), then run."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    secrets = [settings.discord_token.get_secret_value()]
    if settings.hypereal_api_key is not None:
        secrets.append(settings.hypereal_api_key.get_secret_value())
    configure_logging(settings.log_level, secrets)
    try:
        return asyncio.run(run(settings))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""Entry point: ``python -m bot`` runs the bot until SIGTERM/SIGINT; ``check``, ``backup PATH`` and
``migrate-to-postgres --from FILE --to URL`` are subcommands (bot.cli).

Every way start-up can fail is one line and a distinct exit status, never a traceback: 2 when the
configuration or the data must be fixed first (a restart would fail the same way). A Discord that
cannot be reached is not a failure: the bot waits for it, one log line per try.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from bot.errors import ConfigError
from bot.health import raise_open_file_limit
from bot.settings import Settings, load_settings
from bot.startup import EXIT_CONFIG, EXIT_OK, LOGIN_REJECTED, fatal_close_message

log = logging.getLogger("bot")


async def run(settings: Settings) -> int:
    """Run until a stop signal; returns the process exit status."""
    # Imported once the settings are known good: a configuration error is reported without loading discord.py.
    import discord

    from bot.app import BotApp

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with BotApp(settings) as app:
            await app.run_until(stop)
    except ConfigError as exc:
        log.error("%s", exc)
        return EXIT_CONFIG
    except discord.LoginFailure:
        log.error(LOGIN_REJECTED)
        return EXIT_CONFIG
    except discord.PrivilegedIntentsRequired:
        log.error(fatal_close_message(4014))
        return EXIT_CONFIG
    except discord.ConnectionClosed as exc:
        log.error(fatal_close_message(exc.code))
        return EXIT_CONFIG
    except discord.HTTPException as exc:
        # Login answered with something other than 401 or a 5xx (a proxy's 403 or 404, say).
        log.error(
            "Discord answered %s to the login at %s: check DISCORD_API_BASE (Discord's REST API, or a proxy of it).",
            exc.status,
            settings.discord_api_base,
        )
        return EXIT_CONFIG
    log.info("stopped cleanly")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Load settings (one clear line and exit 2 when they are wrong), then run; or run a subcommand."""
    args = sys.argv[1:] if argv is None else argv
    if args:
        from bot.cli import main as command  # only the operator subcommands need it

        return command(args)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    from bot.app import settings_secrets
    from bot.logs import configure_logging

    configure_logging(
        settings.log_level,
        settings_secrets(settings),
        log_format=settings.log_format,
        gateway_url=settings.discord_gateway_url,
    )
    before, after = raise_open_file_limit()  # slow clients meet the soft limit first, not the hard one
    if after != before:
        log.info("open-file limit raised from %s to %s", before, after)
    return asyncio.run(run(settings))


if __name__ == "__main__":
    sys.exit(main())

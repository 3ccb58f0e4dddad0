"""What ``/about`` shows: the version, how long the bot has been up, and the invite link's words."""

from __future__ import annotations

from bot import __version__

VERSION = __version__


def format_uptime(seconds: float) -> str:
    """``3 d 4 h``, ``2 h 5 min``, ``12 min``, ``40 s``: the two largest units, never more."""
    total = max(0, int(seconds))
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"

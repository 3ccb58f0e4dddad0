"""Start-up failures in words: what an operator reads, as one line, when the bot cannot get going.

Discord-free on purpose (``bot/bot.py`` and ``bot/__main__.py`` map discord.py's exceptions onto these), so the
wording is testable without a gateway. Every line names what failed and what to do; none carries a secret.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import aiohttp

# Exit statuses of `python -m bot`: 0 stopped cleanly; 2 the configuration or the data must be fixed first
# (a restart would fail the same way, so a supervisor should not loop on it).
EXIT_OK = 0
EXIT_CONFIG = 2

# Gateway close codes after which reconnecting cannot help (discord.py raises instead of reconnecting).
FATAL_GATEWAY_CLOSES: dict[int, str] = {
    4004: (
        "Discord closed the gateway: authentication failed (4004). DISCORD_TOKEN is wrong or was reset: copy the "
        "bot token again from the developer portal (Bot → Reset Token) into .env."
    ),
    4010: (
        "Discord closed the gateway: invalid shard (4010). Check SHARD_COUNT and SHARD_IDS (ids 0 to "
        "SHARD_COUNT-1, the same SHARD_COUNT in every process), and that DISCORD_GATEWAY_URL points at Discord "
        "(or a correctly configured gateway proxy)."
    ),
    4011: (
        "Discord closed the gateway: sharding required (4011). A shard would serve more than 2,500 servers: "
        "raise SHARD_COUNT, or leave it unset so the bot takes the count Discord recommends (README: Scaling out)."
    ),
    4012: (
        "Discord closed the gateway: invalid API version (4012). Update the bot; check that DISCORD_GATEWAY_URL "
        "points at Discord's current gateway."
    ),
    4013: (
        "Discord closed the gateway: invalid intents (4013). Set MESSAGE_CONTENT_INTENT=0, or enable the Message "
        "Content intent in the developer portal (Bot → Privileged Gateway Intents) and keep it at 1."
    ),
    4014: (
        "Discord closed the gateway: disallowed intents (4014). MESSAGE_CONTENT_INTENT=1 needs the Message Content "
        "intent enabled in the developer portal (Bot → Privileged Gateway Intents); enable it or set "
        "MESSAGE_CONTENT_INTENT=0."
    ),
}

LOGIN_REJECTED = (
    "Discord rejected DISCORD_TOKEN (401 Unauthorized): copy the bot token again from the developer portal "
    "(Bot → Reset Token) into .env."
)


def fatal_close_message(code: int) -> str:
    """The line for a gateway close code discord.py does not reconnect after."""
    known = FATAL_GATEWAY_CLOSES.get(code)
    if known is not None:
        return known
    return f"Discord closed the gateway with code {code} and the bot cannot reconnect: check DISCORD_GATEWAY_URL."


def unreachable_reason(exc: BaseException) -> str:
    """Why a connection failed, in a few words (DNS, refused, TLS, timeout…), without the exception's repr."""
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "the host name could not be resolved (DNS)"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return "its TLS certificate was not accepted"
    if isinstance(exc, aiohttp.ClientSSLError):
        return "the TLS handshake failed"
    if isinstance(exc, aiohttp.ClientConnectorError):
        error = exc.os_error
        # asyncio words a refusal "Connect call failed (host, port)"; the errno says what happened.
        reason = os.strerror(error.errno) if error.errno else error.strerror or type(error).__name__
        return f"the connection failed: {reason.lower()}"
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError):
        return "the connection was closed during the handshake (is it the right scheme, http or https?)"
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    status = getattr(exc, "status", None)
    if isinstance(status, int) and status >= 500:
        return f"Discord answered {status} (an outage on its side)"
    text = str(exc).strip()  # e.g. discord.py's "WebSocket closed with 1006"
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


@dataclass
class Backoff:
    """Capped exponential backoff with jitter: 1, 2, 4 … seconds up to ``cap``, each ±20 %."""

    first: float = 1.0
    cap: float = 60.0
    _next: float = 0.0

    def delay(self) -> float:
        """The wait before the next try."""
        self._next = self.first if self._next == 0 else min(self._next * 2, self.cap)
        return self._next * random.uniform(0.8, 1.2)

"""One redactor for every text that leaves the process: log lines and what members read.

It replaces the secrets it was given (the Discord token, the Hypereal key) and the secrets that
travel inside URLs and payloads — interaction tokens (``/webhooks/{app}/{token}``,
``/interactions/{id}/{token}/callback``, ``"token": "…"``) and our own webhook tokens
(``/hypereal/webhook/{token}``) — with ``[redacted]``. Text shown to members is also stripped of
control characters and capped, because Hypereal's error text reaches them verbatim.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

REDACTED = "[redacted]"
USER_TEXT_LIMIT = 1500

# Secrets inside paths and JSON: keep the shape, drop the secret part.
_TOKEN_PATTERNS = (
    re.compile(r"(/webhooks/\d+/)[^/\s?\"']+"),
    re.compile(r"(/interactions/\d+/)[^/\s?\"']+"),
    re.compile(r"(/hypereal/webhook/)[^/\s?\"']+"),
    re.compile(r"""(["']token["']\s*:\s*["'])[^"']+"""),
    re.compile(r"(Authorization['\"]?\s*[:=]\s*['\"]?(?:Bot|Bearer)\s+)[^\s'\"]+", re.IGNORECASE),
)


class Redactor:
    """Scrubs known secrets and token-bearing URLs out of text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Short strings would redact ordinary words; real tokens and keys are long.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        """``text`` with every secret replaced by ``[redacted]``."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        for pattern in _TOKEN_PATTERNS:
            text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
        return text

    def needs(self, text: str) -> bool:
        """True when ``text`` holds something to redact (cheap check before rebuilding a log record)."""
        return any(s in text for s in self._secrets) or any(p.search(text) for p in _TOKEN_PATTERNS)

    def for_members(self, text: str, limit: int = USER_TEXT_LIMIT) -> str:
        """Text safe to show in Discord: redacted, without control characters, at most ``limit`` characters."""
        cleaned = "".join(ch for ch in self(text) if ch in "\n\t" or not unicodedata.category(ch).startswith("C"))
        return cleaned if len(cleaned) <= limit else cleaned[: limit - 1].rstrip() + "…"

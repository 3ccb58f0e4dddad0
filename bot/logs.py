"""Logging set-up: one line per event, key=value fields, secrets scrubbed as a last line of defence."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable


class SecretScrubber(logging.Filter):
    """Replace any known secret that reaches a log record with ``[redacted]``.

    Code never logs secrets on purpose; this guards against a library echoing a header or URL.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s and len(s) >= 6]

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        message = record.getMessage()
        if any(secret in message for secret in self._secrets):
            for secret in self._secrets:
                message = message.replace(secret, "[redacted]")
            record.msg, record.args = message, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            if any(secret in text for secret in self._secrets):
                for secret in self._secrets:
                    text = text.replace(secret, "[redacted]")
                record.exc_info, record.exc_text = None, text
        return True


class VoiceNoticeFilter(logging.Filter):
    """Drop discord.py's start-up warnings about missing voice libraries: the bot never uses voice."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "voice will NOT be supported" not in record.getMessage()


def configure_logging(level: str, secrets: Iterable[str] = ()) -> None:
    """Log to stderr as ``time level logger message`` lines; discord.py's chatty loggers are kept at INFO or above."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(SecretScrubber(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("discord.client").addFilter(VoiceNoticeFilter())
    for noisy in ("discord.gateway", "discord.http", "discord.client", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, logging.getLevelName(level)))

"""Logging set-up: one line per event, key=value fields, secrets scrubbed as a last line of defence."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

from bot.redact import Redactor


class SecretScrubber(logging.Filter):
    """Replace any known secret, interaction token or webhook token in a log record with ``[redacted]``.

    Code never logs secrets on purpose; this guards against a library echoing a header or URL
    (discord.py's webhook module logs interaction-token URLs at DEBUG).
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._redact = Redactor(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self._redact.needs(message):
            record.msg, record.args = self._redact(message), None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            if self._redact.needs(text):
                record.exc_info, record.exc_text = None, self._redact(text)
        elif record.exc_text and self._redact.needs(record.exc_text):
            record.exc_text = self._redact(record.exc_text)
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

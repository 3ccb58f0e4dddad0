"""Logging set-up: one line per event, key=value fields, secrets scrubbed as a last line of defence.

``LOG_FORMAT=text`` (the default) writes ``time level logger message`` lines; ``LOG_FORMAT=json`` writes
one JSON object per line for log shippers: ``time``, ``level``, ``logger``, ``message``, and every
``key=value`` field of the message as a key of its own (values stay strings: Discord ids do not fit a
JSON number exactly). Secrets are scrubbed before either formatter sees the record.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
from collections.abc import Iterable

from bot.redact import Redactor
from bot.startup import unreachable_reason

# `key=value` as the code writes fields: an identifier, `=`, then anything up to the next space.
_FIELD = re.compile(r"(?<![^\s(,])([A-Za-z_][A-Za-z0-9_]*)=([^\s,)]+)")
_RESERVED = frozenset({"time", "level", "logger", "message", "exception"})


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


class ReconnectNotice(logging.Filter):
    """discord.py logs each gateway reconnect attempt with a whole traceback; make it one line naming the URL.

    The gateway being unreachable (DNS, refused, TLS) is an outage to wait out, not a bug to debug:
    the operator needs the URL and the reason, once per try.
    """

    def __init__(self, gateway_url: str) -> None:
        super().__init__()
        self.gateway_url = gateway_url

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.exc_info or record.exc_info[1] is None:
            return True
        if not str(record.msg).startswith(("Attempting a reconnect in", "Failed to connect for shard_id")):
            return True
        reason = unreachable_reason(record.exc_info[1])
        record.msg = "cannot reach the Discord gateway at %s (%s): trying again with backoff"
        record.args = (self.gateway_url, reason)
        record.exc_info, record.exc_text = None, None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def message_fields(message: str) -> dict[str, str]:
    """The ``key=value`` fields of a log message (``job=ab12 guild=42`` → ``{"job": "ab12", "guild": "42"}``)."""
    fields: dict[str, str] = {}
    for key, value in _FIELD.findall(message):
        fields[f"field_{key}" if key in _RESERVED else key] = value.rstrip(":;")
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the message's fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        entry: dict[str, str] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        entry.update(message_fields(message))
        if record.exc_info and record.exc_info[1] is not None:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


# discord.py loggers whose DEBUG lines carry whole payloads: REST bodies (message content, so prompts and
# answers) and every gateway event (interactions with their options, so prompts). Kept at INFO or above.
CONTENT_LOGGERS = ("discord.gateway", "discord.http", "discord.webhook.async_")


class PromptLog:
    """The one way prompts and model text reach the log: at DEBUG, and only with ``LOG_PROMPTS=1``.

    Services log what a member asked or a model answered only through this object; everything else
    logs ids and sizes. Off (the default), nothing is even formatted.
    """

    def __init__(self, enabled: bool = False) -> None:
        self.enabled = enabled

    def debug(self, logger: logging.Logger, what: str, text: str, **fields: object) -> None:
        """``what key=value… text='…'`` at DEBUG when enabled (fields first, so the JSON formatter picks them up)."""
        if not self.enabled or not logger.isEnabledFor(logging.DEBUG):
            return
        pairs = " ".join(f"{key}={value}" for key, value in fields.items())
        logger.debug("%s %s chars=%s text=%r", what, pairs, len(text), text)


def quiet_library_loggers(level: str) -> None:
    """Keep discord.py's chatty loggers at INFO or above: their DEBUG lines hold message content and prompts."""
    for noisy in (*CONTENT_LOGGERS, "discord.client", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, logging.getLevelName(level)))


def configure_logging(
    level: str, secrets: Iterable[str] = (), *, log_format: str = "text", gateway_url: str | None = None
) -> None:
    """Log to stderr as text lines or JSON objects; discord.py's chatty loggers are kept at INFO or above."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(SecretScrubber(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    client_log = logging.getLogger("discord.client")
    client_log.addFilter(VoiceNoticeFilter())
    if gateway_url is not None:
        client_log.addFilter(ReconnectNotice(gateway_url))
        logging.getLogger("discord.shard").addFilter(ReconnectNotice(gateway_url))  # the sharded client's retries
    quiet_library_loggers(level)

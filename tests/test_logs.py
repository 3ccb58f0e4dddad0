"""Log set-up: secrets scrubbed, voice notices dropped."""

from __future__ import annotations

import logging
import sys

import pytest

from bot.logs import SecretScrubber, VoiceNoticeFilter
from bot.redact import Redactor


def _record(message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("x", logging.WARNING, __file__, 1, message, args, None)


def test_a_secret_reaching_a_log_line_is_redacted() -> None:
    scrubber = SecretScrubber(["ck_secret_value"])
    record = _record("calling with key=%s", "ck_secret_value")
    assert scrubber.filter(record)
    assert record.getMessage() == "calling with key=[redacted]"


def test_an_exception_carrying_a_secret_is_redacted() -> None:
    scrubber = SecretScrubber(["tok-123456"])
    try:
        raise RuntimeError("bad token tok-123456")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    scrubber.filter(record)
    assert record.exc_info is None
    assert "tok-123456" not in (record.exc_text or "")
    assert "[redacted]" in (record.exc_text or "")


@pytest.mark.parametrize(
    ("message", "kept"),
    [("PyNaCl is not installed, voice will NOT be supported", False), ("logging in using static token", True)],
)
def test_voice_notices_are_dropped(message: str, kept: bool) -> None:
    assert VoiceNoticeFilter().filter(_record(message)) is kept


@pytest.mark.parametrize(
    "line",
    [
        "POST https://discord.com/api/v10/webhooks/900000000000000001/aW50ZXJhY3Rpb246MTIzNDU2Nzg5 returned 200",
        "PATCH /api/v10/webhooks/9/itoken-123456789/messages/@original has returned 404",
        "POST /api/v10/interactions/123/itoken-123456789/callback?with_response=1 with {} has returned 204",
        "webhook at https://bot.example/hypereal/webhook/Zm9vYmFyYmF6cXV4cXV1eA was refused",
        'INTERACTION_CREATE {"id": "1", "token": "itoken-abcdefgh", "type": 2}',
    ],
)
def test_interaction_and_webhook_tokens_are_redacted(line: str) -> None:
    record = _record("%s", line)
    SecretScrubber([]).filter(record)
    message = record.getMessage()
    assert "[redacted]" in message
    for secret in ("aW50ZXJhY3Rpb246MTIzNDU2Nzg5", "itoken-123456789", "Zm9vYmFyYmF6cXV4cXV1eA", "itoken-abcdefgh"):
        assert secret not in message


def test_text_for_members_is_redacted_stripped_and_capped() -> None:
    redact = Redactor(["ck_live_SECRETKEY"])
    text = redact.for_members("Hypereal said: bad key ck_live_SECRETKEY\x07\x1b[31m" + "x" * 5000, limit=200)
    assert "ck_live_SECRETKEY" not in text
    assert "\x07" not in text
    assert "\x1b" not in text
    assert len(text) == 200
    assert text.endswith("…")

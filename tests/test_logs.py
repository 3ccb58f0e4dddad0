"""Log set-up: secrets scrubbed, voice notices dropped."""

from __future__ import annotations

import logging
import sys

import pytest

from bot.logs import SecretScrubber, VoiceNoticeFilter


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

"""Checks for single values Hypereal sends back: credits, job ids and error text.

Everything Hypereal returns is untrusted input (answers, unsigned webhooks). These functions never
raise on a bad value: they say what was wrong so the caller can normalise it (credits become
"unknown", error text is cleaned) or refuse the answer in words. Link shapes are checked by
``bot.urls`` (shared with the downloader).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable

MAX_CREDITS = 10**9  # no single Hypereal call costs anywhere near this: a bigger figure is a bug or an attack
MAX_JOB_ID_LENGTH = 200
MAX_ERROR_TEXT = 300
REDACTED = "[redacted]"
_DIGITS = re.compile(r"[0-9]{1,10}")
_WHITESPACE = re.compile(r"\s+")


def parse_credits(value: object) -> tuple[int | None, str | None]:
    """``(credits, problem)``: a non-negative integer ≤ 10**9, or ``(None, why)``; an absent value is ``(None, None)``.

    Accepted: ints, integral finite floats (``5.0``) and digit strings (``"5"``), which some answers use.
    Refused: booleans, negatives, fractions, NaN/infinity, anything over :data:`MAX_CREDITS`, other types.
    """
    if value is None:
        return None, None
    if isinstance(value, bool):
        return None, "is a boolean, not a number of credits"
    if isinstance(value, str):
        if not _DIGITS.fullmatch(value):
            return None, "is not a whole number of credits"
        value = int(value)
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            return None, "is not a whole number of credits"
        if value < 0:
            return None, "is negative"
        if value > MAX_CREDITS:
            return None, "is implausibly large"
        value = int(value)
    if not isinstance(value, int):
        return None, "is not a number of credits"
    if value < 0:
        return None, "is negative"
    if value > MAX_CREDITS:
        return None, "is implausibly large"
    return value, None


def credits_or_none(value: object) -> int | None:
    """:func:`parse_credits` without the reason: the credits, or None when absent or invalid."""
    return parse_credits(value)[0]


def job_id_problem(value: object) -> str | None:
    """Why ``value`` cannot be a Hypereal job id (non-empty, ≤ 200 printable characters, no spaces), or None."""
    if not isinstance(value, str):
        return "is not text"
    if not value:
        return "is empty"
    if len(value) > MAX_JOB_ID_LENGTH:
        return f"is longer than {MAX_JOB_ID_LENGTH} characters"
    if not value.isprintable() or any(char.isspace() for char in value):
        return "contains spaces or control characters"
    return None


def clean_error_text(text: str, secrets: Iterable[str] = (), limit: int = MAX_ERROR_TEXT) -> str:
    """Hypereal's error text made safe to show: secrets → ``[redacted]``, no control characters, ≤ ``limit``.

    Control and invisible format characters go first (so a key split by a zero-width space is still
    found), then each secret is replaced wherever it appears in any letter case, then the text is capped
    with "…" (after redaction, so the cap cannot cut a key in half and leave a prefix readable).
    """
    visible = "".join(" " if char.isspace() else char for char in text if not _is_invisible(char))
    for secret in secrets:
        if secret:
            visible = re.sub(re.escape(secret), REDACTED, visible, flags=re.IGNORECASE)
    visible = _WHITESPACE.sub(" ", visible).strip()
    if len(visible) > limit:
        visible = visible[: limit - 1].rstrip() + "…"
    return visible


def _is_invisible(char: str) -> bool:
    """Controls other than whitespace, format characters (bidi overrides, zero-width), surrogates, private use."""
    category = unicodedata.category(char)
    if category == "Cc":
        return not char.isspace()
    return category in ("Cf", "Cs", "Co", "Cn")

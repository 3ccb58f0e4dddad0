"""A small incremental parser for Hypereal's OpenAI-style server-sent events.

Bytes arrive in arbitrary chunks: a line (or a UTF-8 character) may be split across two. The parser
buffers bytes until a full line is there, ignores blank lines, ``:`` comments and non-``data:``
fields, and turns each ``data:`` line into an event.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bot.hypereal.fields import parse_credits


@dataclass(frozen=True)
class SSEEvent:
    """One ``data:`` line: either the ``[DONE]`` marker or a parsed JSON chunk."""

    done: bool = False
    data: dict[str, Any] | None = None


class SSEParseError(ValueError):
    """A ``data:`` line that is neither ``[DONE]`` nor a JSON object."""


class SSEParser:
    """Feed bytes with :meth:`feed`; collect the events it returns; call :meth:`close` at the end of the body."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Add bytes; return the events completed by them."""
        self._buffer += chunk
        events: list[SSEEvent] = []
        while True:
            newline = self._buffer.find(b"\n")
            if newline < 0:
                break
            line, self._buffer = self._buffer[:newline], self._buffer[newline + 1 :]
            event = self._parse_line(line.rstrip(b"\r"))
            if event is not None:
                events.append(event)
        return events

    def close(self) -> list[SSEEvent]:
        """Parse a last line that had no newline (a stream that just stops)."""
        rest, self._buffer = self._buffer, b""
        event = self._parse_line(rest.rstrip(b"\r")) if rest.strip() else None
        return [event] if event is not None else []

    @staticmethod
    def _parse_line(raw: bytes) -> SSEEvent | None:
        if not raw or raw.startswith(b":"):
            return None
        line = raw.decode("utf-8", errors="replace")
        field, _, value = line.partition(":")
        if field != "data":
            return None  # event:, id:, retry: — nothing we need
        value = value.removeprefix(" ")
        if value.strip() == "[DONE]":
            return SSEEvent(done=True)
        try:
            data = json.loads(value)
        except json.JSONDecodeError as exc:
            raise SSEParseError(f"unreadable SSE data line ({exc.msg})") from None
        if not isinstance(data, dict):
            raise SSEParseError("SSE data line is not a JSON object")
        return SSEEvent(data=data)


def delta_text(data: dict[str, Any]) -> str:
    """The text delta of an OpenAI-style chunk (empty when it carries none)."""
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return ""
    delta = choices[0].get("delta") or choices[0].get("message") or {}
    content = delta.get("content") if isinstance(delta, dict) else None
    return content if isinstance(content, str) else ""


def finish_reason(data: dict[str, Any]) -> str | None:
    """The chunk's ``finish_reason`` when set."""
    choices = data.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        reason = choices[0].get("finish_reason")
        return reason if isinstance(reason, str) else None
    return None


def credits_of(data: dict[str, Any]) -> tuple[int | None, str | None]:
    """``(credits, problem)`` from ``creditsUsed`` (or ``usage.creditsUsed`` / ``usage.credits``).

    ``(None, None)`` when the chunk reports none; ``(None, why)`` when the figure is not a non-negative
    integer (see :func:`bot.hypereal.fields.parse_credits`).
    """
    value = data.get("creditsUsed")
    usage = data.get("usage")
    if value is None and isinstance(usage, dict):
        value = usage.get("creditsUsed", usage.get("credits"))
    return parse_credits(value)

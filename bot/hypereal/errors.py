"""Typed errors for Hypereal answers. Each carries a ``user_message`` for Discord and operator detail in its text.

None of them ever includes the API key. They are built from status codes and response bodies, and any
text taken from a body goes through :func:`bot.hypereal.fields.clean_error_text` first: the key (which the
client passes as ``secrets``) becomes "[redacted]", control characters go, and it is capped at 300 characters.
A contrived body that echoes the key therefore cannot carry it to Discord or to the logs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bot.errors import ProviderError
from bot.hypereal.fields import clean_error_text, credits_or_none


class HyperealError(ProviderError):
    """Any failure talking to Hypereal."""

    def __init__(self, user_message: str, detail: str | None = None) -> None:
        super().__init__(user_message)
        self.detail = detail or user_message

    def __str__(self) -> str:
        return self.detail


class Unauthorized(HyperealError):
    """401: the operator's key was rejected. Not the user's fault."""

    def __init__(self, detail: str = "Hypereal rejected the API key (401)") -> None:
        super().__init__(
            "The bot's Hypereal key was rejected, so nothing can be generated right now. "
            "Nothing was charged; please tell the bot operator.",
            detail,
        )


class BadRequest(HyperealError):
    """400: bad input, unsupported model, or a moderation refusal. Hypereal's (cleaned) message is shown."""

    def __init__(self, message: str) -> None:
        super().__init__(f"Hypereal refused the request: {message}", f"Hypereal 400: {message}")
        self.message = message


class InsufficientCredits(HyperealError):
    """402 (or 400 saying so): the OPERATOR's Hypereal account is empty, not the server's budget."""

    def __init__(self, required: int | None, available: int | None) -> None:
        super().__init__(
            "The bot operator's Hypereal account is out of credits. Nothing was charged; please tell the bot operator.",
            f"Hypereal: insufficient credits (required={required}, available={available})",
        )
        self.required = required
        self.available = available


class NotFound(HyperealError):
    """404: unknown job (terminal)."""

    def __init__(self, detail: str = "Hypereal: not found (404)") -> None:
        super().__init__("Hypereal does not know this job any more.", detail)


class PayloadTooLarge(HyperealError):
    """413: the request body was too large."""

    def __init__(self) -> None:
        super().__init__(
            "That request is too large for Hypereal. Try a smaller input.", "Hypereal 413: payload too large"
        )


class RateLimited(HyperealError):
    """429: the key's hourly limit or Hypereal's queue is full."""

    def __init__(self, retry_after: float | None, message: str | None = None) -> None:
        super().__init__(
            "Hypereal is busy right now (rate limited). Nothing was charged; try again in a minute.",
            f"Hypereal 429: {message or 'rate limited'} (retry_after={retry_after})",
        )
        self.retry_after = retry_after


class ServerError(HyperealError):
    """5xx: a transient failure on Hypereal's side."""

    def __init__(self, status: int, message: str | None = None) -> None:
        super().__init__(
            "Hypereal had a temporary problem. Nothing was charged; please try again shortly.",
            f"Hypereal {status}: {message or 'server error'}",
        )
        self.status = status


class ProviderTimeout(HyperealError):
    """No answer in time."""

    def __init__(self, detail: str = "Hypereal did not answer in time") -> None:
        super().__init__("Hypereal did not answer in time. Nothing was charged; please try again.", detail)


class AnswerLost(ProviderTimeout):
    """The request was sent but the connection dropped before the answer: Hypereal may have acted on it."""

    def __init__(self, detail: str) -> None:
        HyperealError.__init__(
            self,
            "The connection to Hypereal dropped before it answered. Nothing was charged; please try again.",
            detail,
        )


class MalformedResponse(HyperealError):
    """The body was not the JSON we expected (HTML error page, wrong shape)."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            "Hypereal sent an answer the bot could not read. Nothing was charged; please try again.", detail
        )


class RedirectRefused(HyperealError):
    """A POST was answered with a redirect; following it could turn the POST into a GET, so we stop."""

    def __init__(self, status: int, location: str | None, secrets: Iterable[str] = ()) -> None:
        location = None if location is None else clean_error_text(location, secrets)
        super().__init__(
            "The bot is misconfigured (Hypereal moved). Nothing was charged; please tell the bot operator.",
            f"Hypereal answered {status} redirect to {location!r}: set HYPEREAL_BASE_URL to the final host",
        )
        self.location = location


class StreamInterrupted(HyperealError):
    """A chat stream ended abnormally after it started (connection dropped, bad chunk)."""

    def __init__(self, detail: str) -> None:
        super().__init__("The answer was interrupted by a Hypereal error.", detail)


def error_message(body: Any, secrets: Iterable[str] = ()) -> str | None:
    """Hypereal's error text from either shape: ``{"error": "text"}`` or ``{"error": {"code", "message", "type"}}``.

    The text is cleaned (``secrets`` redacted, control characters removed, capped); None when there is none.
    """
    text = _raw_error_message(body)
    if text is None:
        return None
    return clean_error_text(text, secrets) or None


def _raw_error_message(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, str):
        return error
    if isinstance(error, dict):
        message = error.get("message")
        code = error.get("code")
        if isinstance(message, str):
            return f"{message} ({code})" if isinstance(code, str | int) and code else message
    message = body.get("message")
    return message if isinstance(message, str) else None


def error_for_status(
    status: int, body: Any, retry_after: float | None = None, *, secrets: Iterable[str] = ()
) -> HyperealError:
    """Map an error status and parsed body to its typed error; ``secrets`` never appear in its text."""
    message = error_message(body, secrets)
    if status == 402 or (status == 400 and message and "insufficient credits" in message.lower()):
        data = body if isinstance(body, dict) else {}
        # Figures that are not non-negative integers (-5, "abc", 1e20) read as unknown.
        return InsufficientCredits(credits_or_none(data.get("required")), credits_or_none(data.get("available")))
    if status == 400:
        return BadRequest(message or "bad request")
    if status in (401, 403):
        return Unauthorized(f"Hypereal {status}: {message or 'unauthorized'}")
    if status == 404:
        return NotFound(f"Hypereal 404: {message or 'not found'}")
    if status == 413:
        return PayloadTooLarge()
    if status == 429:
        return RateLimited(retry_after, message)
    if status >= 500:
        return ServerError(status, message)
    return MalformedResponse(f"Hypereal answered unexpected status {status}: {message or ''}".strip())

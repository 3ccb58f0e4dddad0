"""The bot's error hierarchy.

Every error a user can cause or see derives from :class:`BotError` and carries a ``user_message``:
a sentence that says what went wrong and what to do next. The command tree's error handler shows
it ephemerally; anything that is not a ``BotError`` is logged with a reference id instead.
"""

from __future__ import annotations


class BotError(Exception):
    """An error with a message that is safe and useful to show to the Discord user."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


class InvalidInput(BotError):
    """The user's input (prompt, option, attachment) is not acceptable; nothing was charged."""


class ModelUnavailable(BotError):
    """The requested model is not in the catalog or not usable for this command."""


class ProviderError(BotError):
    """Hypereal failed or refused the request; credits reserved for it have been refunded."""


class JobNotFound(BotError):
    """No job with that id belongs to the user."""


class ConfigError(Exception):
    """A configuration or data file is invalid; start-up must stop with this message."""

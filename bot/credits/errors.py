"""What a member sees when credits stop a request: what happened and what to do next."""

from __future__ import annotations

from bot.errors import BotError
from bot.wording import category_noun, credits_text


def when(resets_at: int | None) -> str:
    """A Discord timestamp (shown in the reader's time zone) or a phrase for pools that never reset."""
    return f"<t:{resets_at}:R>" if resets_at else "when an admin tops it up"


class InsufficientCredits(BotError):
    """The server's balance cannot cover the request's estimate."""

    def __init__(self, required: int, available: int, resets_at: int | None = None) -> None:
        super().__init__(
            f"This server has {credits_text(available)} left and this needs {credits_text(required)}. "
            f"Ask a server admin to top up, or try again after the budget resets ({when(resets_at)})."
        )
        self.required = required
        self.available = available
        self.resets_at = resets_at


class QuotaExceeded(BotError):
    """The member's cap for this category would be exceeded."""

    def __init__(self, category: str, cap: int, used: int, resets_at: int | None) -> None:
        label = category_noun(category)
        super().__init__(
            f"You have used {used} of your {cap}-credit {label} cap this period; this request needs more. "
            f"Your quota resets {when(resets_at)}, or ask a server admin to raise it."
        )
        self.category = category
        self.cap = cap
        self.used = used
        self.resets_at = resets_at


class BudgetFrozen(BotError):
    """The operator froze this server's budget."""

    def __init__(self) -> None:
        super().__init__("This server's credits are frozen by the bot operator. Ask a server admin to contact them.")


class ReservationNotFound(BotError):
    """A settle or refund named a reservation that does not exist (a bug, not a user mistake)."""

    def __init__(self, key: str) -> None:
        super().__init__("Something went wrong with the credit records for this request; nothing more was charged.")
        self.key = key


class GrantBelowZero(BotError):
    """Taking credits away would push the balance below zero (the operator did not say that is intended)."""

    def __init__(self, balance: int, amount: int) -> None:
        super().__init__(
            f"This server has {credits_text(balance)} left, so taking away {credits_text(-amount)} would leave it at "
            f"{balance + amount}, which blocks every request. Take away at most {credits_text(max(balance, 0))}, "
            "or pass allow_negative if that is what you want."
        )
        self.balance = balance
        self.amount = amount


class TooManyInFlight(BotError):
    """The member already has as many requests in flight as the server allows: refused, nothing reserved."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"Refused, not queued: you already have {limit} request{'s' if limit != 1 else ''} in progress, the most "
            "this server allows at once. Nothing was charged; try again when one has finished (see /jobs)."
        )
        self.limit = limit


class CooldownActive(BotError):
    """The member asked again within the server's cooldown for this category."""

    def __init__(self, category: str, seconds: int, retry_after: int) -> None:
        super().__init__(
            f"This server has a {seconds}-second cooldown between {category_noun(category)} requests. "
            f"Nothing was charged; try again in {retry_after} s."
        )
        self.category = category
        self.retry_after = retry_after

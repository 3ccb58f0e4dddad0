"""The paid-request pipeline every generation command goes through.

quote (catalog) → channel policy → reserve (ledger, one write transaction) → call Hypereal →
settle to the ``creditsUsed`` Hypereal reports — or refund when anything fails before Hypereal
accepted the request. Hypereal's own "Insufficient credits" means the *operator's* account is
empty: the reservation is refunded, the user told so, and the operator warned in the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from bot.credits import ChannelPolicy, CreditLedger, GuildSettingsRepo, ReservationNotFound
from bot.errors import BotError, ProviderError
from bot.hypereal import InsufficientCredits as HyperealInsufficientCredits

log = logging.getLogger(__name__)

# Catalog categories → the budget categories admins set caps on.
LEDGER_CATEGORY = {
    "chat": "chat",
    "image": "image",
    "image_edit": "image_edit",
    "video": "video",
    "audio_tts": "audio",
    "audio_clone": "audio",
    "audio_asr": "audio",
    "model3d": "model3d",
}


def ledger_category(catalog_category: str) -> str:
    """The budget category a catalog category is charged to (all audio kinds share one cap)."""
    return LEDGER_CATEGORY[catalog_category]


@dataclass(frozen=True)
class Requester:
    """Who asks, and where: everything the credit checks need, without Discord objects."""

    guild_id: int
    user_id: int
    role_ids: tuple[int, ...] = ()
    channel_id: int = 0
    parent_channel_id: int | None = None  # a thread's parent channel: channel policy follows it


@dataclass(frozen=True)
class Charge:
    """What a paid result shows: ``model · N credits · M left``."""

    model: str
    credits: int
    balance_left: int

    def cost_line(self) -> str:
        """The line every paid result carries."""
        return f"{self.model} · {self.credits} credits · {self.balance_left} left"


class ChannelNotAllowed(BotError):
    """The command's category is switched off in this channel."""


class OperatorOutOfCredits(ProviderError):
    """Hypereal refused for lack of credits on the operator's account (not the server's budget)."""


@dataclass
class Bill:
    """An open reservation inside :meth:`PaidRequests.charging`; call :meth:`settle` once Hypereal answered."""

    key: str
    model: str
    estimate: int
    charge: Charge | None = field(default=None)


class PaidRequests:
    """Reserve, settle and refund credits around Hypereal calls, with channel policy and confirmation rules."""

    def __init__(
        self,
        ledger: CreditLedger,
        channels: ChannelPolicy,
        guild_settings: GuildSettingsRepo,
    ) -> None:
        self.ledger = ledger
        self.channels = channels
        self.guild_settings = guild_settings

    async def check_channel(self, requester: Requester, category: str) -> None:
        """Raise ``ChannelNotAllowed`` (listing where it is allowed) when the category is off here."""
        budget_category = ledger_category(category)
        policy = await self.channels.policy(requester.guild_id, budget_category)
        here = requester.parent_channel_id if requester.parent_channel_id is not None else requester.channel_id
        if policy.allows(here):
            return
        label = budget_category.replace("_", " ").capitalize()
        where = await self.channels.allowed_channels(requester.guild_id, budget_category)
        if where:
            places = ", ".join(f"<#{channel_id}>" for channel_id in where)
            raise ChannelNotAllowed(f"{label} commands are not enabled in this channel. Use them in {places}.")
        if policy.only_in:
            raise ChannelNotAllowed(
                f"{label} commands are switched off on this server. A server admin can turn them on with /channels."
            )
        raise ChannelNotAllowed(f"{label} commands are switched off in this channel. Use them in another channel.")

    async def needs_confirmation(self, requester: Requester, estimate: int) -> bool:
        """True when the estimate is over the server's confirmation threshold."""
        settings = await self.guild_settings.get(requester.guild_id)
        return estimate > settings.confirm_threshold

    async def reserve(self, requester: Requester, category: str, model: str, estimate: int, key: str) -> None:
        """Check the channel, then hold ``estimate`` credits under ``key`` (raises the ledger's errors)."""
        await self.check_channel(requester, category)
        await self.ledger.reserve(
            requester.guild_id,
            requester.user_id,
            requester.role_ids,
            ledger_category(category),
            estimate,
            key,
            channel_id=requester.channel_id,
            model=model,
        )

    async def settle(self, guild_id: int, key: str, model: str, actual: int) -> Charge:
        """Charge what Hypereal reported (more or less than the estimate) and return the cost line's figures."""
        reservation = await self.ledger.settle(key, actual)
        balance = await self.ledger.balance(guild_id)
        return Charge(
            model=model, credits=reservation.actual if reservation.actual is not None else actual, balance_left=balance
        )

    async def refund(self, key: str, reason: str) -> None:
        """Give the held estimate back (idempotent)."""
        await self.ledger.refund(key, reason)

    @asynccontextmanager
    async def charging(
        self, requester: Requester, category: str, model: str, estimate: int, key: str
    ) -> AsyncIterator[Bill]:
        """Reserve on entry; the block calls Hypereal and then ``await paid.settle_bill(bill, credits)``.

        Any exception before the bill is settled refunds it. Hypereal's own "Insufficient credits"
        becomes ``OperatorOutOfCredits`` with a message for the user and a warning for the operator.
        """
        try:
            await self.reserve(requester, category, model, estimate, key)
        except asyncio.CancelledError:
            # Cancelled while the reservation's transaction ran on the database thread: it may have
            # committed, and nobody would ever settle it. Give it back (a no-op if it never happened).
            with contextlib.suppress(ReservationNotFound):
                await self.refund(key, "cancelled while reserving")
            raise
        bill = Bill(key=key, model=model, estimate=estimate)
        try:
            yield bill
        except HyperealInsufficientCredits as exc:
            await self.refund(key, "hypereal: insufficient credits")
            raise self.operator_out_of_credits(exc, requester.guild_id) from exc
        except BaseException:
            if bill.charge is None:
                await self.refund(key, "request failed before Hypereal accepted it")
            raise
        if bill.charge is None:
            # The block finished without a report from Hypereal: charge the estimate rather than leave it held.
            bill.charge = await self.settle(requester.guild_id, key, model, estimate)

    @staticmethod
    def operator_out_of_credits(exc: HyperealInsufficientCredits, guild_id: int) -> OperatorOutOfCredits:
        """Warn the operator in the log and build the error the member reads (the caller refunds)."""
        log.warning(
            "operator's Hypereal account is empty required=%s available=%s guild=%s",
            exc.required,
            exc.available,
            guild_id,
        )
        return OperatorOutOfCredits(
            "The bot operator's Hypereal account is out of credits "
            f"(needs {exc.required}, has {exc.available}). Nothing was charged to this server; "
            "please tell the bot operator."
        )

    async def preview_bill(self, requester: Requester, bill: Bill, credits_used: int | None) -> Charge:
        """What settling the bill to ``credits_used`` will show — computed, not yet charged.

        For results that are posted before they are charged, so that a result which cannot be posted
        is refunded rather than charged and dropped: the balance left is today's balance plus the
        held estimate minus the charge (what the settle then writes).
        """
        actual = bill.estimate if credits_used is None else credits_used
        balance = await self.ledger.balance(requester.guild_id)
        return Charge(model=bill.model, credits=actual, balance_left=balance + bill.estimate - actual)

    async def settle_bill(self, requester: Requester, bill: Bill, credits_used: int | None) -> Charge:
        """Settle an open bill to Hypereal's ``creditsUsed`` (the estimate when it reported none)."""
        bill.charge = await self.settle(
            requester.guild_id, bill.key, bill.model, bill.estimate if credits_used is None else credits_used
        )
        return bill.charge

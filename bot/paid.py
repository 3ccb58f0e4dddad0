"""The one paid-request use case every paid path goes through.

blocked member → content rules → channel policy → a one-time consent notice when the request has one
(voice cloning: ``bot.consent``) → price (exact or an estimate) → confirmation when it is over the
server's threshold → reserve (one ledger write, which also holds the member to the in-flight
limit and the category cooldown) → call Hypereal → settle to the ``creditsUsed`` it reports,
or refund → budget alerts → the receipt (``model · N credits · M left``).

The steps that need Discord go through small ports the cogs implement: :class:`MemberPort` asks
the member to confirm a price, shows where a request waits in the bot's hourly Hypereal queue, and
replaces "thinking…" with a status line once a request has run for ``progress_after`` seconds;
:class:`bot.credits.alerts.AlertPort` posts to the admins' alert channel. Alerts are checked after
every settle, here, so no paid path can forget them. Hypereal's own "Insufficient credits" means
the *operator's* account is empty: the reservation is refunded, the member told so, the operator
warned in the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar

from bot.catalog import Quote
from bot.credits import BudgetAlerts, ChannelPolicy, CreditLedger, GuildSettingsRepo, ReservationNotFound
from bot.errors import BotError, ProviderError
from bot.hypereal import InsufficientCredits as HyperealInsufficientCredits
from bot.hypereal import RequestLimiter
from bot.wording import category_noun, credits_text, sentence_start

if TYPE_CHECKING:
    from bot.moderation import Moderation

log = logging.getLogger(__name__)

T = TypeVar("T")

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
    """Who asks, and where: everything the credit checks need, without Discord objects.

    The names are kept with the reservation so usage reports can name members and channels
    without the members intent.
    """

    guild_id: int
    user_id: int
    role_ids: tuple[int, ...] = ()
    channel_id: int = 0
    parent_channel_id: int | None = None  # a thread's parent channel: channel policy follows it
    display_name: str | None = None
    channel_name: str | None = None
    age_restricted: bool = False  # the channel (a thread: its parent) is marked age-restricted (nsfw)


@dataclass(frozen=True)
class Charge:
    """What a paid result shows: ``model · N credits · M left``."""

    model: str
    credits: int
    balance_left: int

    def cost_line(self) -> str:
        """The line every paid result carries."""
        return f"{self.model} · {credits_text(self.credits)} · {self.balance_left} left"


@dataclass(frozen=True)
class PaidRequest:
    """One paid request as the use case needs it: who, what kind, which model, the price, the idempotency key."""

    requester: Requester
    category: str  # catalog category (chat, image, video, audio_tts, …)
    model: str
    quote: Quote
    key: str
    what: str  # what is being bought, for the confirmation ("A video with kling-3-0-std-t2v")
    texts: tuple[str, ...] = ()  # every prompt and text input: checked against the server's content rules
    # A notice the member must have accepted before anything is reserved (voice cloning): asks when needed,
    # False when they cancel or let it time out. Runs after the refusals, before the price confirmation.
    consent: Callable[[], Awaitable[bool]] | None = None


class MemberPort(Protocol):
    """The member who asked, as the paid flow talks to them (the cog implements it on the interaction)."""

    async def confirm(self, what: str, quote: Quote) -> bool:
        """Ask whether to go ahead at this price; False when they cancel or do not answer."""
        ...

    async def queued(self, position: int, eta: float, quote: Quote) -> None:
        """The request waits in the bot's hourly Hypereal queue at ``position`` (1 = next)."""
        ...

    async def working(self, model: str, quote: Quote, since: int) -> None:
        """The request is still running (``since``: when it started, epoch seconds), or has just left the queue.

        Shown in place of "thinking…" (or of the queue notice), never over a result already posted.
        """
        ...


# A request that has not answered within this many seconds shows a status line instead of "thinking…"
# (Discord's own deadline for a first answer is 3 s; members start to wonder soon after).
PROGRESS_AFTER = 3.0


class ChannelNotAllowed(BotError):
    """The command's category is switched off in this channel."""


class RequestDeclined(BotError):
    """The member cancelled a confirmation or notice, or let it time out: nothing was reserved (they were told)."""


class OperatorOutOfCredits(ProviderError):
    """Hypereal refused for lack of credits on the operator's account (not the server's budget)."""


@dataclass
class Bill:
    """An open reservation inside :meth:`PaidRequests.charging`; settle it once Hypereal answered."""

    key: str
    model: str
    estimate: int
    requester: Requester
    charge: Charge | None = field(default=None)
    handed_over: bool = False  # an async job keeps its reservation: the job service settles it later

    def hand_over(self) -> None:
        """The reservation now belongs to a stored job: leaving the block neither settles nor refunds it."""
        self.handed_over = True


class PaidRequests:
    """Reserve, settle and refund credits around Hypereal calls, with channel policy, confirmation and alerts."""

    def __init__(
        self,
        ledger: CreditLedger,
        channels: ChannelPolicy,
        guild_settings: GuildSettingsRepo,
        alerts: BudgetAlerts,
        limiter: RequestLimiter | None = None,
        moderation: Moderation | None = None,
        *,
        progress_after: float = PROGRESS_AFTER,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.moderation = moderation
        self.progress_after = progress_after
        self.clock = clock
        self.ledger = ledger
        self.channels = channels
        self.guild_settings = guild_settings
        self.alerts = alerts
        self.limiter = limiter

    # ── the use case ─────────────────────────────────────────────────────────

    async def run(self, request: PaidRequest, member: MemberPort, work: Callable[[Bill], Awaitable[T]]) -> T:
        """Member block, content rules, channel policy, consent, confirmation, reservation, ``work(bill)``, settlement.

        ``work`` settles the bill itself when it knows Hypereal's report (``settle_bill``), hands it
        over to a job, or returns; an exception refunds. Raises the refusals (``ChannelNotAllowed``,
        ``RequestDeclined``, ``MemberBlocked``, ``ContentRefused``, the ledger's ``InsufficientCredits``/
        ``QuotaExceeded``/``BudgetFrozen``/``TooManyInFlight``/``CooldownActive``) before anything is reserved.
        """
        requester = request.requester
        if self.moderation is not None:
            await self.moderation.check_member(requester.guild_id, requester.user_id)
            await self.moderation.check_text(requester.guild_id, request.texts, age_restricted=requester.age_restricted)
        await self.check_channel(requester, request.category)
        if request.consent is not None and not await request.consent():
            raise RequestDeclined("Cancelled: nothing was charged.")  # the notice already says so
        if await self.needs_confirmation(requester, request.quote.credits) and not await member.confirm(
            request.what, request.quote
        ):
            raise RequestDeclined("Cancelled: nothing was charged.")
        estimate = request.quote.credits
        async with (
            self.charging(requester, request.category, request.model, estimate, request.key) as bill,
            self._progress(member, request),
        ):
            return await work(bill)

    @asynccontextmanager
    async def _progress(self, member: MemberPort, request: PaidRequest) -> AsyncIterator[None]:
        """Tell the member how their request is doing while the block runs.

        A place in the bot's hourly Hypereal queue is shown as soon as the request has to wait, and
        the status line ("Generating · model · price · started …") when it leaves the queue or once it
        has run for ``progress_after`` seconds — whichever comes first; fast requests show neither.
        """
        since = int(self.clock())
        waiting = False

        async def working() -> None:
            await member.working(request.model, request.quote, since)

        async def notice(position: int, eta: float) -> None:
            nonlocal waiting
            if position > 0:
                waiting = True
                await member.queued(position, eta, request.quote)
            elif waiting:
                waiting = False
                await working()

        async def after_a_while() -> None:
            await asyncio.sleep(self.progress_after)
            if waiting:
                return
            try:
                await working()
            except Exception as exc:  # a status line is not worth failing the request for
                log.info("progress notice failed: %s", type(exc).__name__)

        timer = asyncio.create_task(after_a_while(), name="paid-request-progress")
        try:
            if self.limiter is None:
                yield
            else:
                with self.limiter.observe(notice):
                    yield
        finally:
            # Not awaited: waiting here could swallow a cancellation of the request itself.
            timer.cancel()

    # ── the steps ────────────────────────────────────────────────────────────

    async def check_channel(self, requester: Requester, category: str) -> None:
        """Raise ``ChannelNotAllowed`` (listing where it is allowed) when the category is off here."""
        budget_category = ledger_category(category)
        policy = await self.channels.policy(requester.guild_id, budget_category)
        here = requester.parent_channel_id if requester.parent_channel_id is not None else requester.channel_id
        if policy.allows(here):
            return
        label = sentence_start(category_noun(budget_category))
        where = await self.channels.allowed_channels(requester.guild_id, budget_category)
        if where:
            places = ", ".join(f"<#{channel_id}>" for channel_id in where)
            raise ChannelNotAllowed(f"{label} requests are not enabled in this channel. Use them in {places}.")
        if policy.only_in:
            raise ChannelNotAllowed(
                f"{label} requests are switched off on this server. A server admin can turn them on with /channels."
            )
        raise ChannelNotAllowed(f"{label} requests are switched off in this channel. Use them in another channel.")

    async def needs_confirmation(self, requester: Requester, estimate: int) -> bool:
        """True when the estimate is over the server's confirmation threshold."""
        settings = await self.guild_settings.get(requester.guild_id)
        return estimate > settings.confirm_threshold

    async def reserve(self, requester: Requester, category: str, model: str, estimate: int, key: str) -> None:
        """Check the channel, then hold ``estimate`` credits under ``key`` (raises the ledger's errors)."""
        await self.check_channel(requester, category)
        max_in_flight, cooldown = (
            await self.moderation.limits(requester.guild_id, ledger_category(category))
            if self.moderation is not None
            else (None, None)
        )
        await self.ledger.reserve(
            requester.guild_id,
            requester.user_id,
            requester.role_ids,
            ledger_category(category),
            estimate,
            key,
            channel_id=requester.channel_id,
            model=model,
            user_name=requester.display_name,
            channel_name=requester.channel_name,
            max_in_flight=max_in_flight,
            cooldown=cooldown,
        )

    async def settle(self, guild_id: int, key: str, model: str, actual: int) -> Charge:
        """Charge what Hypereal reported (more or less than the estimate), then check the budget alerts."""
        reservation = await self.ledger.settle(key, actual)
        await self.alerts.after_spend(guild_id)
        balance = await self.ledger.balance(guild_id)
        return Charge(
            model=model, credits=reservation.actual if reservation.actual is not None else actual, balance_left=balance
        )

    async def refund(self, key: str, reason: str) -> None:
        """Give the held estimate back (idempotent)."""
        await self.ledger.refund(key, reason)

    async def refunded_charge(self, guild_id: int | None, model: str) -> Charge:
        """What a refunded request shows: nothing charged, and the balance now."""
        balance = await self.ledger.balance(guild_id) if guild_id else 0
        return Charge(model=model, credits=0, balance_left=balance)

    @asynccontextmanager
    async def charging(
        self, requester: Requester, category: str, model: str, estimate: int, key: str
    ) -> AsyncIterator[Bill]:
        """Reserve on entry; the block calls Hypereal and settles (``settle_bill``) or hands the bill over.

        Any exception before the bill is settled refunds it. Hypereal's own "Insufficient credits"
        becomes ``OperatorOutOfCredits`` with a message for the member and a warning for the operator.
        """
        try:
            await self.reserve(requester, category, model, estimate, key)
        except asyncio.CancelledError:
            # Cancelled while the reservation's transaction ran on the database thread: it may have
            # committed, and nobody would ever settle it. Give it back (a no-op if it never happened).
            with contextlib.suppress(ReservationNotFound):
                await self.refund(key, "cancelled while reserving")
            raise
        bill = Bill(key=key, model=model, estimate=estimate, requester=requester)
        try:
            yield bill
        except HyperealInsufficientCredits as exc:
            if not bill.handed_over:
                await self.refund(key, "hypereal: insufficient credits")
            raise self.operator_out_of_credits(exc, requester.guild_id) from exc
        except BaseException:
            if bill.charge is None and not bill.handed_over:
                await self.refund(key, "request failed before Hypereal accepted it")
            raise
        if bill.charge is None and not bill.handed_over:
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
        needs = f"needs {exc.required}, has {exc.available}" if exc.required is not None else "it has run out"
        return OperatorOutOfCredits(
            f"The bot operator's Hypereal account is out of credits ({needs}). Nothing was charged to this server; "
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

    async def refund_bill(self, bill: Bill, reason: str) -> Charge:
        """Refund an open bill (the result could not be delivered) and close it."""
        await self.refund(bill.key, reason)
        bill.charge = await self.refunded_charge(bill.requester.guild_id, bill.model)
        return bill.charge

"""The paid-request pipeline: reserve → Hypereal → settle, or refund, with the real ledger and the sandbox."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest
from pydantic import SecretStr

from bot.credits import BudgetAlerts, ChannelPolicy, CreditLedger, GuildSettingsRepo, InsufficientCredits
from bot.db import Database
from bot.hypereal import HyperealClient, RequestLimiter, ServerError
from bot.paid import (
    Bill,
    ChannelNotAllowed,
    OperatorOutOfCredits,
    PaidRequest,
    PaidRequests,
    Quote,
    RequestDeclined,
    Requester,
)
from bot.sandbox import SandboxProvider
from tests.conftest import HYPEREAL_KEY

ME = Requester(guild_id=1, user_id=2, role_ids=(3,), channel_id=10)


@pytest.fixture
def db(migrated: Database) -> Database:
    return migrated


@pytest.fixture
def ledger(db: Database) -> CreditLedger:
    return CreditLedger(db, lambda: 1_795_003_200, default_allowance=100, default_period="month")


@pytest.fixture
def paid(db: Database, ledger: CreditLedger) -> PaidRequests:
    repo = GuildSettingsRepo(db, default_confirm_threshold=50)
    return PaidRequests(ledger, ChannelPolicy(db), repo, BudgetAlerts(db, ledger, repo, lambda: 1_795_003_200))


class Member:
    """A member who answers confirmations as told and records what they were shown."""

    def __init__(self, *, accept: bool = True) -> None:
        self.accept = accept
        self.asked: list[tuple[str, str]] = []
        self.shown: list[str] = []  # queue notices and status lines, in order

    async def confirm(self, what: str, quote: Quote) -> bool:
        self.asked.append((what, quote.label))
        return self.accept

    async def queued(self, position: int, eta: float, quote: Quote) -> None:
        self.shown.append(f"queued {position}")

    async def working(self, model: str, quote: Quote, since: int) -> None:
        self.shown.append(f"working {model} {quote.label} {since}")


class Alerts:
    """Records posted alerts (the Discord side of AlertPort)."""

    def __init__(self) -> None:
        self.posted: list[tuple[int, str]] = []

    async def post_alert(self, guild_id: int, channel_id: int, text: str) -> None:
        self.posted.append((channel_id, text))


@pytest.fixture
async def client(sandbox: SandboxProvider) -> AsyncIterator[HyperealClient]:
    async with aiohttp.ClientSession() as http:
        yield HyperealClient(http, sandbox.base_url, SecretStr(HYPEREAL_KEY), timeout=5)


async def test_settles_to_what_hypereal_reports(
    paid: PaidRequests, ledger: CreditLedger, client: HyperealClient, sandbox: SandboxProvider
) -> None:
    sandbox.faults.credits_used = 3
    async with paid.charging(ME, "image", "nano-banana-t2i", 4, "k1") as bill:
        result = await client.generate_image("fox", model="nano-banana-t2i")
        charge = await paid.settle_bill(ME, bill, result.credits_used)
    assert charge.cost_line() == "nano-banana-t2i · 3 credits · 97 left"
    reservation = await ledger.reservation("k1")
    assert reservation is not None
    assert (reservation.state, reservation.actual) == ("settled", 3)
    assert await ledger.check_invariants() == []


async def test_a_failure_before_acceptance_refunds(
    paid: PaidRequests, ledger: CreditLedger, client: HyperealClient, sandbox: SandboxProvider
) -> None:
    sandbox.faults.server_errors = 1
    with pytest.raises(ServerError):
        async with paid.charging(ME, "video", "kling-3-0-std-t2v", 42, "k2"):
            await client.generate_video("kling-3-0-std-t2v", {"prompt": "waves"})
    reservation = await ledger.reservation("k2")
    assert reservation is not None
    assert reservation.state == "refunded"
    assert await ledger.balance(1) == 100


async def test_operator_out_of_credits_refunds_and_says_so(
    paid: PaidRequests,
    ledger: CreditLedger,
    client: HyperealClient,
    sandbox: SandboxProvider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sandbox.credits = 2
    with pytest.raises(OperatorOutOfCredits) as caught:
        async with paid.charging(ME, "image", "nano-banana-t2i", 4, "k3"):
            await client.generate_image("fox", model="nano-banana-t2i")
    assert "operator's Hypereal account is out of credits (needs 4, has 2)" in caught.value.user_message
    assert "Nothing was charged to this server" in caught.value.user_message
    assert await ledger.balance(1) == 100
    assert any("account is empty" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


async def test_the_server_budget_is_checked_before_hypereal_is_called(
    paid: PaidRequests, sandbox: SandboxProvider
) -> None:
    with pytest.raises(InsufficientCredits):
        async with paid.charging(ME, "video", "veo-3-1-i2v", 101, "k4"):
            raise AssertionError("Hypereal must not be called")
    assert sandbox.requests == []


async def test_a_disabled_channel_is_refused_with_where_to_go(paid: PaidRequests, db: Database) -> None:
    policy = ChannelPolicy(db)
    await policy.enable(1, "video", 99)
    with pytest.raises(ChannelNotAllowed, match=r"Use them in <#99>"):
        await paid.reserve(ME, "video", "kling-3-0-std-t2v", 42, "k5")
    thread = Requester(guild_id=1, user_id=2, channel_id=500, parent_channel_id=99)
    await paid.reserve(thread, "video", "kling-3-0-std-t2v", 42, "k6")  # a thread follows its parent
    await policy.disable(1, "chat", 10)
    with pytest.raises(ChannelNotAllowed, match="switched off in this channel"):
        await paid.check_channel(ME, "chat")


async def test_expensive_requests_need_confirmation(paid: PaidRequests) -> None:
    assert not await paid.needs_confirmation(ME, 50)
    assert await paid.needs_confirmation(ME, 51)
    await paid.guild_settings.update(1, confirm_threshold=100)
    assert not await paid.needs_confirmation(ME, 72)


async def test_an_expensive_request_declined_reserves_nothing(paid: PaidRequests, ledger: CreditLedger) -> None:
    member = Member(accept=False)
    request = PaidRequest(ME, "video", "kling-3-0-std-t2v", Quote(72, exact=False), "d1", "A video with x")

    async def work(bill: Bill) -> None:
        raise AssertionError("Hypereal must not be called")

    with pytest.raises(RequestDeclined):
        await paid.run(request, member, work)
    assert member.asked == [("A video with x", "~72 credits")]
    assert await ledger.reservation("d1") is None


async def test_every_settle_checks_the_alerts_in_one_place(paid: PaidRequests, ledger: CreditLedger) -> None:
    """Jobs, chat, images and transcription all settle through PaidRequests.settle: none can forget the alerts."""
    alerts = Alerts()
    paid.alerts.attach(alerts)
    await paid.guild_settings.update(ME.guild_id, alert_channel_id=77, alert_thresholds=(5, 50))
    await paid.reserve(ME, "video", "kling-3-0-std-t2v", 42, "job:1")
    assert alerts.posted == []  # a reservation is not spend yet
    await paid.settle(ME.guild_id, "job:1", "kling-3-0-std-t2v", 46)
    ((channel, text),) = alerts.posted
    assert channel == 77
    assert "passed 5 % of its 100-credit allowance" in text
    assert "used 46 % · 54 of 100 left" in text
    await paid.reserve(ME, "audio_tts", "audio-tts", 2, "job:2")
    await paid.settle(ME.guild_id, "job:2", "audio-tts", 2)
    assert len(alerts.posted) == 1  # each threshold once per period


def _progress_paid(db: Database, ledger: CreditLedger, limiter: RequestLimiter | None = None) -> PaidRequests:
    repo = GuildSettingsRepo(db, default_confirm_threshold=50)
    alerts = BudgetAlerts(db, ledger, repo, lambda: 1_795_003_200)
    return PaidRequests(
        ledger, ChannelPolicy(db), repo, alerts, limiter, progress_after=0.05, clock=lambda: 1_795_003_210.7
    )


def _image_request(key: str) -> PaidRequest:
    return PaidRequest(ME, "image", "nano-banana-t2i", Quote(4, exact=False), key, "An image")


async def test_a_slow_request_shows_its_status_line_once(db: Database, ledger: CreditLedger) -> None:
    paid, member = _progress_paid(db, ledger), Member()

    async def slow(bill: Bill) -> None:
        await asyncio.sleep(0.2)

    await paid.run(_image_request("slow"), member, slow)
    assert member.shown == ["working nano-banana-t2i ~4 credits 1795003210"]


async def test_a_fast_request_shows_no_status_line(db: Database, ledger: CreditLedger) -> None:
    paid, member = _progress_paid(db, ledger), Member()

    async def fast(bill: Bill) -> None:
        return None

    await paid.run(_image_request("fast"), member, fast)
    await asyncio.sleep(0.1)  # the timer would have fired by now
    assert member.shown == []


async def test_a_queued_request_shows_its_place_then_the_status_line(db: Database, ledger: CreditLedger) -> None:
    limiter = RequestLimiter(1, window=0.3)
    await limiter.acquire()  # the hour (here: 0.3 s) is used up
    paid, member = _progress_paid(db, ledger, limiter), Member()

    async def queued_call(bill: Bill) -> None:
        await limiter.acquire()
        await asyncio.sleep(0.01)  # the notices are posted in the background

    await paid.run(_image_request("queued"), member, queued_call)
    # In the queue the timer stays quiet; leaving it brings the status line at once.
    assert member.shown == ["queued 1", "working nano-banana-t2i ~4 credits 1795003210"]

"""Reserve, settle, refund, grant, caps, rollover and concurrency, against a real SQLite file."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from bot.credits import BudgetFrozen, CreditLedger, InsufficientCredits, QuotaExceeded, ReservationNotFound
from bot.db import Database
from bot.errors import InvalidInput
from tests.credits.conftest import Clock

G, U, ROLE_A, ROLE_B = 10, 20, 30, 31


async def _ledger_rows(db: Database) -> int:
    return int(await db.fetch_value("SELECT COUNT(*) FROM ledger"))


async def test_new_guild_starts_with_the_default_allowance(ledger: CreditLedger) -> None:
    budget = await ledger.budget(G)
    assert (budget.balance, budget.reserved, budget.allowance, budget.period) == (100, 0, 100, "month")
    assert budget.resets_at == int(dt.datetime(2026, 12, 1, tzinfo=dt.UTC).timestamp())
    assert await ledger.check_invariants() == []


async def test_reserve_then_settle_charges_what_hypereal_reported(ledger: CreditLedger) -> None:
    await ledger.reserve(G, U, [], "video", 40, "k1")
    assert (await ledger.budget(G)).balance == 60
    assert (await ledger.budget(G)).reserved == 40
    settled = await ledger.settle("k1", 35)
    assert (settled.state, settled.actual) == ("settled", 35)
    budget = await ledger.budget(G)
    assert (budget.balance, budget.reserved) == (65, 0)
    await ledger.reserve(G, U, [], "video", 40, "k2")
    await ledger.settle("k2", 50)  # more than estimated
    assert (await ledger.budget(G)).balance == 15
    assert await ledger.check_invariants() == []


async def test_refund_gives_the_estimate_back(ledger: CreditLedger) -> None:
    await ledger.reserve(G, U, [], "image", 4, "k")
    refunded = await ledger.refund("k", "hypereal 500")
    assert refunded.state == "refunded"
    assert (await ledger.balance(G)) == 100
    assert await ledger.check_invariants() == []


async def test_the_same_key_twice_changes_nothing(ledger: CreditLedger, db: Database) -> None:
    await ledger.reserve(G, U, [], "image", 4, "k")
    rows = await _ledger_rows(db)
    again = await ledger.reserve(G, U, [], "image", 4, "k")
    assert again.state == "held"
    await ledger.settle("k", 4)
    await ledger.settle("k", 9)  # a retried settle (a repeated webhook) is a no-op
    await ledger.refund("k", "late failure")  # a settled reservation stays settled
    assert await _ledger_rows(db) == rows + 1
    assert await ledger.balance(G) == 96
    assert await ledger.check_invariants() == []


async def test_unknown_reservation(ledger: CreditLedger) -> None:
    with pytest.raises(ReservationNotFound):
        await ledger.settle("nope", 1)


async def test_insufficient_credits_and_frozen(ledger: CreditLedger) -> None:
    with pytest.raises(InsufficientCredits) as caught:
        await ledger.reserve(G, U, [], "video", 101, "big")
    assert (caught.value.required, caught.value.available) == (101, 100)
    assert "Ask a server admin to top up" in caught.value.user_message
    await ledger.set_frozen(G, True, by=1)
    with pytest.raises(BudgetFrozen):
        await ledger.reserve(G, U, [], "chat", 1, "c")
    await ledger.set_frozen(G, False, by=1)
    await ledger.reserve(G, U, [], "chat", 1, "c")


async def test_grant_and_set_allowance(ledger: CreditLedger) -> None:
    assert await ledger.grant(G, 50, by=1) == 150
    assert await ledger.grant(G, 50, by=1) == 200  # two grants are two grants
    await ledger.reserve(G, U, [], "video", 30, "held")
    budget = await ledger.set_allowance(G, 500, "week", by=1)
    assert (budget.allowance, budget.period, budget.balance, budget.reserved) == (500, "week", 470, 30)
    assert await ledger.check_invariants() == []


@pytest.mark.parametrize("cap", [-5, 10_000_001, 10**30, True])
async def test_caps_out_of_range_are_refused_and_change_nothing(ledger: CreditLedger, cap: int) -> None:
    with pytest.raises(InvalidInput, match="A cap must be a whole number from 0 to 10,000,000 credits"):
        await ledger.set_user_cap(G, U, "image", cap)
    with pytest.raises(InvalidInput, match="A cap must be"):
        await ledger.set_role_cap(G, ROLE_A, "image", cap)
    caps = await ledger.caps(G)
    assert (caps.default, caps.roles, caps.users) == ({}, {}, {})


async def test_role_caps_highest_wins_and_unlimited_roles(ledger: CreditLedger) -> None:
    await ledger.set_user_cap(G, 0, "image", 5)  # the default for everyone
    await ledger.set_role_cap(G, ROLE_A, "image", 8)
    await ledger.set_role_cap(G, ROLE_B, "image", 12)
    statuses = {s.category: s for s in await ledger.user_status(G, U, [ROLE_A, ROLE_B])}
    assert statuses["image"].cap == 12
    assert statuses["video"].cap is None
    await ledger.reserve(G, U, [ROLE_A, ROLE_B], "image", 12, "a")
    with pytest.raises(QuotaExceeded) as caught:
        await ledger.reserve(G, U, [ROLE_A, ROLE_B], "image", 1, "b")
    assert (caught.value.cap, caught.value.used) == (12, 12)
    assert caught.value.resets_at == (await ledger.budget(G)).resets_at
    assert f"<t:{caught.value.resets_at}:R>" in caught.value.user_message
    with pytest.raises(QuotaExceeded):
        await ledger.reserve(G, 99, [], "image", 6, "default-capped")
    await ledger.set_role_cap(G, ROLE_A, "image", None)  # ROLE_A is now unlimited
    await ledger.reserve(G, U, [ROLE_A, ROLE_B], "image", 1, "c")
    await ledger.set_user_cap(G, U, "image", 13)  # a personal cap overrides roles
    with pytest.raises(QuotaExceeded):
        await ledger.reserve(G, U, [ROLE_A], "image", 1, "d")


async def test_caps_count_settled_actuals_and_ignore_refunds(ledger: CreditLedger) -> None:
    await ledger.set_user_cap(G, U, "video", 50)
    await ledger.reserve(G, U, [], "video", 40, "a")
    await ledger.settle("a", 30)
    await ledger.reserve(G, U, [], "video", 20, "b")
    await ledger.refund("b", "failed")
    await ledger.reserve(G, U, [], "video", 20, "c")
    with pytest.raises(QuotaExceeded):
        await ledger.reserve(G, U, [], "video", 1, "d")


@pytest.mark.parametrize("period", ["day", "week", "month"])
async def test_rollover_happens_once_at_the_exact_boundary(db: Database, clock: Clock, period: str) -> None:
    ledger = CreditLedger(db, clock, default_allowance=10, default_period=period)
    await ledger.reserve(G, U, [], "chat", 7, "a")
    await ledger.settle("a", 7)
    await ledger.reserve(G, U, [], "chat", 2, "held")
    reset = (await ledger.budget(G)).resets_at
    assert reset is not None
    clock.now = reset - 1
    assert await ledger.balance(G) == 1
    clock.now = reset
    budget = await ledger.budget(G)
    assert budget.balance == 8  # the allowance minus what is still held
    assert budget.period_start == reset
    rows = await _ledger_rows(db)
    await asyncio.gather(*(ledger.budget(G) for _ in range(10)))
    clock.now = reset + 1
    await ledger.budget(G)
    assert await _ledger_rows(db) == rows  # nothing double-reset
    await ledger.refund("held", "late")
    assert await ledger.balance(G) == 10
    assert await ledger.check_invariants() == []


async def test_skipped_periods_collapse_into_one_rollover(db: Database, clock: Clock) -> None:
    ledger = CreditLedger(db, clock, default_allowance=10, default_period="day")
    await ledger.reserve(G, U, [], "chat", 10, "a")
    await ledger.settle("a", 10)
    clock.now += 10 * 86_400
    assert await ledger.balance(G) == 10
    assert await db.fetch_value("SELECT COUNT(*) FROM ledger WHERE kind = 'rollover'") == 1


async def test_a_one_off_pool_never_resets(db: Database, clock: Clock) -> None:
    ledger = CreditLedger(db, clock, default_allowance=10, default_period="none")
    await ledger.reserve(G, U, [], "chat", 10, "a")
    await ledger.settle("a", 10)
    clock.now += 400 * 86_400
    assert await ledger.balance(G) == 0
    assert (await ledger.budget(G)).resets_at is None


async def test_1000_concurrent_reservations_against_500_credits(db: Database, clock: Clock) -> None:
    ledger = CreditLedger(db, clock, default_allowance=500, default_period="month")

    async def one(n: int) -> bool:
        try:
            await ledger.reserve(G, n, [], "chat", 1, f"c{n}")
        except InsufficientCredits:
            return False
        return True

    results = await asyncio.gather(*(one(n) for n in range(1000)))
    assert sum(results) == 500
    assert results.count(False) == 500
    budget = await ledger.budget(G)
    assert (budget.balance, budget.reserved) == (0, 500)
    assert await ledger.check_invariants() == []


async def test_invariant_check_finds_drift(ledger: CreditLedger, db: Database) -> None:
    await ledger.budget(G)
    await db.execute("UPDATE guild_budgets SET balance = balance + 1 WHERE guild_id = ?", (G,))
    assert await ledger.check_invariants() == [f"guild {G}: balance 101 != ledger 100"]


async def test_credit_metrics_count_each_change_once(ledger: CreditLedger) -> None:
    credits = ledger.metrics.credits
    await ledger.reserve(1, 2, (), "video", 42, "v1")
    await ledger.reserve(1, 2, (), "video", 42, "v1")  # a retried reserve changes nothing, here too
    await ledger.settle("v1", 40)
    await ledger.settle("v1", 40)
    await ledger.reserve(1, 2, (), "image", 4, "i1")
    await ledger.refund("i1", "failed")
    await ledger.refund("i1", "failed")
    assert credits.labels(action="reserved", category="video")._value.get() == 42
    assert credits.labels(action="settled", category="video")._value.get() == 40
    assert credits.labels(action="reserved", category="image")._value.get() == 4
    assert credits.labels(action="refunded", category="image")._value.get() == 4
    assert credits.labels(action="refunded", category="video")._value.get() == 0

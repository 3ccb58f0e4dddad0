"""Random sequences of reserve/settle/refund/grant/rollover keep the books balanced after every step."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.credits import BudgetFrozen, CreditLedger, InsufficientCredits, QuotaExceeded
from bot.db import SQLiteDatabase
from tests.credits.conftest import Clock

GUILDS = (1, 2)
USERS = (10, 11, 12)

step = st.one_of(
    st.tuples(st.just("reserve"), st.sampled_from(GUILDS), st.sampled_from(USERS), st.integers(0, 60)),
    st.tuples(st.just("settle"), st.integers(0, 30), st.integers(0, 80)),
    st.tuples(st.just("refund"), st.integers(0, 30)),
    st.tuples(st.just("grant"), st.sampled_from(GUILDS), st.integers(-20, 100)),
    st.tuples(st.just("advance"), st.integers(1, 40 * 86_400)),
    st.tuples(st.just("cap"), st.sampled_from(USERS), st.one_of(st.none(), st.integers(0, 80))),
)


async def _run(steps: list[tuple]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        async with await SQLiteDatabase.open(Path(directory) / "p.sqlite3") as db:
            await db.migrate()
            clock = Clock()
            ledger = CreditLedger(db, clock, default_allowance=100, default_period="week")
            keys: list[str] = []
            for number, action in enumerate(steps):
                kind = action[0]
                if kind == "reserve":
                    _, guild, user, estimate = action
                    key = f"r{number}"
                    try:
                        await ledger.reserve(guild, user, [], "image", estimate, key)
                        keys.append(key)
                    except (InsufficientCredits, QuotaExceeded, BudgetFrozen):
                        pass
                elif kind in ("settle", "refund") and keys:
                    key = keys[action[1] % len(keys)]
                    if kind == "settle":
                        await ledger.settle(key, action[2])
                    else:
                        await ledger.refund(key, "test")
                elif kind == "grant":
                    await ledger.grant(action[1], action[2], by=1)
                elif kind == "advance":
                    clock.now += action[1]
                elif kind == "cap":
                    await ledger.set_user_cap(GUILDS[0], action[1], "image", action[2])
                for guild in GUILDS:
                    budget = await ledger.budget(guild)
                    assert budget.reserved >= 0
                assert await ledger.check_invariants() == [], steps[: number + 1]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=25))
def test_books_always_balance(steps: list[tuple]) -> None:
    asyncio.run(_run(steps))

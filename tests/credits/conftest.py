"""A migrated SQLite file and a ledger with a settable clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.credits import CreditLedger
from bot.db import Database, SQLiteDatabase

# Wednesday 2026-11-18 12:00:00 UTC
NOON = 1_795_003_200


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = NOON) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with await SQLiteDatabase.open(tmp_path / "bot.sqlite3") as database:
        await database.migrate()
        yield database


@pytest.fixture
def ledger(db: Database, clock: Clock) -> CreditLedger:
    return CreditLedger(db, clock, default_allowance=100, default_period="month")

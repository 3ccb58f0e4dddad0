"""A migrated database (each backend) and a ledger with a settable clock."""

from __future__ import annotations

import pytest

from bot.credits import CreditLedger
from bot.db import Database

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
def db(migrated: Database) -> Database:
    """A migrated database on each backend (SQLite and PostgreSQL: see ``tests/conftest.py``)."""
    return migrated


@pytest.fixture
def ledger(db: Database, clock: Clock) -> CreditLedger:
    return CreditLedger(db, clock, default_allowance=100, default_period="month")

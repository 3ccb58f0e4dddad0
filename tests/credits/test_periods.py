"""Period boundaries are exact, in UTC."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.credits.periods import next_reset, period_start


def _ts(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=dt.UTC).timestamp())


@pytest.mark.parametrize(
    ("period", "now", "start", "reset"),
    [
        ("day", _ts(2026, 11, 18, 23, 59, 59), _ts(2026, 11, 18), _ts(2026, 11, 19)),
        ("day", _ts(2026, 11, 19), _ts(2026, 11, 19), _ts(2026, 11, 20)),
        ("week", _ts(2026, 11, 22, 23, 59, 59), _ts(2026, 11, 16), _ts(2026, 11, 23)),  # Sunday → Monday 16th
        ("week", _ts(2026, 11, 23), _ts(2026, 11, 23), _ts(2026, 11, 30)),
        ("month", _ts(2026, 11, 30, 23, 59, 59), _ts(2026, 11, 1), _ts(2026, 12, 1)),
        ("month", _ts(2026, 12, 31, 12), _ts(2026, 12, 1), _ts(2027, 1, 1)),
    ],
)
def test_boundaries(period: str, now: int, start: int, reset: int) -> None:
    assert period_start(period, now) == start
    assert next_reset(period, start) == reset


def test_a_one_off_pool_never_resets() -> None:
    assert period_start("none", 12345) == 12345
    assert next_reset("none", 12345) is None


def test_unknown_period() -> None:
    with pytest.raises(ValueError, match="unknown period"):
        period_start("fortnight", 0)

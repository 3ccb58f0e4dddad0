"""Budget periods: when one starts and when it resets, exactly, in UTC."""

from __future__ import annotations

import datetime as dt
from typing import Literal, get_args

# The one definition of a budget period: settings, the ledger and the commands all use it.
Period = Literal["day", "week", "month", "none"]
PERIODS: tuple[str, ...] = get_args(Period)


def _utc(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(timestamp), tz=dt.UTC)


def period_start(period: str, now: float) -> int:
    """The start (Unix seconds) of the period containing ``now``: midnight, Monday midnight, the 1st.

    ``none`` is a one-off pool that never resets: its "period" starts at ``now`` (the pool's creation).
    """
    moment = _utc(now)
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        start = midnight
    elif period == "week":
        start = midnight - dt.timedelta(days=midnight.weekday())
    elif period == "month":
        start = midnight.replace(day=1)
    elif period == "none":
        return int(now)
    else:
        raise ValueError(f"unknown period {period!r}")
    return int(start.timestamp())


def next_reset(period: str, start: int) -> int | None:
    """When the period that began at ``start`` ends (None for ``none``: it never resets)."""
    moment = _utc(start)
    if period == "day":
        return int((moment + dt.timedelta(days=1)).timestamp())
    if period == "week":
        return int((moment + dt.timedelta(days=7)).timestamp())
    if period == "month":
        year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
        return int(moment.replace(year=year, month=month, day=1).timestamp())
    if period == "none":
        return None
    raise ValueError(f"unknown period {period!r}")

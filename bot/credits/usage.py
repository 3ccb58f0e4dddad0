"""Spend reports for /usage: who, which category or which channel spent what, over which days.

Only settled reservations count (what Hypereal really charged). Members and channels are named
from the names stored with each reservation when it was made (``reservations.user_name`` and
``channel_name``), so a report names people without the members intent, and after they left.

The SQL here is plain and portable (SQLite and PostgreSQL): day buckets are integer arithmetic on
epoch seconds, never a date function of one database.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, cast, get_args

from bot.credits.ledger import BUDGET_CATEGORIES
from bot.credits.periods import Period, next_reset, period_start
from bot.db import Database
from bot.errors import InvalidInput
from bot.wording import CATEGORY_LABELS

GroupBy = Literal["member", "category", "channel"]
GROUP_BY: tuple[str, ...] = get_args(GroupBy)
_COLUMN: dict[str, str] = {"member": "user_id", "category": "category", "channel": "COALESCE(channel_id, 0)"}

# The /usage `period` option's values: the server's budget period, the one before it, or a rolling 30 days.
UsagePeriod = Literal["this_period", "last_period", "last_30_days"]
USAGE_PERIODS: tuple[str, ...] = get_args(UsagePeriod)
USAGE_PERIOD_LABELS: dict[str, str] = {
    "this_period": "This period",
    "last_period": "Last period",
    "last_30_days": "Last 30 days",
}

DAY = 86_400
WEEK = 7 * DAY
MAX_DAILY_BARS = 92  # a longer window (a one-off pool running for months) is drawn per week instead
CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class UsageWindow:
    """The time span of a report, [start, end) in Unix seconds (UTC), and its buckets for the chart over time.

    ``origin`` is the UTC midnight on or before ``start``: bucket ``i`` covers
    ``[origin + i * bucket, origin + (i + 1) * bucket)``.
    """

    choice: str
    start: int
    end: int
    origin: int
    bucket: int
    buckets: int

    def bucket_start(self, index: int) -> int:
        """When bucket ``index`` begins (Unix seconds)."""
        return self.origin + index * self.bucket

    def describe(self) -> str:
        """``this period: 1 Dec – 31 Dec 2026 (UTC)`` — what the report covers, in words."""
        first = dt.datetime.fromtimestamp(self.start, dt.UTC)
        last = dt.datetime.fromtimestamp(max(self.start, self.end - 1), dt.UTC)
        same_year = first.year == last.year
        span = f"{first:%-d %b}{'' if same_year else f' {first:%Y}'} – {last:%-d %b %Y}"
        return f"{USAGE_PERIOD_LABELS[self.choice].lower()}: {span} (UTC)"


def _midnight(timestamp: int) -> int:
    # Unix time counts from a UTC midnight and has no leap seconds: every UTC day is 86,400 s.
    return timestamp - timestamp % DAY


def _window(choice: str, start: int, end: int) -> UsageWindow:
    origin = _midnight(start)
    days = max(1, -(-(end - origin) // DAY))
    bucket = DAY if days <= MAX_DAILY_BARS else WEEK
    return UsageWindow(choice, start, end, origin, bucket, max(1, -(-(end - origin) // bucket)))


def usage_window(choice: str, period: Period | str, current_start: int, now: int) -> UsageWindow:
    """The span ``choice`` means for a server whose budget ``period`` began its current run at ``current_start``.

    * ``this_period``: the current budget period, whole (its days still to come are empty);
      a one-off pool (``none``) runs from its start to now.
    * ``last_period``: the budget period before the current one (the calendar day, week or month before).
    * ``last_30_days``: today and the 29 UTC days before it.
    """
    if choice == "this_period":
        end = next_reset(period, current_start)
        return _window(choice, current_start, end if end is not None else now + 1)
    if choice == "last_period":
        if period == "none":
            raise InvalidInput(
                "This server's credits are a one-off pool, so there is no last period. "
                "Pick **This period** or **Last 30 days**."
            )
        return _window(choice, period_start(period, current_start - 1), current_start)
    if choice == "last_30_days":
        today = _midnight(now)
        return _window(choice, today - 29 * DAY, today + DAY)
    raise ValueError(f"unknown usage period {choice!r}")


@dataclass(frozen=True)
class UsageRow:
    """Settled spend of one member, category or channel in a window."""

    key: str  # user id, category name or channel id (as text)
    label: str  # what a person reads: the display name, "#channel" or the category's label
    credits: int
    requests: int
    by_category: Mapping[str, int] = field(default_factory=dict)  # credits per budget category
    requests_by_category: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Usage:
    """A whole /usage report: the rows (largest first) and the spend per bucket of time, per category."""

    by: GroupBy
    window: UsageWindow
    rows: list[UsageRow]
    over_time: dict[str, list[int]]  # category → credits per bucket (categories without spend left out)

    @property
    def total(self) -> int:
        """Credits charged in the window."""
        return sum(row.credits for row in self.rows)

    @property
    def requests(self) -> int:
        """Settled requests in the window."""
        return sum(row.requests for row in self.rows)


def fallback_label(by: str, key: str) -> str:
    """The label of a member or channel no name was stored for (rows from before names were kept)."""
    if by == "member":
        return f"member …{key[-4:]}"
    if by == "channel":
        return "(no channel)" if key == "0" else f"channel …{key[-4:]}"
    return CATEGORY_LABELS.get(key, key)


def stack_by_bucket(cells: Iterable[tuple[int, str, int]], buckets: int) -> dict[str, list[int]]:
    """``(bucket, category, credits)`` cells as one series per category, in the categories' usual order.

    Categories that spent nothing are left out; cells outside ``[0, buckets)`` are ignored.
    """
    series: dict[str, list[int]] = {}
    for index, category, credits in cells:
        if 0 <= index < buckets and credits:
            series.setdefault(category, [0] * buckets)[index] += credits
    order = {category: n for n, category in enumerate(BUDGET_CATEGORIES)}
    return {category: series[category] for category in sorted(series, key=lambda c: (order.get(c, len(order)), c))}


class UsageReport:
    """Queries over settled reservations, for /usage."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def report(
        self,
        guild_id: int,
        window: UsageWindow,
        by: GroupBy | str,
        *,
        cached_name: Callable[[str], str | None] | None = None,
    ) -> Usage:
        """Spend in ``window`` grouped ``by`` member, category or channel, with names, and spend per day.

        A member or channel is named by the latest name stored with its reservations; ``cached_name``
        (the caller's Discord cache, say) names the ones without a stored name; else the id's tail.
        """
        if by not in GROUP_BY:
            raise ValueError(f"unknown grouping {by!r}")
        column = _COLUMN[by]  # a fixed expression, never user input
        cells = await self.db.fetch_all(
            f"SELECT {column} AS key, category, SUM(actual) AS credits, COUNT(*) AS requests FROM reservations"
            " WHERE guild_id = ? AND state = 'settled' AND created_at >= ? AND created_at < ?"
            f" GROUP BY {column}, category",
            (guild_id, window.start, window.end),
        )
        spent: dict[str, dict[str, int]] = {}
        counted: dict[str, dict[str, int]] = {}
        for cell in cells:
            key = str(cell["key"])
            spent.setdefault(key, {})[cell["category"]] = int(cell["credits"] or 0)
            counted.setdefault(key, {})[cell["category"]] = int(cell["requests"])
        names = await self._names(guild_id, by) if by != "category" else {}
        rows = []
        for key, per_category in spent.items():
            name = names.get(key) or (cached_name(key) if cached_name else None)
            if by == "category":
                label = fallback_label(by, key)
            elif name:
                label = f"#{name}" if by == "channel" else name
            else:
                label = fallback_label(by, key)
            rows.append(
                UsageRow(
                    key=key,
                    label=label,
                    credits=sum(per_category.values()),
                    requests=sum(counted[key].values()),
                    by_category=per_category,
                    requests_by_category=counted[key],
                )
            )
        rows.sort(key=lambda row: (-row.credits, row.label.casefold(), row.key))
        return Usage(
            by=cast("GroupBy", by), window=window, rows=rows, over_time=await self._over_time(guild_id, window)
        )

    async def _names(self, guild_id: int, by: str) -> dict[str, str]:
        """The latest stored name of every member (or channel) of the guild that has one."""
        id_column, name_column = ("user_id", "user_name") if by == "member" else ("channel_id", "channel_name")
        rows = await self.db.fetch_all(
            f"SELECT {id_column} AS key, {name_column} AS name, MAX(created_at) AS seen FROM reservations"
            f" WHERE guild_id = ? AND {name_column} IS NOT NULL GROUP BY {id_column}, {name_column}",
            (guild_id,),
        )
        latest: dict[str, tuple[int, str]] = {}
        for row in rows:
            key, seen = str(row["key"]), int(row["seen"])
            if key not in latest or seen > latest[key][0]:
                latest[key] = (seen, str(row["name"]))
        return {key: name for key, (_seen, name) in latest.items()}

    async def _over_time(self, guild_id: int, window: UsageWindow) -> dict[str, list[int]]:
        """Credits per bucket (day, or week for long windows) and category."""
        rows = await self.db.fetch_all(
            "SELECT (created_at - ?) / ? AS bucket, category, SUM(actual) AS credits FROM reservations"
            " WHERE guild_id = ? AND state = 'settled' AND created_at >= ? AND created_at < ?"
            " GROUP BY bucket, category",
            (window.origin, window.bucket, guild_id, window.start, window.end),
        )
        cells = ((int(row["bucket"]), str(row["category"]), int(row["credits"] or 0)) for row in rows)
        return stack_by_bucket(cells, window.buckets)


def csv_cell(value: object) -> str:
    """A cell a spreadsheet shows as text: one starting like a formula gets a leading apostrophe.

    Names are chosen by members; ``=HYPERLINK(…)`` in a display name must not run in an admin's spreadsheet.
    """
    text = str(value)
    return f"'{text}" if text.startswith(CSV_FORMULA_STARTS) else text


def usage_csv(usage: Usage) -> bytes:
    """The report as CSV (UTF-8 with a BOM, so spreadsheets read names right), one line per name and category."""
    out = io.StringIO()
    writer = csv.writer(out)
    if usage.by == "category":
        writer.writerow(["category", "credits", "requests"])
        for row in usage.rows:
            writer.writerow([csv_cell(row.label), row.credits, row.requests])
    else:
        writer.writerow([f"{usage.by}_id", usage.by, "category", "credits", "requests"])
        order = {category: n for n, category in enumerate(BUDGET_CATEGORIES)}
        for row in usage.rows:
            for category in sorted(row.by_category, key=lambda c: order.get(c, len(order))):
                writer.writerow(
                    [
                        row.key,
                        csv_cell(row.label),
                        csv_cell(CATEGORY_LABELS.get(category, category)),
                        row.by_category[category],
                        row.requests_by_category.get(category, 0),
                    ]
                )
    return ("\ufeff" + out.getvalue()).encode("utf-8")

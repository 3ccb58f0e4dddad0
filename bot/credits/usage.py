"""Spend reports for /usage: totals by member, category or channel, as a PNG chart and a CSV file."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Literal

from bot.db import Database

GroupBy = Literal["member", "category", "channel"]
_COLUMN: dict[str, str] = {"member": "user_id", "category": "category", "channel": "channel_id"}
MAX_BARS = 15  # a chart stays readable; the CSV has every row


@dataclass(frozen=True)
class UsageRow:
    """Settled spend of one member, category or channel."""

    key: str  # user id, category name or channel id
    credits: int
    requests: int


class UsageReport:
    """Queries over settled reservations (what was really charged)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def spend(self, guild_id: int, start: int, end: int, by: GroupBy) -> list[UsageRow]:
        """Credits charged in [start, end), grouped, largest first."""
        column = _COLUMN[by]  # a fixed column name, never user input
        rows = await self.db.fetch_all(
            f"SELECT {column} AS key, SUM(actual) AS credits, COUNT(*) AS requests FROM reservations"
            " WHERE guild_id = ? AND state = 'settled' AND created_at >= ? AND created_at < ?"
            f" GROUP BY {column} ORDER BY credits DESC, key",
            (guild_id, start, end),
        )
        return [UsageRow(str(row["key"]), int(row["credits"] or 0), int(row["requests"])) for row in rows]


def usage_csv(rows: list[UsageRow], by: GroupBy, labels: dict[str, str] | None = None) -> bytes:
    """The rows as CSV (UTF-8), with a readable label column when given."""
    labels = labels or {}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([by, "label", "credits", "requests"])
    for row in rows:
        writer.writerow([row.key, labels.get(row.key, row.key), row.credits, row.requests])
    return out.getvalue().encode("utf-8")


def usage_chart_png(title: str, rows: list[UsageRow], labels: dict[str, str] | None = None) -> bytes:
    """A horizontal bar chart of the top rows (no global pyplot state: safe to call from any task)."""
    labels = labels or {}
    shown = rows[:MAX_BARS]
    # Imported here: matplotlib costs ~0.3 s and tens of MB at start-up, and charts are rare.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, max(2.5, 0.45 * len(shown) + 1.2)), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    names = [labels.get(row.key, row.key)[:32] for row in reversed(shown)]
    values = [row.credits for row in reversed(shown)]
    axes.barh(names or ["(no spend)"], values or [0], color="#5865F2")
    axes.set_xlabel("credits")
    axes.set_title(title)
    for index, value in enumerate(values):
        axes.text(value, index, f" {value}", va="center", fontsize=8)
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()

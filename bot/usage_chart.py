"""The /usage chart: one PNG, two panels, drawn for Discord's dark theme.

Top: spend per member, channel or category (the largest ``MAX_BARS``), each bar split by category.
Bottom: spend over time, one column per day of the window (per week for very long windows), stacked
by category. The background is the 3D preview's, so both sit in the chat without a frame.

Names are member-chosen text: characters the font cannot draw are replaced (matplotlib would warn
for each), control and format characters dropped, and ``$`` escaped (it would start math mode).
"""

from __future__ import annotations

import datetime as dt
import io
import unicodedata
from typing import TYPE_CHECKING, Literal

from bot.credits.usage import Usage
from bot.preview import BACKGROUND
from bot.wording import CATEGORY_LABELS

if TYPE_CHECKING:
    from matplotlib.axes import Axes

MAX_BARS = 15  # a chart stays readable; the CSV has every row
MAX_LABEL = 32
MAX_DATE_TICKS = 16
TEXT = "#dbdee1"  # Discord's dark-theme text colour
MUTED = "#949ba4"  # its secondary text
GRID = "#3f4147"
MISSING_GLYPH = "□"
# Okabe–Ito colours (told apart with the common colour-vision deficiencies), bright enough on dark grey.
CATEGORY_COLOURS: dict[str, str] = {
    "chat": "#56B4E9",
    "image": "#E69F00",
    "image_edit": "#F0E442",
    "video": "#CC79A7",
    "audio": "#009E73",
    "model3d": "#D55E00",
}
OTHER_COLOUR = "#5865F2"


class _Labels:
    """Makes member-chosen text drawable with the chart's font."""

    def __init__(self, charmap: set[int]) -> None:
        self.charmap = charmap

    def __call__(self, text: str, limit: int = MAX_LABEL) -> str:
        kept = []
        for char in text:
            if unicodedata.category(char) in ("Cc", "Cf"):
                continue  # bidi overrides, zero-width characters: invisible at best, reorder the label at worst
            kept.append(char if char == " " or ord(char) in self.charmap else MISSING_GLYPH)
        shown = "".join(kept).strip() or "?"
        if len(shown) > limit:
            shown = shown[: limit - 1] + "…"
        return shown.replace("$", r"\$")


def _date_labels(usage: Usage) -> list[str]:
    """``1 Dec``, ``2``, ``3`` … (the month named at the first bucket and where it changes), thinned to fit."""
    window = usage.window
    step = max(1, -(-window.buckets // MAX_DATE_TICKS))
    labels = []
    previous_month = None
    for index in range(window.buckets):
        day = dt.datetime.fromtimestamp(window.bucket_start(index), dt.UTC)
        month = (day.year, day.month)
        if index % step:
            labels.append("")
            continue
        labels.append(f"{day.day}" if month == previous_month else f"{day.day} {day:%b}")
        previous_month = month
    return labels


def usage_chart_png(usage: Usage, title: str) -> bytes:
    """The report as a PNG (no global pyplot state: safe in a worker thread). CPU-bound: call it in a thread."""
    # Imported here: matplotlib costs ~0.3 s and tens of MB at start-up, and charts are rare.
    from matplotlib import font_manager
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ft2font import FT2Font

    font = font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans"))
    clean = _Labels(set(FT2Font(font).get_charmap()))

    shown = usage.rows[:MAX_BARS]
    top_height = max(1.6, 0.42 * len(shown) + 0.9)
    bottom_height = 3.0
    figure = Figure(figsize=(9, top_height + bottom_height + 0.9), dpi=100, facecolor=BACKGROUND)
    FigureCanvasAgg(figure)
    grid = figure.add_gridspec(2, 1, height_ratios=[top_height, bottom_height], hspace=0.45)
    bars, over_time = figure.add_subplot(grid[0]), figure.add_subplot(grid[1])
    _dark(bars, "x")
    _dark(over_time, "y")
    figure.suptitle(clean(title, limit=120), color=TEXT, fontsize=12)

    categories = [c for c in CATEGORY_COLOURS if any(row.by_category.get(c) for row in shown)]
    categories += sorted({c for row in shown for c in row.by_category} - set(categories))
    if shown:
        positions = list(range(len(shown)))[::-1]  # the largest on top
        left = [0] * len(shown)
        for category in categories:
            values = [row.by_category.get(category, 0) for row in shown]
            colour = CATEGORY_COLOURS.get(category, OTHER_COLOUR)
            bars.barh(positions, values, left=left, color=colour, height=0.7)
            left = [a + b for a, b in zip(left, values, strict=True)]
        bars.set_yticks(positions, labels=[clean(row.label) for row in shown], color=TEXT, fontsize=9)
        for position, row in zip(positions, shown, strict=True):
            bars.text(row.credits, position, f" {row.credits}", va="center", color=TEXT, fontsize=8)
        bars.set_xlim(0, max(row.credits for row in shown) * 1.12 or 1)
    else:
        bars.set_yticks([])
        bars.text(0.5, 0.5, "No credits were spent in this period.", ha="center", va="center",
                  color=MUTED, transform=bars.transAxes)  # fmt: skip
    hidden = len(usage.rows) - len(shown)
    more = f" (top {len(shown)} of {len(usage.rows)}; the CSV has all)" if hidden > 0 else ""
    bars.set_xlabel(f"credits{more}", color=MUTED, fontsize=9)
    bars.set_title(f"By {usage.by}", color=TEXT, fontsize=10, loc="left")

    window = usage.window
    x = list(range(window.buckets))
    bottom = [0] * window.buckets
    for category, values in usage.over_time.items():
        colour = CATEGORY_COLOURS.get(category, OTHER_COLOUR)
        label = CATEGORY_LABELS.get(category, category)
        over_time.bar(x, values, bottom=bottom, color=colour, width=0.8, label=label)
        bottom = [a + b for a, b in zip(bottom, values, strict=True)]
    over_time.set_xticks(x, labels=_date_labels(usage), color=TEXT, fontsize=8)
    over_time.set_xlim(-0.6, window.buckets - 0.4)
    over_time.set_ylim(0, max(max(bottom, default=0) * 1.1, 1))
    over_time.set_ylabel("credits", color=MUTED, fontsize=9)
    per = "day" if window.bucket == 86_400 else "week"
    over_time.set_title(f"Spend per {per} (UTC)", color=TEXT, fontsize=10, loc="left")
    if usage.over_time:
        # Above the panel, right of its title: never over a column. It keys the bars above too.
        legend = over_time.legend(
            loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=True, ncols=min(6, len(usage.over_time))
        )
        legend.get_frame().set_facecolor(BACKGROUND)
        legend.get_frame().set_edgecolor(GRID)
        for text in legend.get_texts():
            text.set_color(TEXT)
    out = io.BytesIO()
    figure.savefig(out, format="png", facecolor=BACKGROUND, bbox_inches="tight", pad_inches=0.25)
    return out.getvalue()


def _dark(axes: Axes, grid_axis: Literal["x", "y"]) -> None:
    """Dark-theme axes: background like the chat's, light ticks, a faint grid along the values, no box."""
    axes.set_facecolor(BACKGROUND)
    axes.tick_params(colors=MUTED, labelcolor=TEXT, labelsize=8)
    for side, spine in axes.spines.items():
        spine.set_visible(side in ("left", "bottom"))
        spine.set_color(GRID)
    axes.grid(axis=grid_axis, color=GRID, linewidth=0.6)
    axes.set_axisbelow(True)

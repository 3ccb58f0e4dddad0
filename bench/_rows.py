"""Machine-readable result rows: every bench script prints its own lines and also one ``BENCH_ROW {json}`` per figure.

``bench/table.py`` (``make bench``) collects them into one Markdown table:
figure | ours | baseline (named) | ratio | bar.
"""

from __future__ import annotations

import json
import sys

PREFIX = "BENCH_ROW "


def emit(figure: str, ours: str, baseline: str, ratio: str = "", bar: str = "") -> None:
    """Print one row; ``baseline`` names what it is ("plain sqlite3: 9,800 pairs/s"), ``bar`` what it must clear."""
    row = {"figure": figure, "ours": ours, "baseline": baseline, "ratio": ratio, "bar": bar}
    print(PREFIX + json.dumps(row, ensure_ascii=False), flush=True)


def ratio(ours: float, baseline: float, digits: int = 2) -> str:
    """``ours / baseline`` as text, or "n/a" when the baseline is zero or missing."""
    if not baseline or baseline != baseline:  # zero or NaN
        return "n/a"
    return f"{ours / baseline:.{digits}f}"


def verdict(passed: bool, bar: str) -> str:
    """The bar with ✓ or ✗ (a figure, not a CI gate: ``make bench`` never fails on one)."""
    return f"{'✓' if passed else '✗'} {bar}"


def parse(line: str) -> dict[str, str] | None:
    """The row in a line printed by a script, or None when the line is not a row."""
    if not line.startswith(PREFIX):
        return None
    try:
        data = json.loads(line[len(PREFIX) :])
    except json.JSONDecodeError:
        print(f"bench: ignored a malformed row: {line.strip()}", file=sys.stderr)
        return None
    return {key: str(data.get(key, "")) for key in ("figure", "ours", "baseline", "ratio", "bar")}

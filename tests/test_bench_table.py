"""`make bench`'s table: rows collected from each script's output, one Markdown table; fails only if a script does."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench import table
from bench._rows import emit, parse

ROOT = Path(__file__).resolve().parent.parent


def test_a_row_round_trips_and_other_lines_are_not_rows(capsys: pytest.CaptureFixture[str]) -> None:
    emit("Webhook at 100 req/s", "100 req/s | p99 2 ms", "bare aiohttp: 100 req/s", "1.00", "✓ non-200: 0")
    line = capsys.readouterr().out
    assert parse(line) == {
        "figure": "Webhook at 100 req/s",
        "ours": "100 req/s | p99 2 ms",
        "baseline": "bare aiohttp: 100 req/s",
        "ratio": "1.00",
        "bar": "✓ non-200: 0",
    }
    assert parse("webhook endpoint: 100 req/s\n") is None
    assert parse("BENCH_ROW {not json\n") is None


def test_the_table_has_the_five_columns_and_escapes_pipes() -> None:
    rows = [{"figure": "a", "ours": "1 | 2", "baseline": "named: 3", "ratio": "0.5", "bar": "✓ x"}]
    lines = table.render(rows).splitlines()
    assert lines[0] == "| figure | ours | baseline (named) | ratio | bar |"
    assert lines[1] == "|---|---|---|---|---|"
    assert lines[2] == "| a | 1 \\| 2 | named: 3 | 0.5 | ✓ x |"


def test_a_script_keeps_its_lines_and_its_rows_are_collected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "fails.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from bench._rows import emit\n"
        "print('its own line')\n"
        "emit('figure one', '1 s', 'peer: 2 s', '0.50', '')\n"
        "sys.exit(3)\n"
    )
    status, rows, _seconds = table.run(script, [])
    assert status == 3
    assert [row["figure"] for row in rows] == ["figure one"]
    out = capsys.readouterr().out
    assert "its own line" in out
    assert "BENCH_ROW" not in out


def test_every_bench_script_is_in_the_table_and_emits_rows() -> None:
    scripts = {p.stem for p in (ROOT / "bench").glob("*.py") if not p.stem.startswith("_") and p.stem != "table"}
    assert scripts == set(table.SCRIPTS)
    for name in scripts:
        assert "emit(" in (ROOT / "bench" / f"{name}.py").read_text(), name


def test_table_exits_1_only_when_a_script_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ok = tmp_path / "ok.py"
    ok.write_text(f"import sys\nsys.path.insert(0, {str(ROOT)!r})\nfrom bench._rows import emit\nemit('f', '✗', 'b')\n")
    bad = tmp_path / "bad.py"
    bad.write_text("raise SystemExit(2)\n")
    monkeypatch.setattr(table, "BENCH", tmp_path)
    monkeypatch.setattr(sys, "argv", ["table.py"])
    monkeypatch.setattr(table, "SCRIPTS", {"ok": ([], [])})
    assert table.main() == 0  # a figure that misses its bar never fails the run
    monkeypatch.setattr(table, "SCRIPTS", {"ok": ([], []), "bad": ([], [])})
    assert table.main() == 1

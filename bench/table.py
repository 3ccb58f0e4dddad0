"""Run every benchmark and print one Markdown table: figure | ours | baseline (named) | ratio | bar.

    python bench/table.py [--only ledger webhook ...] [--quick]

Each script runs in its own process, one after the other (the figures are noisy enough without two
benchmarks sharing the cores). Their own lines pass through as they come; their ``BENCH_ROW`` lines
are collected. Exit status 1 only when a script failed (its rows are then missing and the table says
so), never because of a figure: the machines here are noisy and the figures are for reading.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._rows import parse

BENCH = Path(__file__).resolve().parent
# Order and arguments for `make bench` (whole run ≈ 5 min on 2 busy cores); --quick is for trying the table.
SCRIPTS: dict[str, tuple[list[str], list[str]]] = {
    "ledger": ([], ["--pairs", "1000", "--concurrency", "100"]),
    "chat_stream": (
        ["--runs", "5", "--seconds", "20", "--streams", "1", "3", "10"],
        ["--runs", "2", "--seconds", "8", "--streams", "1", "3"],
    ),
    "ack": (["--commands", "50", "--slow", "5"], ["--commands", "20"]),
    "webhook": (["--rates", "100", "500", "1500", "--seconds", "3"], ["--rates", "100", "500", "--seconds", "2"]),
    "footprint": (["--guilds", "1000", "10000"], ["--guilds", "1000"]),
    "delivery": (["--megabytes", "100"], ["--megabytes", "20"]),
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(rows: list[dict[str, str]]) -> str:
    """The Markdown table."""
    lines = ["| figure | ours | baseline (named) | ratio | bar |", "|---|---|---|---|---|"]
    for row in rows:
        cells = (row["figure"], row["ours"], row["baseline"], row["ratio"], row["bar"])
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def run(script: Path, args: list[str]) -> tuple[int, list[dict[str, str]], float]:
    """(exit status, rows, seconds) of one script; its other lines are printed as they come."""
    started = time.monotonic()
    rows: list[dict[str, str]] = []
    print(f"── bench/{script.name} {' '.join(args)}", flush=True)
    with subprocess.Popen(
        [sys.executable, str(script), *args],
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            row = parse(line)
            if row is None:
                print(line, end="", flush=True)
            else:
                rows.append(row)
    return process.returncode, rows, time.monotonic() - started


def main() -> int:
    """Run the scripts, print the table; 1 when a script failed."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=sorted(SCRIPTS), help="run only these scripts")
    parser.add_argument("--quick", action="store_true", help="short runs (to try the table, not to read figures)")
    args = parser.parse_args()
    rows: list[dict[str, str]] = []
    failed: list[str] = []
    began = time.monotonic()
    for name, (full, quick) in SCRIPTS.items():
        if args.only and name not in args.only:
            continue
        status, script_rows, seconds = run(BENCH / f"{name}.py", quick if args.quick else full)
        print(f"── bench/{name}.py: exit {status} after {seconds:.0f} s, {len(script_rows)} rows", flush=True)
        rows.extend(script_rows)
        if status != 0:
            failed.append(name)
            rows.append({"figure": f"bench/{name}.py", "ours": f"FAILED (exit {status})", "baseline": "",
                         "ratio": "", "bar": "the script must run"})  # fmt: skip
    ran_ledger = not args.only or "ledger" in args.only
    if ran_ledger and not any("PostgreSQL" in row["figure"] for row in rows):
        # bench/ledger.py measures PostgreSQL once the scale-out issue (13) adds it; until then, say so.
        rows.append({"figure": "Ledger, PostgreSQL: reserve+settle pairs/s", "ours": "not measured",
                     "baseline": "plain asyncpg: not measured", "ratio": "",
                     "bar": "bench/ledger.py has no PostgreSQL run yet (issue 13)"})  # fmt: skip
    print()
    print(f"make bench: {len(rows)} figures in {time.monotonic() - began:.0f} s", flush=True)
    print()
    print(render(rows))
    if failed:
        print(f"\nfailed: {', '.join(failed)} (see their output above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

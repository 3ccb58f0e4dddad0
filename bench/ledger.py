"""Ledger throughput: reserve+settle pairs per second under 500 concurrent tasks, against plain sqlite3.

    python bench/ledger.py [--pairs 5000] [--concurrency 500]

The baseline does the same transactions (BEGIN IMMEDIATE; check balance; insert reservation;
insert ledger row; update counters — then the settle likewise) with the stdlib ``sqlite3`` in one
thread, no asyncio. The figure is the ratio ours / baseline; the drift check must print "none".
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._rows import emit, ratio, verdict
from bot.credits import CreditLedger
from bot.db import SQLiteDatabase, discover_migrations

GUILD = 1


async def ours(path: Path, pairs: int, concurrency: int) -> tuple[float, list[str]]:
    async with await SQLiteDatabase.open(path) as db:
        await db.migrate()
        ledger = CreditLedger(db, time.time, default_allowance=10 * pairs, default_period="month")
        await ledger.budget(GUILD)
        queue: asyncio.Queue[int] = asyncio.Queue()
        for n in range(pairs):
            queue.put_nowait(n)

        async def worker() -> None:
            while not queue.empty():
                n = queue.get_nowait()
                await ledger.reserve(GUILD, n % 100, [], "image", 4, f"k{n}")
                await ledger.settle(f"k{n}", 3)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        return pairs / elapsed, await ledger.check_invariants()


def baseline(path: Path, pairs: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    for migration in discover_migrations():
        conn.executescript(migration.path.read_text())
    now = int(time.time())
    conn.execute(
        "INSERT INTO guild_budgets (guild_id, period, allowance, balance, reserved, period_start, created_at)"
        " VALUES (?, 'month', ?, ?, 0, ?, ?)",
        (GUILD, 10 * pairs, 10 * pairs, now, now),
    )
    started = time.perf_counter()
    for n in range(pairs):
        key = f"k{n}"
        conn.execute("BEGIN IMMEDIATE")
        balance = conn.execute("SELECT balance FROM guild_budgets WHERE guild_id = ?", (GUILD,)).fetchone()[0]
        assert balance >= 4
        conn.execute(
            "INSERT INTO reservations (key, guild_id, user_id, category, estimate, state, period_start, created_at)"
            " VALUES (?, ?, ?, 'image', 4, 'held', ?, ?)",
            (key, GUILD, n % 100, now, now),
        )
        conn.execute(
            "INSERT INTO ledger (key, guild_id, kind, balance_delta, reserved_delta, created_at)"
            " VALUES (?, ?, 'reserve', -4, 4, ?)",
            (f"reserve:{key}", GUILD, now),
        )
        conn.execute("UPDATE guild_budgets SET balance = balance - 4, reserved = reserved + 4 WHERE guild_id = ?",
                     (GUILD,))  # fmt: skip
        conn.execute("COMMIT")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("SELECT * FROM reservations WHERE key = ?", (key,)).fetchone()
        conn.execute("UPDATE reservations SET state = 'settled', actual = 3 WHERE key = ?", (key,))
        conn.execute(
            "INSERT INTO ledger (key, guild_id, kind, balance_delta, reserved_delta, created_at)"
            " VALUES (?, ?, 'settle', 1, -4, ?)",
            (f"settle:{key}", GUILD, now),
        )
        conn.execute("UPDATE guild_budgets SET balance = balance + 1, reserved = reserved - 4 WHERE guild_id = ?",
                     (GUILD,))  # fmt: skip
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return pairs / elapsed


def main() -> None:
    """Run both and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        rate, drift = asyncio.run(ours(Path(directory) / "ours.sqlite3", args.pairs, args.concurrency))
        base = baseline(Path(directory) / "base.sqlite3", args.pairs)
    print(f"ledger (aiosqlite, {args.concurrency} concurrent tasks): {rate:,.0f} reserve+settle pairs/s")
    print(f"baseline (plain sqlite3, one thread):            {base:,.0f} pairs/s")
    print(f"ratio ours/baseline: {rate / base:.2f}")
    print(f"drift between counters and ledger: {drift or 'none'}")
    emit(
        f"Ledger, SQLite: reserve+settle pairs/s ({args.concurrency} concurrent tasks)",
        f"{rate:,.0f} pairs/s, drift {'none' if not drift else len(drift)}",
        f"plain sqlite3, one thread: {base:,.0f} pairs/s",
        ratio(rate, base),
        verdict(not drift and rate / base >= 0.38, "drift none; ratio ≥ 0.38 (its level before issue 13)"),
    )


if __name__ == "__main__":
    main()

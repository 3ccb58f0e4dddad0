"""Ledger throughput: reserve+settle pairs per second under 500 concurrent tasks, against the plain drivers.

    python bench/ledger.py [--pairs 5000] [--concurrency 500] [--postgres URL | --no-postgres]

SQLite: the baseline does the same transactions (BEGIN IMMEDIATE; check balance; insert reservation;
insert ledger row; update counters — then the settle likewise) with the stdlib ``sqlite3`` in one
thread, no asyncio. PostgreSQL: the same transactions with plain asyncpg on one connection (the
budget row locked ``FOR UPDATE``, as ours does), against our ledger on its pool; then our ledger in
two processes on one database (the scale-out case), pairs/s of both together. The figures are the
ratios ours / baseline; every drift check must print "none". PostgreSQL comes from ``--postgres``
(or ``BENCH_DATABASE_URL``), else a throwaway server started from ``initdb``/``pg_ctl`` on PATH.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._rows import emit, ratio, verdict
from bot.credits import CreditLedger
from bot.db import SQLiteDatabase, discover_migrations, open_postgres

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


async def ours_pg(
    url: str, pairs: int, concurrency: int, *, first: int = 0, check: bool = True
) -> tuple[float, list[str]]:
    """Our ledger on PostgreSQL: ``pairs`` reserve+settle pairs (keys from ``first``) by ``concurrency`` tasks."""
    db = await open_postgres(url)
    try:
        await db.migrate()
        ledger = CreditLedger(db, time.time, default_allowance=10**9, default_period="month")
        await ledger.budget(GUILD)
        queue: asyncio.Queue[int] = asyncio.Queue()
        for n in range(first, first + pairs):
            queue.put_nowait(n)

        async def worker() -> None:
            while not queue.empty():
                n = queue.get_nowait()
                await ledger.reserve(GUILD, n % 100, [], "image", 4, f"k{n}")
                await ledger.settle(f"k{n}", 3)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        return pairs / elapsed, (await ledger.check_invariants(GUILD) if check else [])
    finally:
        await db.close()


async def baseline_pg(url: str, pairs: int) -> float:
    """The same transactions with plain asyncpg on one connection."""
    conn = await asyncpg.connect(url)
    try:
        now = int(time.time())
        await conn.execute(
            "INSERT INTO guild_budgets (guild_id, period, allowance, balance, reserved, period_start, created_at)"
            " VALUES ($1, 'month', $2, $2, 0, $3, $3) ON CONFLICT (guild_id) DO NOTHING",
            GUILD + 1, 10 * pairs, now,
        )  # fmt: skip
        started = time.perf_counter()
        for n in range(pairs):
            key = f"b{n}"
            async with conn.transaction():
                balance = await conn.fetchval(
                    "SELECT balance FROM guild_budgets WHERE guild_id = $1 FOR UPDATE", GUILD + 1
                )
                assert balance >= 4
                await conn.execute(
                    "INSERT INTO reservations (key, guild_id, user_id, category, estimate, state, period_start,"
                    " created_at) VALUES ($1, $2, $3, 'image', 4, 'held', $4, $4)",
                    key, GUILD + 1, n % 100, now,
                )  # fmt: skip
                await conn.execute(
                    "INSERT INTO ledger (key, guild_id, kind, balance_delta, reserved_delta, created_at)"
                    " VALUES ($1, $2, 'reserve', -4, 4, $3)",
                    f"reserve:{key}", GUILD + 1, now,
                )  # fmt: skip
                await conn.execute(
                    "UPDATE guild_budgets SET balance = balance - 4, reserved = reserved + 4 WHERE guild_id = $1",
                    GUILD + 1,
                )
            async with conn.transaction():
                await conn.fetchrow("SELECT * FROM guild_budgets WHERE guild_id = $1 FOR UPDATE", GUILD + 1)
                await conn.fetchrow("SELECT * FROM reservations WHERE key = $1", key)
                await conn.execute("UPDATE reservations SET state = 'settled', actual = 3 WHERE key = $1", key)
                await conn.execute(
                    "INSERT INTO ledger (key, guild_id, kind, balance_delta, reserved_delta, created_at)"
                    " VALUES ($1, $2, 'settle', 1, -4, $3)",
                    f"settle:{key}", GUILD + 1, now,
                )  # fmt: skip
                await conn.execute(
                    "UPDATE guild_budgets SET balance = balance + 1, reserved = reserved - 4 WHERE guild_id = $1",
                    GUILD + 1,
                )
        return pairs / (time.perf_counter() - started)
    finally:
        await conn.close()


def two_processes(url: str, pairs: int, concurrency: int) -> tuple[float, list[str]]:
    """Our ledger in two OS processes on one database at once: pairs/s of both together, then the drift check."""
    half = pairs // 2
    command = [sys.executable, __file__, "--worker", url, str(half), str(concurrency)]
    started = time.perf_counter()
    workers = [subprocess.Popen([*command, str(n * half)], stdout=subprocess.PIPE) for n in range(2)]
    for worker in workers:
        worker.wait(timeout=600)
        if worker.returncode != 0:
            raise SystemExit("bench/ledger.py: a PostgreSQL worker process failed")
    elapsed = time.perf_counter() - started

    async def drift() -> list[str]:
        db = await open_postgres(url)
        try:
            ledger = CreditLedger(db, time.time, default_allowance=0, default_period="month")
            return await ledger.check_invariants(GUILD)  # the baseline's guild has no ledger rows by design
        finally:
            await db.close()

    return 2 * half / elapsed, asyncio.run(drift())


@contextlib.contextmanager
def postgres(url: str | None) -> Iterator[str | None]:
    """The PostgreSQL URL to measure on: the one given, or a throwaway local server (None when neither)."""
    if url:
        yield url
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.postgres_server import LocalPostgres, PostgresServer  # the test suite's throwaway server

    local = LocalPostgres.from_path()
    if local is None:
        yield None
        return
    local.start()
    try:
        yield PostgresServer(url=local.url, owned=True).create_database_blocking()
    finally:
        local.stop()


def bench_postgres(url: str, pairs: int, concurrency: int) -> None:
    """The PostgreSQL rows: ours vs plain asyncpg, and two processes on one database."""
    rate, drift = asyncio.run(ours_pg(url, pairs, concurrency, first=10**6))
    base = asyncio.run(baseline_pg(url, pairs))
    both, drift_two = two_processes(url, pairs, concurrency)
    print(f"ledger on PostgreSQL (asyncpg pool, {concurrency} concurrent tasks): {rate:,.0f} pairs/s")
    print(f"baseline (plain asyncpg, one connection):                 {base:,.0f} pairs/s")
    print(f"ratio ours/baseline: {rate / base:.2f}")
    print(f"two processes on one PostgreSQL: {both:,.0f} pairs/s together")
    print(f"drift between counters and ledger: {(drift + drift_two) or 'none'}")
    emit(
        f"Ledger, PostgreSQL: reserve+settle pairs/s ({concurrency} concurrent tasks, one process)",
        f"{rate:,.0f} pairs/s, drift {'none' if not drift else len(drift)}",
        f"plain asyncpg, one connection: {base:,.0f} pairs/s",
        ratio(rate, base),
        verdict(not drift, "drift none"),
    )
    emit(
        "Ledger, PostgreSQL: two bot processes on one database, pairs/s together",
        f"{both:,.0f} pairs/s, drift {'none' if not drift_two else len(drift_two)}",
        f"one process: {rate:,.0f} pairs/s",
        ratio(both, rate),
        verdict(not drift_two, "drift none across processes"),
    )


def main() -> None:
    """Run both and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--postgres", default=os.environ.get("BENCH_DATABASE_URL"), help="a PostgreSQL URL")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)  # url pairs concurrency first: one process
    args = parser.parse_args()
    if args.worker:
        url, pairs, concurrency, first = args.worker
        rate, _ = asyncio.run(ours_pg(url, int(pairs), int(concurrency), first=int(first), check=False))
        print(json.dumps({"rate": rate}))
        return
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
    if args.no_postgres:
        return
    with postgres(args.postgres) as url:
        if url is None:
            print("PostgreSQL: not measured (no --postgres/BENCH_DATABASE_URL and no initdb/pg_ctl on PATH)")
            return
        bench_postgres(url, max(1000, args.pairs // 2), args.concurrency)


if __name__ == "__main__":
    main()

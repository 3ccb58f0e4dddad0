"""The storage interface, the same on both backends: transactions, placeholders, cancellation, values."""

from __future__ import annotations

import asyncio

import pytest

from bot.db import Database, DatabaseError, run_to_completion
from bot.kv import KeyValueStore
from bot.storage.placeholders import numbered


def test_placeholders_are_numbered_outside_quotes_and_comments() -> None:
    assert numbered("SELECT ? , '?' , \"a?\" , ? -- ?\n, ?") == "SELECT $1 , '?' , \"a?\" , $2 -- ?\n, $3"
    assert numbered("SELECT 'it''s ?', ?") == "SELECT 'it''s ?', $1"


async def test_a_transaction_rolls_back_on_error(database: Database) -> None:
    await database.execute("CREATE TABLE t (x BIGINT)")

    async def insert_then_fail() -> None:
        async with database.transaction() as tx:
            await tx.execute("INSERT INTO t VALUES (?)", (1,))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await insert_then_fail()
    assert await database.fetch_value("SELECT count(*) FROM t") == 0


async def test_concurrent_transactions_are_serialised_by_a_row_lock(database: Database) -> None:
    await database.execute("CREATE TABLE counter (id BIGINT PRIMARY KEY, n BIGINT NOT NULL)")
    await database.execute("INSERT INTO counter VALUES (1, 0)")

    async def increment() -> None:
        async with database.transaction() as tx:
            n = await tx.fetch_value("SELECT n FROM counter WHERE id = 1" + database.for_update)
            await asyncio.sleep(0)  # another writer would interleave here without the lock
            await tx.execute("UPDATE counter SET n = ? WHERE id = 1", (n + 1,))

    await asyncio.gather(*(increment() for _ in range(50)))
    assert await database.fetch_value("SELECT n FROM counter") == 50


async def test_values_come_back_the_same_on_both_backends(database: Database) -> None:
    await database.execute("CREATE TABLE v (id BIGINT PRIMARY KEY, n BIGINT, r DOUBLE PRECISION, s TEXT)")
    big = 1_234_567_890_123_456_789  # a Discord snowflake is 64-bit
    assert await database.execute("INSERT INTO v VALUES (?, ?, ?, ?)", (big, 5, 1.5, "x")) == 1
    row = await database.fetch_one("SELECT id, n, r, s FROM v WHERE id = ?", (big,))
    assert row is not None
    assert (row["id"], row[1], row["r"], row["s"]) == (big, 5, 1.5, "x")
    total = await database.fetch_value("SELECT COALESCE(SUM(n), 0) FROM v")
    assert total == 5
    assert isinstance(total, int)  # PostgreSQL's SUM(bigint) is numeric: still an int here
    assert await database.execute("UPDATE v SET n = n + 1 WHERE n >= ?", (0,)) == 1
    assert await database.execute("INSERT INTO v VALUES (?, 1, 1, 'y') ON CONFLICT (id) DO NOTHING", (big,)) == 0
    await database.execute_many("INSERT INTO v (id, n) VALUES (?, ?)", [(1, 1), (2, 2)])
    assert await database.fetch_value("SELECT COUNT(*) FROM v") == 3
    assert [r["id"] for r in await database.fetch_all("SELECT id FROM v ORDER BY id")] == [1, 2, big]
    with pytest.raises(DatabaseError):
        await database.execute("INSERT INTO v (id) VALUES (?)", (1,))


async def test_a_cancellation_landing_as_the_statement_finishes_is_not_swallowed() -> None:
    """The statement is done but its waiter not yet woken when shutdown cancels: the caller must still stop.

    Swallowed, the caller ran on into its next (hour-long) sleep and its stop() waited for ever: a bot that
    SIGTERM did not stop (1 start in ~50 on a loaded machine, the retention task's start-up pass).
    """
    statement: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    caller = asyncio.create_task(run_to_completion(statement))
    await asyncio.sleep(0)  # the caller now waits on the statement
    statement.set_result(1)  # finished: the caller's wake-up is scheduled, not run
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller


async def test_a_background_reader_cancelled_at_any_moment_stops(database: Database) -> None:
    """A task that reads, then sleeps long (as the retention and poller loops do) ends on cancel wherever it is."""

    async def read_then_sleep() -> None:
        while True:
            await database.fetch_all("SELECT 1")
            await asyncio.sleep(3600)

    for steps in range(40):
        task = asyncio.create_task(read_then_sleep())
        for _ in range(steps):
            await asyncio.sleep(0)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=5)
        assert done, f"cancelled after {steps} steps, the task ran on"
        assert task.cancelled()


async def test_a_transaction_cancelled_at_any_await_leaves_the_database_usable(database: Database) -> None:
    """Shutdown cancels tasks wherever they are: no cancellation point may leave a transaction open."""
    await database.execute("CREATE TABLE t (x BIGINT)")

    async def write(n: int) -> None:
        async with database.transaction() as tx:
            await tx.execute("INSERT INTO t VALUES (?)", (n,))
            await asyncio.sleep(0)
            await tx.execute("INSERT INTO t VALUES (?)", (-n,))

    # Cancel after 0, 1, 2, … loop iterations: that lands on every await in turn (BEGIN, each
    # statement, COMMIT, and the moments between them), and past the end once it is done.
    finished = cancelled = 0
    # 0…29 loop iterations land on every await of a fast backend; the longer ones let a slower one (PostgreSQL on a
    # busy machine) finish some transactions too.
    schedule = [*range(30), 60, 120, 250, 500, 1000, 2000, 4000, 8000, 16000, 32000]
    for steps in schedule:
        task = asyncio.create_task(write(steps + 1))
        for _ in range(steps):
            await asyncio.sleep(0)
        task.cancel()
        try:
            await task
            finished += 1
        except asyncio.CancelledError:
            cancelled += 1
        await database.execute("INSERT INTO t VALUES (0)")  # the next writer is never stuck
        rows = {
            row[0] for row in await database.fetch_all("SELECT x FROM t WHERE x = ? OR x = ?", (steps + 1, -steps - 1))
        }
        assert rows in (set(), {steps + 1, -steps - 1}), f"half a transaction survived ({steps} steps)"
    assert cancelled > 0
    assert finished > 0
    assert await database.fetch_value("SELECT count(*) FROM t WHERE x = 0") == len(schedule)


async def test_migrations_apply_once_and_record_the_version(database: Database) -> None:
    version = await database.migrate()
    assert version >= 4
    assert await database.schema_version() == version
    assert await database.migrate() == version  # nothing applied twice
    assert await database.fetch_value("SELECT COUNT(*) FROM ledger") == 0


async def test_the_key_value_store_upserts_on_both_backends(migrated: Database) -> None:
    kv = KeyValueStore(migrated)
    assert await kv.get("k") is None
    await kv.set("k", "1")
    await kv.set("k", "2")
    assert await kv.get("k") == "2"

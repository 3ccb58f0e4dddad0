"""The database wrapper and the migrations runner, on real SQLite files."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

import pytest

from bot.db import Database, DatabaseUnusable, MigrationError, discover_migrations, preflight


async def test_open_configures_wal_and_foreign_keys(tmp_path: Path) -> None:
    async with await Database.open(tmp_path / "sub" / "bot.sqlite3") as db:
        assert await db.fetch_value("PRAGMA journal_mode") == "wal"
        assert await db.fetch_value("PRAGMA foreign_keys") == 1
        assert await db.fetch_value("PRAGMA busy_timeout") == 5000


async def test_packaged_migrations_apply_and_are_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    expected = len(discover_migrations())
    async with await Database.open(path) as db:
        assert await db.migrate() == expected
        tables = {row[0] for row in await db.fetch_all("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"guild_budgets", "ledger", "reservations", "jobs", "chat_turns", "user_caps", "role_caps"} <= tables
    async with await Database.open(path) as db:
        assert await db.migrate() == expected  # reopening applies nothing twice
        assert await db.user_version() == expected


def _write(directory: Path, name: str, sql: str) -> None:
    (directory / name).write_text(sql, encoding="utf-8")


async def test_failing_migration_leaves_database_and_version_unchanged(tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    _write(migrations, "0001_first.sql", "CREATE TABLE a (x INTEGER);\nINSERT INTO a VALUES (1);\n")
    _write(
        migrations,
        "0002_broken.sql",
        "CREATE TABLE b (y INTEGER);\nINSERT INTO a VALUES (2);\nINSERT INTO missing_table VALUES (3);\n",
    )
    async with await Database.open(tmp_path / "bot.sqlite3") as db:
        with pytest.raises(MigrationError, match=r"0002_broken\.sql"):
            await db.migrate(discover_migrations(migrations))
        assert await db.user_version() == 1
        assert await db.fetch_value("SELECT count(*) FROM sqlite_master WHERE name = 'b'") == 0
        assert [row[0] for row in await db.fetch_all("SELECT x FROM a")] == [1]


async def test_trigger_bodies_are_not_split(tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    _write(
        migrations,
        "0001_trigger.sql",
        "-- a comment; with a semicolon\nCREATE TABLE t (x INTEGER);\n"
        "CREATE TRIGGER t_no_delete BEFORE DELETE ON t\nBEGIN\n    SELECT RAISE(ABORT, 'no; deletes');\nEND;\n",
    )
    async with await Database.open(":memory:") as db:
        assert await db.migrate(discover_migrations(migrations)) == 1
        await db.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(Exception, match="no; deletes"):
            await db.execute("DELETE FROM t")


def test_misnamed_or_gapped_migrations_are_refused(tmp_path: Path) -> None:
    _write(tmp_path, "0001_ok.sql", "SELECT 1;")
    _write(tmp_path, "0003_gap.sql", "SELECT 1;")
    with pytest.raises(MigrationError, match=r"0003_gap\.sql"):
        discover_migrations(tmp_path)
    _write(tmp_path, "2_bad.sql", "SELECT 1;")
    with pytest.raises(MigrationError, match=r"2_bad\.sql"):
        discover_migrations(tmp_path)


async def test_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    async with await Database.open(tmp_path / "bot.sqlite3") as db:
        await db.execute("CREATE TABLE t (x INTEGER)")

        async def insert_then_fail() -> None:
            async with db.transaction() as conn:
                await conn.execute("INSERT INTO t VALUES (1)")
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            await insert_then_fail()
        assert await db.fetch_value("SELECT count(*) FROM t") == 0


async def test_concurrent_transactions_are_serialised(tmp_path: Path) -> None:
    async with await Database.open(tmp_path / "bot.sqlite3") as db:
        await db.execute("CREATE TABLE counter (n INTEGER)")
        await db.execute("INSERT INTO counter VALUES (0)")

        async def increment() -> None:
            async with db.transaction() as conn:
                async with conn.execute("SELECT n FROM counter") as cursor:
                    (n,) = await cursor.fetchone()
                await asyncio.sleep(0)  # another writer would interleave here without the lock
                await conn.execute("UPDATE counter SET n = ?", (n + 1,))

        await asyncio.gather(*(increment() for _ in range(100)))
        assert await db.fetch_value("SELECT n FROM counter") == 100


async def test_run_in_transaction_commits_or_rolls_back_as_one(tmp_path: Path) -> None:
    async with await Database.open(tmp_path / "bot.sqlite3") as db:
        await db.execute("CREATE TABLE t (x INTEGER)")

        def add_two(conn: sqlite3.Connection) -> int:
            conn.execute("INSERT INTO t VALUES (1)")
            conn.execute("INSERT INTO t VALUES (2)")
            return int(conn.execute("SELECT COUNT(*) FROM t").fetchone()[0])

        def add_then_fail(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO t VALUES (3)")
            raise ValueError("changed my mind")

        assert await db.run_in_transaction(add_two) == 2
        with pytest.raises(ValueError, match="changed my mind"):
            await db.run_in_transaction(add_then_fail)
        assert [row[0] for row in await db.fetch_all("SELECT x FROM t ORDER BY x")] == [1, 2]
        # Interleaved with the per-statement transactions, nothing mixes.
        results = await asyncio.gather(
            *(db.run_in_transaction(add_two) for _ in range(20)),
            *(db.execute("INSERT INTO t VALUES (9)") for _ in range(20)),
        )
        assert len(results) == 40
        assert await db.fetch_value("SELECT COUNT(*) FROM t") == 2 + 40 + 20


async def test_a_transaction_cancelled_at_any_await_leaves_the_connection_usable(tmp_path: Path) -> None:
    """Shutdown cancels tasks wherever they are: no cancellation point may leave a transaction open."""
    async with await Database.open(tmp_path / "bot.sqlite3") as db:
        await db.execute("CREATE TABLE t (x INTEGER)")

        async def write(n: int) -> None:
            async with db.transaction() as conn:
                await conn.execute("INSERT INTO t VALUES (?)", (n,))
                await conn.execute("INSERT INTO t VALUES (?)", (-n,))

        # Cancel after 0, 1, 2, … loop iterations: that lands on every await in turn (BEGIN, each
        # statement, COMMIT, and the moments between them), and past the end once it is done.
        finished = cancelled = 0
        for steps in range(60):
            task = asyncio.create_task(write(steps + 1))
            for _ in range(steps):
                await asyncio.sleep(0)
            task.cancel()
            try:
                await task
                finished += 1
            except asyncio.CancelledError:
                cancelled += 1
            # The next writer must never meet "cannot start a transaction within a transaction".
            await db.execute("INSERT INTO t VALUES (0)")
            rows = {
                row[0] for row in await db.fetch_all("SELECT x FROM t WHERE x = ? OR x = ?", (steps + 1, -steps - 1))
            }
            assert rows in (set(), {steps + 1, -steps - 1}), f"half a transaction survived ({steps} steps)"
        assert cancelled > 0
        assert finished > 0
        assert await db.fetch_value("SELECT count(*) FROM t WHERE x = 0") == 60


async def test_a_cancelled_run_in_transaction_commits_all_or_nothing(tmp_path: Path) -> None:
    async with await Database.open(tmp_path / "bot.sqlite3") as db:
        await db.execute("CREATE TABLE t (x INTEGER)")

        def add_pair(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO t VALUES (1)")
            conn.execute("INSERT INTO t VALUES (2)")

        for steps in range(10):
            task = asyncio.create_task(db.run_in_transaction(add_pair))
            for _ in range(steps):
                await asyncio.sleep(0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await db.execute("INSERT INTO t VALUES (3)")
        count = await db.fetch_value("SELECT count(*) FROM t WHERE x IN (1, 2)")
        assert count % 2 == 0


async def test_migrate_refuses_a_database_newer_than_the_code(tmp_path: Path) -> None:
    async with await Database.open(tmp_path / "bot.sqlite3") as db:
        await db.execute("PRAGMA user_version = 99")
        with pytest.raises(MigrationError, match=r"schema version 99, newer than this version of the bot knows"):
            await db.migrate()
        assert await db.user_version() == 99


def test_preflight_reads_the_version_without_writing(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    assert preflight(path) is None  # not there yet: fine, and not created by the check
    assert not path.exists()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    before = path.read_bytes()
    assert preflight(path, known_version=2) == 1
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("content", "words"),
    [(b"garbage" * 300, "is not a SQLite database or is damaged"), (b"SQLite format 3\x00" + b"\xff" * 200, "damaged")],
)
def test_preflight_refuses_a_damaged_file_and_leaves_it(tmp_path: Path, content: bytes, words: str) -> None:
    path = tmp_path / "bot.sqlite3"
    path.write_bytes(content)
    with pytest.raises(DatabaseUnusable, match=words) as info:
        preflight(path)
    assert str(path) in str(info.value)
    assert path.read_bytes() == content


def test_preflight_without_creating_looks_at_the_nearest_existing_directory(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "bot.sqlite3"
    assert preflight(path, create_directory=False) is None
    assert not (tmp_path / "a").exists()
    (tmp_path / "a").write_text("not a directory", encoding="utf-8")
    with pytest.raises(DatabaseUnusable, match="is not a directory"):
        preflight(path, create_directory=False)

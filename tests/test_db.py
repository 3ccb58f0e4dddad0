"""The database wrapper and the migrations runner, on real SQLite files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.db import DatabaseUnusable, MigrationError, SQLiteDatabase, discover_migrations, preflight


async def test_open_configures_wal_and_foreign_keys(tmp_path: Path) -> None:
    async with await SQLiteDatabase.open(tmp_path / "sub" / "bot.sqlite3") as db:
        assert await db.fetch_value("PRAGMA journal_mode") == "wal"
        assert await db.fetch_value("PRAGMA foreign_keys") == 1
        assert await db.fetch_value("PRAGMA busy_timeout") == 5000


async def test_packaged_migrations_apply_and_are_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    expected = len(discover_migrations())
    async with await SQLiteDatabase.open(path) as db:
        assert await db.migrate() == expected
        tables = {row[0] for row in await db.fetch_all("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"guild_budgets", "ledger", "reservations", "jobs", "chat_turns", "user_caps", "role_caps"} <= tables
    async with await SQLiteDatabase.open(path) as db:
        assert await db.migrate() == expected  # reopening applies nothing twice
        assert await db.schema_version() == expected


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
    async with await SQLiteDatabase.open(tmp_path / "bot.sqlite3") as db:
        with pytest.raises(MigrationError, match=r"0002_broken\.sql"):
            await db.migrate(discover_migrations(migrations))
        assert await db.schema_version() == 1
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
    async with await SQLiteDatabase.open(":memory:") as db:
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


async def test_migrate_refuses_a_database_newer_than_the_code(tmp_path: Path) -> None:
    async with await SQLiteDatabase.open(tmp_path / "bot.sqlite3") as db:
        await db.execute("PRAGMA user_version = 99")
        with pytest.raises(MigrationError, match=r"schema version 99, newer than this version of the bot knows"):
            await db.migrate()
        assert await db.schema_version() == 99


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

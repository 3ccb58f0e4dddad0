"""The database interface of the bot, and where its two backends are chosen.

Every repository takes a :class:`Database` and uses only its five statement calls and
:meth:`Database.transaction` (see :mod:`bot.storage.base`). :func:`open_database` opens SQLite
(``DATABASE_PATH``, the embedded default) or PostgreSQL (``DATABASE_URL``), and brings it up to date.
"""

from __future__ import annotations

from bot.storage.base import (
    MIGRATIONS_DIR,
    Database,
    DatabaseError,
    DatabaseUnusable,
    Executor,
    Migration,
    MigrationError,
    Params,
    Row,
    discover_migrations,
    latest_version,
    migrations_dir,
    run_to_completion,
)
from bot.storage.sqlite import ProcessLock, SQLiteDatabase, preflight, split_statements

__all__ = [
    "MIGRATIONS_DIR",
    "Database",
    "DatabaseError",
    "DatabaseUnusable",
    "Executor",
    "Migration",
    "MigrationError",
    "Params",
    "ProcessLock",
    "Row",
    "SQLiteDatabase",
    "discover_migrations",
    "latest_version",
    "migrations_dir",
    "open_postgres",
    "preflight",
    "run_to_completion",
    "split_statements",
]


async def open_postgres(url: str) -> Database:
    """Connect to PostgreSQL at ``url`` (imported lazily: a SQLite-only install never loads asyncpg)."""
    from bot.storage.postgres import PostgresDatabase

    return await PostgresDatabase.open(url)

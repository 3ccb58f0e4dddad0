"""The storage interface every repository uses, whichever database runs underneath.

Five calls — :meth:`Executor.execute`, ``execute_many``, ``fetch_one``, ``fetch_all``,
``fetch_value`` — and :meth:`Database.transaction`, whose block gets the same five calls bound to
one transaction. SQL is written once for both backends with ``?`` placeholders and portable SQL
(``INSERT … ON CONFLICT … DO NOTHING``, ``RETURNING``); the few places where the dialects must
differ read a fragment from the database (:attr:`Database.for_update`). Rows are mappings by
column name that also index by position (``sqlite3.Row`` and ``asyncpg.Record`` both are).
"""

from __future__ import annotations

import asyncio
import re
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from bot.errors import ConfigError

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent.parent / "migrations"
_MIGRATION_NAME = re.compile(r"^(\d{4})_[A-Za-z0-9_]+\.sql$")

Params = Sequence[Any]
Row = Any  # sqlite3.Row or asyncpg.Record: row["column"] and row[0] both work
T = TypeVar("T")


async def run_to_completion(awaitable: Awaitable[T]) -> T:
    """Await ``awaitable`` to its end even if the caller is cancelled meanwhile; then re-raise the cancellation.

    For database statements: once queued on the database thread they run whether or not anyone
    waits, so giving up half way would only hide what state the connection is in.
    """
    task = asyncio.ensure_future(awaitable)
    cancelled: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError as exc:
            # Kept even when the statement has just finished: a cancellation that lands between the
            # statement's end and this wake-up is still the caller's (shutdown's) and must not be lost,
            # or a background task cancelled at that moment runs on and its stop() waits for ever.
            cancelled = exc
        except BaseException:
            break  # the task's own error: task.result() raises it below
    if cancelled is not None:
        if not task.cancelled():
            task.exception()  # retrieved, so asyncio does not warn about it; the cancellation wins
        raise cancelled
    return task.result()


class MigrationError(Exception):
    """A migration file failed; the database was left at the version it had before that file."""


class DatabaseUnusable(ConfigError):
    """The database cannot be used as it is; the message names it and what to do. Nothing was changed."""


class DatabaseError(Exception):
    """A statement failed in the database (either backend): constraint, full disk, lost connection…"""


@dataclass(frozen=True)
class Migration:
    """One numbered SQL file of a dialect's migrations folder."""

    version: int
    path: Path

    @property
    def name(self) -> str:
        return self.path.name


def migrations_dir(dialect: str) -> Path:
    """The folder of numbered SQL files for ``dialect`` (``sqlite`` or ``postgresql``)."""
    return MIGRATIONS_DIR / dialect


def discover_migrations(directory: Path | None = None) -> list[Migration]:
    """Return the migrations in ``directory`` (default: SQLite's) sorted by version; names must be ``NNNN_name.sql``.

    Raises ``MigrationError`` for a misnamed file or a duplicated or missing version number, so a
    typo in a file name cannot silently skip a migration.
    """
    directory = migrations_dir("sqlite") if directory is None else directory
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"migration file {path.name!r} is not named NNNN_description.sql")
        found.append(Migration(int(match.group(1)), path))
    found.sort(key=lambda m: m.version)
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise MigrationError(
                f"migration versions must be 1, 2, 3…; found {migration.name} where {expected:04d} belongs"
            )
    return found


def latest_version(directory: Path | None = None) -> int:
    """The schema version this code migrates up to (the highest migration number)."""
    migrations = discover_migrations(directory)
    return migrations[-1].version if migrations else 0


class Executor(ABC):
    """The five statement calls, on a database (each its own transaction) or inside one transaction."""

    @abstractmethod
    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; returns the number of rows it changed."""

    @abstractmethod
    async def execute_many(self, sql: str, rows: Iterable[Params]) -> None:
        """Run one statement once per parameter row."""

    @abstractmethod
    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        """The first row, or None."""

    @abstractmethod
    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        """Every row."""

    async def fetch_value(self, sql: str, params: Params = ()) -> Any:
        """The first column of the first row, or None."""
        row = await self.fetch_one(sql, params)
        return None if row is None else row[0]

    async def lock(self, key: int) -> None:
        """Inside a transaction: wait until no other transaction holds ``key``, then hold it until the end.

        For work that several processes must take turns at without a row to lock (the shared request
        budget). SQLite's write transaction already excludes every other writer: nothing to do there.
        """
        del key  # the base (SQLite) needs none: its write transaction holds the whole database


class Database(Executor):
    """A database the bot keeps everything in: :class:`bot.storage.sqlite.SQLiteDatabase` or ``PostgresDatabase``."""

    #: ``sqlite`` or ``postgresql``: for the rare statement that must differ (and for logs).
    dialect: str = ""
    #: Appended to a ``SELECT`` inside a transaction to lock its rows until the end: `` FOR UPDATE`` on
    #: PostgreSQL; empty on SQLite, whose write transactions hold the whole database already.
    for_update: str = ""
    #: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (claim rows no other process holds); empty on SQLite.
    skip_locked: str = ""
    #: True when several bot processes may share this database (PostgreSQL).
    shared: bool = False
    #: What to name the database in messages (a file path, or a URL without its password).
    label: str = ""

    @abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[Executor]:
        """A write transaction: committed when the block ends, rolled back if it raises or is cancelled."""

    @abstractmethod
    async def schema_version(self) -> int:
        """The last migration applied (0 for an empty database)."""

    @abstractmethod
    async def migrate(self, migrations: Iterable[Migration] | None = None) -> int:
        """Apply every migration newer than :meth:`schema_version`, each in its own transaction; the new version."""

    @abstractmethod
    async def close(self) -> None:
        """Close the connection(s); waits for a running transaction."""

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def check_version(current: int, pending: Sequence[Migration]) -> None:
    """Refuse a database written by a newer version of the bot (old code would write rows it does not understand)."""
    known = max((m.version for m in pending), default=0)
    if current > known:
        raise MigrationError(
            f"the database is at schema version {current}, newer than this version of the bot knows ({known})"
        )

"""The one SQLite connection the bot uses, and the migrations runner.

One aiosqlite connection serves the whole process. SQLite allows one writer at a time, so every
write transaction goes through :meth:`Database.transaction`, which serialises writers on an
``asyncio.Lock`` and opens ``BEGIN IMMEDIATE`` so the write lock is taken up front (no
read-then-upgrade deadlocks). Reads share the connection: one issued while a :meth:`transaction`
block is open between its statements sees that block's uncommitted writes (the ledger's hot paths
use :meth:`run_in_transaction`, which no read can interleave with).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from bot.errors import ConfigError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
_MIGRATION_NAME = re.compile(r"^(\d{4})_[A-Za-z0-9_]+\.sql$")

Params = Mapping[str, Any] | Sequence[Any]
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
            if task.done():
                break
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
    """The database file cannot be used as it is; the message names the file and what to do. Nothing was changed."""


def latest_version(directory: Path = MIGRATIONS_DIR) -> int:
    """The schema version this code migrates up to (the highest migration number)."""
    migrations = discover_migrations(directory)
    return migrations[-1].version if migrations else 0


def preflight(path: str | Path, *, known_version: int | None = None, create_directory: bool = True) -> int | None:
    """Check, before anything writes to it, that the database at ``path`` can be used; returns its schema version.

    None when the file does not exist yet (its directory is writable, so the bot can create it). Raises
    :class:`DatabaseUnusable` — naming the file and what to do — for a directory that cannot be created or
    written (SQLite's WAL journal lives beside the file), a file this user cannot read and write, a file that is
    not a SQLite database or is damaged, and a database written by a newer version of the bot. The file is only
    ever opened read-only here, so a refused file is left byte for byte as it was. ``create_directory=False``
    (``python -m bot check``) creates nothing either.
    """
    if str(path) == ":memory:":
        return None
    file = Path(path).absolute()
    _check_directory(file, create=create_directory)
    if not file.exists():
        return None
    if file.is_dir():
        raise DatabaseUnusable(f"DATABASE_PATH {file} is a directory: point DATABASE_PATH at a file inside it.")
    if not os.access(file, os.R_OK | os.W_OK):
        raise DatabaseUnusable(
            f"The database {file} cannot be read and written by this user (uid {os.getuid()}): fix its owner or "
            "permissions (in Docker: chown it to the image's user), or point DATABASE_PATH elsewhere."
        )
    version = _read_version(file)
    known = latest_version() if known_version is None else known_version
    if version > known:
        raise DatabaseUnusable(
            f"The database {file} was written by a newer version of the bot (schema version {version}; this "
            f"version knows up to {known}): run that newer version, or restore a backup made by this one. "
            "The file was not changed."
        )
    return version


def _check_directory(file: Path, *, create: bool) -> None:
    """The file's directory exists (or is created) and this user may create files in it."""
    directory = file.parent
    hint = (
        "point DATABASE_PATH at a writable place (in Docker: /data/bot.sqlite3, on the volume) or fix its permissions"
    )
    if create:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise DatabaseUnusable(
                f"Cannot create the directory {directory} for the database {file.name} ({reason.lower()}): {hint}."
            ) from None
    else:
        # Creating nothing: the nearest existing ancestor must let the bot create the rest later.
        while not directory.exists() and directory != directory.parent:
            directory = directory.parent
    if not directory.is_dir():
        raise DatabaseUnusable(f"DATABASE_PATH {file}: {directory} is not a directory: {hint}.")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise DatabaseUnusable(
            f"Cannot write in {directory}, where the database {file.name} and its journal live "
            f"(permission denied for uid {os.getuid()}): {hint}."
        )


def _read_version(file: Path) -> int:
    """``PRAGMA user_version`` read through a read-only connection (refusing a file that is not a sound database)."""
    try:
        conn = sqlite3.connect(f"{file.as_uri()}?mode=ro", uri=True)
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # reads the schema: a damaged one fails
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise DatabaseUnusable(
            f"The database {file} is not a SQLite database or is damaged ({exc}): restore it from a backup "
            "(README: Backups), or move it away to start with an empty database. The file was not changed."
        ) from None
    return version


@dataclass(frozen=True)
class Migration:
    """One numbered SQL file from ``migrations/``."""

    version: int
    path: Path

    @property
    def name(self) -> str:
        return self.path.name


def discover_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Return the migrations in ``directory`` sorted by version; names must be ``NNNN_name.sql``.

    Raises ``MigrationError`` for a misnamed file or a duplicated or missing version number, so a
    typo in a file name cannot silently skip a migration.
    """
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


class Database:
    """A single aiosqlite connection with WAL, foreign keys, a busy timeout and serialised write transactions."""

    def __init__(self, conn: aiosqlite.Connection, path: str) -> None:
        self._conn = conn
        self._write_lock = asyncio.Lock()
        self.path = path

    @classmethod
    async def open(cls, path: str | Path, *, busy_timeout_ms: int = 5000) -> Database:
        """Open (creating parent directories) and configure the database at ``path`` (``":memory:"`` works too)."""
        path_str = str(path)
        if path_str != ":memory:":
            Path(path_str).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, sqlite3 must not open implicit transactions.
        conn = await aiosqlite.connect(path_str, isolation_level=None)
        conn.row_factory = sqlite3.Row
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=NORMAL")
        await conn.execute("PRAGMA foreign_keys=ON")
        await conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        return cls(conn, path_str)

    @classmethod
    async def open_readonly(cls, path: str | Path, *, busy_timeout_ms: int = 5000) -> Database:
        """Open an existing database for reading only (``python -m bot check`` and backup verification)."""
        conn = await aiosqlite.connect(f"{Path(path).absolute().as_uri()}?mode=ro", uri=True, isolation_level=None)
        conn.row_factory = sqlite3.Row
        await conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        return cls(conn, str(path))

    async def close(self) -> None:
        """Close the connection (waits for a running transaction to finish)."""
        async with self._write_lock:
            await self._conn.close()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """A write transaction: ``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back if the block raises.

        Writers are serialised on an ``asyncio.Lock`` because they share one connection: two
        coroutines interleaving statements on it would mix their transactions.

        Cancellation-safe: a statement handed to the database thread runs even when the awaiting
        task is cancelled, so ``BEGIN``, ``COMMIT`` and ``ROLLBACK`` are awaited to completion
        (the cancellation is re-raised afterwards), and whatever ends the block — an error, a
        cancellation at any ``await`` inside it — leaves the connection outside a transaction
        before the lock is released. Otherwise the next writer would meet "cannot start a
        transaction within a transaction" for ever.
        """
        async with self._write_lock:
            try:
                await run_to_completion(self._conn.execute("BEGIN IMMEDIATE"))
                yield self._conn
            except BaseException:
                await run_to_completion(self._rollback_if_open())
                raise
            try:
                await run_to_completion(self._conn.execute("COMMIT"))
            except BaseException:
                await run_to_completion(self._rollback_if_open())
                raise

    async def _rollback_if_open(self) -> None:
        """Roll back the connection's transaction, if one is open (statements queued before run first)."""
        # The probe itself goes through the database thread's queue, so every statement queued before
        # it — including one whose awaiting task was cancelled — has run by the time it answers.
        if await self._conn._execute(lambda: self._conn._conn.in_transaction):
            await self._conn.execute("ROLLBACK")

    async def run_in_transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work(conn)`` inside ``BEGIN IMMEDIATE`` … ``COMMIT`` in one hop to the database thread.

        For hot paths (the credit ledger): :meth:`transaction` pays a thread hop per statement,
        this pays one per transaction. ``work`` is plain synchronous sqlite3 code; it must not
        touch the event loop. It raises to roll back. Uses aiosqlite's worker-thread queue
        (``_execute``/``_conn``, private but stable in the pinned 0.22 release; tests cover it).
        A cancelled caller still waits for the transaction to finish (it cannot be stopped half
        way on the thread) before the cancellation is re-raised; the work is committed or not as a whole.
        """

        def in_transaction() -> T:
            conn: sqlite3.Connection = self._conn._conn  # aiosqlite private API: see the docstring
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        async with self._write_lock:
            return await run_to_completion(self._conn._execute(in_transaction))

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one write statement in its own transaction; returns the number of rows changed."""
        async with self.transaction() as conn:
            cursor = await conn.execute(sql, params)
            return cursor.rowcount

    async def fetch_one(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        """Read one row (committed state)."""
        async with self._conn.execute(sql, params) as cursor:
            return await cursor.fetchone()

    async def fetch_all(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        """Read all rows (committed state)."""
        async with self._conn.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    async def fetch_value(self, sql: str, params: Params = ()) -> Any:
        """Read the first column of the first row, or None."""
        row = await self.fetch_one(sql, params)
        return None if row is None else row[0]

    async def user_version(self) -> int:
        """The schema version recorded in ``PRAGMA user_version``."""
        return int(await self.fetch_value("PRAGMA user_version"))

    async def migrate(self, migrations: Iterable[Migration] | None = None) -> int:
        """Apply every migration newer than ``user_version``, each in its own transaction.

        A failing file is rolled back whole, version included, and raises ``MigrationError``:
        the database stays exactly as the previous migration left it. Returns the new version.
        """
        pending = [m for m in (discover_migrations() if migrations is None else migrations)]
        current = await self.user_version()
        known = max((m.version for m in pending), default=0)
        if current > known:
            # Running old code on a newer schema would write rows it does not understand.
            raise MigrationError(
                f"the database is at schema version {current}, newer than this version of the bot knows ({known})"
            )
        for migration in pending:
            if migration.version <= current:
                continue
            script = migration.path.read_text(encoding="utf-8")
            # executescript() would COMMIT first; run the statements one by one inside our own transaction.
            try:
                async with self.transaction() as conn:
                    for statement in _split_statements(script):
                        await conn.execute(statement)
                    await conn.execute(f"PRAGMA user_version={migration.version}")
            except sqlite3.Error as exc:
                raise MigrationError(
                    f"migration {migration.name} failed: {exc}; database left at version {current}"
                ) from exc
            log.info("applied migration %s", migration.name)
            current = migration.version
        return current


def _split_statements(script: str) -> list[str]:
    """Split a SQL script into complete statements (sqlite3.complete_statement handles quotes and triggers)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not _only_comments(buffer):
        raise sqlite3.OperationalError(f"incomplete SQL statement at end of script: {buffer.strip()[:60]!r}")
    return statements


def _only_comments(text: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in text.splitlines())

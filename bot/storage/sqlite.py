"""SQLite: the embedded default (one process, one file, no set-up).

One aiosqlite connection serves the process and one ``asyncio.Lock`` guards it. A write transaction
(:meth:`SQLiteDatabase.transaction`) runs its statements straight on the connection from the event
loop, between ``BEGIN IMMEDIATE`` and ``COMMIT``: a few microseconds each with WAL, far cheaper than
a hop to aiosqlite's thread per statement, and no other coroutine can interleave (the lock is held).
Statements outside a transaction — reads that may scan a lot, like ``/usage`` — go to aiosqlite's
thread. The connection is opened with ``check_same_thread=False`` for that reason; the lock makes
sure only one side uses it at a time.

Also here: :func:`preflight` (is the file usable before anything writes to it) and the
single-process guard (:class:`ProcessLock`): a second live bot on the same file is refused.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from bot.storage.base import (
    Database,
    DatabaseError,
    DatabaseUnusable,
    Executor,
    Migration,
    MigrationError,
    Params,
    Row,
    check_version,
    discover_migrations,
    latest_version,
    migrations_dir,
    run_to_completion,
)

log = logging.getLogger(__name__)


def _error(exc: sqlite3.Error) -> DatabaseError:
    return DatabaseError(str(exc))


class _Transaction(Executor):
    """The five calls inside one SQLite write transaction (synchronous underneath, on the loop thread)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Params = ()) -> int:
        try:
            return self._conn.execute(sql, params).rowcount
        except sqlite3.Error as exc:
            raise _error(exc) from exc

    async def execute_many(self, sql: str, rows: Iterable[Params]) -> None:
        try:
            self._conn.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise _error(exc) from exc

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        try:
            return self._conn.execute(sql, params).fetchone()
        except sqlite3.Error as exc:
            raise _error(exc) from exc

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise _error(exc) from exc


class SQLiteDatabase(Database):
    """A single aiosqlite connection with WAL, foreign keys, a busy timeout and serialised transactions."""

    dialect = "sqlite"

    def __init__(self, conn: aiosqlite.Connection, path: str) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()
        self.path = path
        self.label = path

    @property
    def _raw(self) -> sqlite3.Connection:
        # aiosqlite's underlying sqlite3 connection (private but stable in the pinned 0.22; tests cover it).
        return self._conn._conn

    @classmethod
    async def open(cls, path: str | Path, *, busy_timeout_ms: int = 5000) -> SQLiteDatabase:
        """Open (creating parent directories) and configure the database at ``path`` (``":memory:"`` works too)."""
        path_str = str(path)
        if path_str != ":memory:":
            Path(path_str).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, sqlite3 must not open implicit transactions.
        conn = await aiosqlite.connect(path_str, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=NORMAL")
        await conn.execute("PRAGMA foreign_keys=ON")
        await conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        return cls(conn, path_str)

    @classmethod
    async def open_readonly(cls, path: str | Path, *, busy_timeout_ms: int = 5000) -> SQLiteDatabase:
        """Open an existing database for reading only (``python -m bot check`` and backup verification)."""
        conn = await aiosqlite.connect(
            f"{Path(path).absolute().as_uri()}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
        )
        conn.row_factory = sqlite3.Row
        await conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        return cls(conn, str(path))

    async def close(self) -> None:
        async with self._lock:
            await self._conn.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Executor]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` (the write lock taken up front: no read-then-upgrade deadlocks).

        Cancellation-safe: the statements are synchronous, so a cancellation can only land at an
        ``await`` of the block's own; whatever ends the block — an error, a cancellation — rolls
        back before the lock is released, so the next writer never meets "cannot start a
        transaction within a transaction".
        """
        async with self._lock:
            conn = self._raw
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise _error(exc) from exc
            try:
                yield _Transaction(conn)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise _error(exc) from exc

    async def execute(self, sql: str, params: Params = ()) -> int:
        async with self.transaction() as tx:
            return await tx.execute(sql, params)

    async def execute_many(self, sql: str, rows: Iterable[Params]) -> None:
        async with self.transaction() as tx:
            await tx.execute_many(sql, rows)

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        async with self._lock:
            return await run_to_completion(self._read(sql, params, one=True))

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        async with self._lock:
            return await run_to_completion(self._read(sql, params, one=False))

    async def _read(self, sql: str, params: Params, *, one: bool) -> Any:
        try:
            async with self._conn.execute(sql, params) as cursor:
                return await cursor.fetchone() if one else list(await cursor.fetchall())
        except sqlite3.Error as exc:
            raise _error(exc) from exc

    async def schema_version(self) -> int:
        """``PRAGMA user_version``."""
        return int(await self.fetch_value("PRAGMA user_version"))

    async def migrate(self, migrations: Iterable[Migration] | None = None) -> int:
        """Apply every migration newer than ``user_version``, each in its own transaction.

        A failing file is rolled back whole, version included, and raises ``MigrationError``:
        the database stays exactly as the previous migration left it. Returns the new version.
        """
        pending = list(discover_migrations(migrations_dir("sqlite")) if migrations is None else migrations)
        current = await self.schema_version()
        check_version(current, pending)
        for migration in pending:
            if migration.version <= current:
                continue
            script = migration.path.read_text(encoding="utf-8")
            # executescript() would COMMIT first; run the statements one by one inside our own transaction.
            try:
                async with self.transaction() as tx:
                    for statement in split_statements(script):
                        await tx.execute(statement)
                    await tx.execute(f"PRAGMA user_version={migration.version}")
            except (sqlite3.Error, DatabaseError) as exc:
                raise MigrationError(
                    f"migration {migration.name} failed: {exc}; database left at version {current}"
                ) from exc
            log.info("applied migration %s", migration.name)
            current = migration.version
        return current


def split_statements(script: str) -> list[str]:
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


# ── before opening: is the file usable, and is nobody else using it ─────────


class ProcessLock:
    """An exclusive ``flock`` on ``<database>.lock``: one live bot process per SQLite file.

    Two processes on one file would both run (SQLite serialises them) but each would keep its own
    hourly limiter and its own idea of which reservations are orphaned. The kernel drops the lock
    when the process dies, so a ``kill -9`` leaves nothing to clean up.
    """

    def __init__(self, database: Path) -> None:
        self.path = database.with_name(database.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`DatabaseUnusable` saying another process has the file."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DatabaseUnusable(
                f"Another bot process is already running on the database {self.path.with_suffix('')}: stop it "
                "first. To run several processes, use PostgreSQL (DATABASE_URL; README: Scaling out)."
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        """Let the next process start (also happens when this one dies)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


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
    known = latest_version(migrations_dir("sqlite")) if known_version is None else known_version
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

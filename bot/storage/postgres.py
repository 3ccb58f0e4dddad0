"""PostgreSQL via asyncpg: one database shared by several bot processes.

asyncpg is the fastest and most used asyncio PostgreSQL driver. A small pool serves the process;
a transaction holds one pooled connection from ``BEGIN`` to ``COMMIT``. The repositories' ``?``
placeholders become ``$1…`` (:mod:`bot.storage.placeholders`), and ``numeric`` results (what
``SUM`` of a ``BIGINT`` gives) come back as ``int`` when whole, so both backends return the same
Python values.

Migrations are ``migrations/postgresql/NNNN_*.sql``, each applied in its own transaction and
recorded in ``schema_migrations``; a session advisory lock makes two processes starting at once
take turns (the second finds nothing left to do).
"""

from __future__ import annotations

import decimal
import logging
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from urllib.parse import unquote, urlsplit

import asyncpg

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
    migrations_dir,
)
from bot.storage.placeholders import numbered

log = logging.getLogger(__name__)

#: The advisory lock key migrations take (any constant; "hypereal" in ASCII, folded into 63 bits).
MIGRATION_LOCK_KEY = 0x6879706572656C


def _rowcount(status: str) -> int:
    """Rows changed, from a command tag such as ``UPDATE 3`` or ``INSERT 0 1``."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


def _decode_numeric(text: str) -> int | float | decimal.Decimal:
    value = decimal.Decimal(text)
    return int(value) if value == value.to_integral_value() else float(value)


def describe(url: str) -> str:
    """The URL as it may be printed: ``postgresql://user@host:port/db``, never the password."""
    parts = urlsplit(url)
    user = f"{unquote(parts.username)}@" if parts.username else ""
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


def _translate(exc: BaseException) -> DatabaseError:
    return DatabaseError(f"{type(exc).__name__}: {exc}")


class _Transaction(Executor):
    """The five calls on one connection inside an open transaction."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Params = ()) -> int:
        try:
            return _rowcount(await self._conn.execute(numbered(sql), *params))
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise _translate(exc) from exc

    async def lock(self, key: int) -> None:
        await self._conn.execute("SELECT pg_advisory_xact_lock($1)", key)

    async def execute_many(self, sql: str, rows: Iterable[Params]) -> None:
        try:
            await self._conn.executemany(numbered(sql), [tuple(row) for row in rows])
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise _translate(exc) from exc

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        try:
            return await self._conn.fetchrow(numbered(sql), *params)
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise _translate(exc) from exc

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        try:
            return list(await self._conn.fetch(numbered(sql), *params))
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise _translate(exc) from exc


class PostgresDatabase(Database):
    """A pool of asyncpg connections to one PostgreSQL database."""

    dialect = "postgresql"
    for_update = " FOR UPDATE"
    skip_locked = " FOR UPDATE SKIP LOCKED"
    shared = True

    def __init__(self, pool: asyncpg.Pool, url: str) -> None:
        self._pool = pool
        self.url = url
        self.label = describe(url)

    @classmethod
    async def open(
        cls, url: str, *, min_size: int = 1, max_size: int = 10, connect_seconds: float = 10.0
    ) -> PostgresDatabase:
        """Connect, or raise :class:`DatabaseUnusable` with one line naming the server (never the password)."""
        label = describe(url)
        try:
            pool = await asyncpg.create_pool(
                url.replace("postgres://", "postgresql://", 1),
                min_size=min_size,
                max_size=max_size,
                timeout=connect_seconds,
                init=_init_connection,
            )
        except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError) as exc:
            raise DatabaseUnusable(
                f"PostgreSQL at {label} refused the login ({type(exc).__name__}): check the user and password in "
                "DATABASE_URL."
            ) from None
        except asyncpg.InvalidCatalogNameError:
            raise DatabaseUnusable(
                f"PostgreSQL at {label}: the database does not exist: create it (createdb) or fix DATABASE_URL."
            ) from None
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise DatabaseUnusable(
                f"Cannot reach PostgreSQL at {label} ({str(reason).lower()}): start the server or fix DATABASE_URL."
            ) from None
        except ValueError as exc:  # asyncpg's DSN parser
            raise DatabaseUnusable(f"DATABASE_URL is not a PostgreSQL URL ({exc}): {label}") from None
        assert pool is not None
        return cls(pool, url)

    async def close(self) -> None:
        await self._pool.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Executor]:
        """``BEGIN`` … ``COMMIT`` on one pooled connection (READ COMMITTED; lock rows with :attr:`for_update`)."""
        async with self._pool.acquire() as conn, conn.transaction():
            yield _Transaction(conn)

    async def execute(self, sql: str, params: Params = ()) -> int:
        try:
            return _rowcount(await self._pool.execute(numbered(sql), *params))
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise _translate(exc) from exc

    async def execute_many(self, sql: str, rows: Iterable[Params]) -> None:
        async with self.transaction() as tx:
            await tx.execute_many(sql, rows)

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        try:
            return await self._pool.fetchrow(numbered(sql), *params)
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise _translate(exc) from exc

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        try:
            return list(await self._pool.fetch(numbered(sql), *params))
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise _translate(exc) from exc

    async def schema_version(self) -> int:
        """The highest version in ``schema_migrations`` (0 before the first migration)."""
        if await self._pool.fetchval("SELECT to_regclass('schema_migrations')") is None:
            return 0
        return int(await self._pool.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))

    async def migrate(self, migrations: Iterable[Migration] | None = None) -> int:
        """Apply the pending files under an advisory lock, each with its version row in one transaction."""
        pending = list(discover_migrations(migrations_dir("postgresql")) if migrations is None else migrations)
        async with self._pool.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
            try:
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations"
                    " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
                )
                current = int(await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))
                check_version(current, pending)
                for migration in pending:
                    if migration.version <= current:
                        continue
                    script = migration.path.read_text(encoding="utf-8")
                    try:
                        async with conn.transaction():
                            await conn.execute(script)  # several statements: the simple query protocol
                            await conn.execute(
                                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                                migration.version,
                                migration.name,
                                time.time(),
                            )
                    except asyncpg.PostgresError as exc:
                        raise MigrationError(
                            f"migration {migration.name} failed: {exc}; database left at version {current}"
                        ) from exc
                    log.info("applied migration %s", migration.name)
                    current = migration.version
                return current
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)


async def _init_connection(conn: asyncpg.Connection) -> None:
    """Every pooled connection: ``numeric`` as int/float like SQLite gives (``SUM(bigint)`` is numeric)."""
    await conn.set_type_codec("numeric", schema="pg_catalog", encoder=str, decoder=_decode_numeric, format="text")


def is_postgres_url(url: str) -> bool:
    """``postgresql://`` or ``postgres://``."""
    return url.startswith(("postgresql://", "postgres://"))

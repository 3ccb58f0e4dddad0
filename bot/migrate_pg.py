"""``python -m bot migrate-to-postgres``: copy a SQLite database into an empty PostgreSQL one.

The SQLite file is opened read-only (and its process lock held, so no bot writes to it meanwhile);
the target is brought to the latest schema and must then hold no row in any of our tables. Every
table is copied in ONE PostgreSQL transaction — parents before children, rows in key order — the
identity sequences are moved past the copied ids, and the row counts and the ledger invariants are
checked inside that same transaction: a copy that does not verify is rolled back whole, so the
target is either a faithful copy or as empty as it was.

Every refusal is a :class:`CopyRefused` whose message is one line naming what to do; the URL is
only ever shown through :func:`bot.storage.postgres.describe` (no password).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bot.credits import CreditLedger
from bot.storage.base import (
    Database,
    DatabaseError,
    DatabaseUnusable,
    Executor,
    Migration,
    MigrationError,
    Params,
    Row,
    latest_version,
    migrations_dir,
)
from bot.storage.sqlite import ProcessLock, SQLiteDatabase, preflight

#: Bookkeeping of the migrations themselves: each side keeps its own (SQLite's is ``user_version``).
NOT_COPIED = frozenset({"schema_migrations"})
#: Rows read from SQLite (and sent to PostgreSQL) per round trip: bounded memory for a big ledger.
BATCH_ROWS = 5000

_INTEGER_TYPES = frozenset({"bigint", "integer", "smallint"})
_FLOAT_TYPES = frozenset({"double precision", "real"})


class CopyRefused(Exception):
    """The copy was not made (or was rolled back); the message is one line saying why and what to do."""


@dataclass(frozen=True)
class CopySummary:
    """What was copied: rows per table, in the order they were copied."""

    counts: dict[str, int]
    seconds: float

    @property
    def rows(self) -> int:
        """All rows copied."""
        return sum(self.counts.values())

    def line(self, source: str, target: str) -> str:
        """The ``✓`` line the command prints."""
        return (
            f"✓ copied {len(self.counts)} tables, {self.rows} rows; ledger balanced "
            f"({source} → {target}, row counts verified, {self.seconds:.1f} s)"
        )


@dataclass(frozen=True)
class _Column:
    name: str
    pg_type: str  # information_schema's data_type: "bigint", "double precision", "text"…
    udt: str  # the type's own name ("int8", "float8", "text"), which casts take whatever the type
    identity: bool


def check_postgres_url(url: str) -> str:
    """The URL as it may be printed (no password); :class:`CopyRefused` if it is not a PostgreSQL URL."""
    from bot.storage.postgres import describe

    example = "postgresql://user:password@host:5432/dbname"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError:
        raise CopyRefused(f"--to is not a valid PostgreSQL URL (expected {example})") from None
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
        raise CopyRefused(f"--to must be a PostgreSQL URL such as {example}")
    return describe(url)


async def open_source(path: Path) -> SQLiteDatabase:
    """The SQLite file, read-only, at the schema version this code writes; :class:`CopyRefused` otherwise."""
    if not path.is_file():
        raise CopyRefused(f"there is no SQLite database at {path}: give --from the bot's DATABASE_PATH")
    try:
        version = preflight(path, create_directory=False)
    except DatabaseUnusable as exc:
        raise CopyRefused(str(exc)) from None
    known = latest_version(migrations_dir("sqlite"))
    if version != known:
        if version is not None and version > known:
            hint = "upgrade this bot (git pull / the newer image) and run the command with it"
        else:
            hint = "start the bot once on it with DATABASE_PATH (it migrates at start-up), stop it, then copy"
        raise CopyRefused(
            f"the SQLite database {path} is at schema version {version or 0}, this bot is at {known}: {hint}"
        )
    return await SQLiteDatabase.open_readonly(path)


async def migrate_to_postgres(
    source: Path,
    url: str,
    *,
    open_target: Callable[[str], AbstractAsyncContextManager[Database]] | None = None,
) -> CopySummary:
    """Copy ``source`` into the empty PostgreSQL database at ``url``; raises :class:`CopyRefused` on any refusal."""
    check_postgres_url(url)
    started = time.monotonic()
    if not source.is_file():  # checked before the lock, which would create a stray .lock file beside it
        raise CopyRefused(f"there is no SQLite database at {source}: give --from the bot's DATABASE_PATH")
    lock = ProcessLock(source.absolute())
    try:
        lock.acquire()
    except DatabaseUnusable as exc:
        raise CopyRefused(f"{exc} The copy needs the bot stopped, so nothing changes under it.") from None
    except OSError:
        pass  # a read-only directory: no lock file can be made there, and no bot could write the database either
    try:
        sqlite = await open_source(source)
        try:
            await _check_source_ledger(sqlite, source)
            async with (open_target or _open_postgres)(url) as target:
                counts = await _copy(sqlite, target)
        finally:
            await sqlite.close()
    except DatabaseError as exc:
        raise CopyRefused(f"the copy failed and was rolled back, nothing was written: {exc}") from None
    finally:
        lock.release()
    return CopySummary(counts, time.monotonic() - started)


@asynccontextmanager
async def _open_postgres(url: str) -> AsyncIterator[Database]:
    from bot.storage.postgres import PostgresDatabase

    try:
        db = await PostgresDatabase.open(url, max_size=2)
    except DatabaseUnusable as exc:
        raise CopyRefused(str(exc)) from None
    try:
        yield db
    finally:
        await db.close()


async def _check_source_ledger(sqlite: Database, path: Path) -> None:
    drift = await CreditLedger(sqlite, time.time, default_allowance=0, default_period="none").check_invariants()
    if drift:
        raise CopyRefused(
            f"the ledger in {path} does not balance ({drift[0]}): nothing was copied; keep the file and report it"
        )


async def _sqlite_tables(sqlite: Database) -> dict[str, list[str]]:
    # sqlite_sequence, sqlite_stat1…: SQLite's own bookkeeping, not the bot's data.
    internal = "name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
    names = [
        row[0] for row in await sqlite.fetch_all(f"SELECT name FROM sqlite_master WHERE type = 'table' AND {internal}")
    ]
    return {
        name: [row["name"] for row in await sqlite.fetch_all(f"PRAGMA table_info({_quote(name)})")]
        for name in names
        if name not in NOT_COPIED
    }


async def _postgres_tables(target: Database) -> dict[str, list[_Column]]:
    rows = await target.fetch_all(
        "SELECT table_name, column_name, data_type, udt_name, is_identity FROM information_schema.columns"
        " WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
    )
    tables: dict[str, list[_Column]] = {}
    for row in rows:
        if row["table_name"] not in NOT_COPIED:
            column = _Column(row["column_name"], row["data_type"], row["udt_name"], row["is_identity"] == "YES")
            tables.setdefault(row["table_name"], []).append(column)
    return tables


async def _first_non_empty(executor: Executor, tables: Iterable[str]) -> str | None:
    for table in tables:
        if await executor.fetch_value(f"SELECT 1 FROM {_quote(table)} LIMIT 1") is not None:
            return table
    return None


async def _copy(sqlite: Database, target: Database) -> dict[str, int]:
    label = target.label
    # Refused before the schema is touched: a database in use must stay exactly as it was.
    existing = await _postgres_tables(target)
    if (table := await _first_non_empty(target, existing)) is not None:
        raise _not_empty(label, table)
    try:
        await target.migrate()
    except MigrationError as exc:
        raise CopyRefused(f"PostgreSQL at {label}: {exc}") from None
    source_tables = await _sqlite_tables(sqlite)
    target_tables = await _postgres_tables(target)
    _same_schema(source_tables, target_tables)
    order = await _parents_first(target, sorted(target_tables))
    sequences = await _sqlite_sequences(sqlite)
    counts: dict[str, int] = {}
    async with target.transaction() as tx:
        # No bot may start writing on the target while it is filled: hold off every insert until COMMIT.
        await tx.execute(f"LOCK TABLE {', '.join(_quote(t) for t in order)} IN SHARE ROW EXCLUSIVE MODE")
        if (table := await _first_non_empty(tx, order)) is not None:
            raise _not_empty(label, table)
        for table in order:
            counts[table] = await _copy_table(sqlite, tx, table, target_tables[table])
        for table in order:
            for column in target_tables[table]:
                if column.identity:
                    await _reset_identity(tx, table, column.name, sequences.get(table, 0))
        await _verify(sqlite, tx, counts, label)
    return counts


def _not_empty(label: str, table: str) -> CopyRefused:
    return CopyRefused(
        f"PostgreSQL at {label} is not empty (table {table} has rows): nothing was written; give an empty "
        "database (createdb a new one) so no data is mixed or overwritten"
    )


def _same_schema(source: dict[str, list[str]], target: dict[str, list[_Column]]) -> None:
    # Both folders of migrations reach the same schema (tests/test_schema_equivalence.py); this guards a hand edit.
    for table, columns in source.items():
        if table not in target:
            raise CopyRefused(f"table {table} of the SQLite database has no counterpart in PostgreSQL: nothing copied")
        missing = sorted(set(columns) - {c.name for c in target[table]})
        if missing:
            raise CopyRefused(f"PostgreSQL table {table} lacks the column(s) {', '.join(missing)}: nothing copied")
    extra = sorted(set(target) - set(source))
    if extra:
        raise CopyRefused(f"PostgreSQL has table(s) the SQLite database lacks ({', '.join(extra)}): nothing copied")


async def _parents_first(target: Database, tables: Sequence[str]) -> list[str]:
    """Tables ordered so that every foreign key points at a table copied before (self-references aside)."""
    rows = await target.fetch_all(
        "SELECT DISTINCT c.conrelid::regclass::text AS child, c.confrelid::regclass::text AS parent"
        " FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace"
        " WHERE c.contype = 'f' AND n.nspname = current_schema()"
    )
    parents: dict[str, set[str]] = {table: set() for table in tables}
    for row in rows:
        child, parent = row["child"].strip('"'), row["parent"].strip('"')
        if child in parents and parent != child:
            parents[child].add(parent)
    ordered: list[str] = []
    while parents:
        ready = sorted(table for table, needs in parents.items() if not needs - set(ordered))
        if not ready:
            raise CopyRefused(f"the foreign keys of {', '.join(sorted(parents))} form a cycle: nothing copied")
        for table in ready:
            ordered.append(table)
            del parents[table]
    return ordered


async def _sqlite_sequences(sqlite: Database) -> dict[str, int]:
    # AUTOINCREMENT tables never reuse an id, even one whose row was deleted: the copy must not either.
    if await sqlite.fetch_value("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'") is None:
        return {}
    return {row["name"]: int(row["seq"]) for row in await sqlite.fetch_all("SELECT name, seq FROM sqlite_sequence")}


async def _copy_table(sqlite: Database, tx: Executor, table: str, columns: list[_Column]) -> int:
    names = ", ".join(_quote(c.name) for c in columns)
    converters = [_converter(table, c) for c in columns]
    # One statement per page, a column per array parameter: the statement is prepared once per table, and
    # PostgreSQL inserts a page as fast as from COPY (row-by-row executemany measured 3x slower).
    insert = (
        f"INSERT INTO {_quote(table)} ({names}) SELECT * FROM unnest("
        + ", ".join(f"?::{_quote(c.udt)}[]" for c in columns)
        + ")"
    )
    copied = 0
    last_rowid: int | None = None
    while True:
        # Keyset pages in rowid order: parents (lower ids) arrive before the rows that point at them.
        where, params = ("", ()) if last_rowid is None else ("WHERE rowid > ?", (last_rowid,))
        rows = await sqlite.fetch_all(
            f"SELECT rowid, {names} FROM {_quote(table)} {where} ORDER BY rowid LIMIT {BATCH_ROWS}", params
        )
        if not rows:
            return copied
        last_rowid = int(rows[-1][0])
        await tx.execute(insert, [[convert(row[i + 1]) for row in rows] for i, convert in enumerate(converters)])
        copied += len(rows)


def _converter(table: str, column: _Column) -> Callable[[Any], Any]:
    """SQLite's value as the PostgreSQL column's type wants it (asyncpg does not cast), refusing any loss."""
    where = f"{table}.{column.name}"
    if column.pg_type in _INTEGER_TYPES:

        def to_int(value: Any) -> Any:
            if value is None or isinstance(value, int):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise CopyRefused(f"{where} holds {value!r}, not an integer: nothing copied; fix the row, then copy")

        return to_int
    if column.pg_type in _FLOAT_TYPES:

        def to_float(value: Any) -> Any:
            if value is None or isinstance(value, float):
                return value
            if isinstance(value, int):
                return float(value)
            raise CopyRefused(f"{where} holds {value!r}, not a number: nothing copied; fix the row, then copy")

        return to_float
    if column.pg_type == "text":
        return lambda value: value if value is None or isinstance(value, str) else str(value)
    return lambda value: value


async def _reset_identity(tx: Executor, table: str, column: str, sqlite_sequence: int) -> None:
    # The next id the database hands out follows the highest copied (or ever used, for AUTOINCREMENT) one.
    highest = await tx.fetch_value(f"SELECT COALESCE(MAX({_quote(column)}), 0) FROM {_quote(table)}")
    await tx.fetch_value(
        "SELECT setval(pg_get_serial_sequence(?, ?), ?, false)",
        (_quote(table), column, max(int(highest), sqlite_sequence) + 1),
    )


async def _verify(sqlite: Database, tx: Executor, counts: dict[str, int], label: str) -> None:
    for table, copied in counts.items():
        source = int(await sqlite.fetch_value(f"SELECT COUNT(*) FROM {_quote(table)}"))
        target = int(await tx.fetch_value(f"SELECT COUNT(*) FROM {_quote(table)}"))
        if not source == copied == target:
            raise CopyRefused(
                f"table {table}: {source} rows in SQLite, {target} in PostgreSQL at {label}: rolled back, "
                "nothing was written; report it"
            )
    drift = await CreditLedger(
        _TransactionView(tx, label), time.time, default_allowance=0, default_period="none"
    ).check_invariants()
    if drift:
        raise CopyRefused(
            f"the copied ledger does not balance ({drift[0]}): rolled back, nothing was written; report it"
        )


class _TransactionView(Database):
    """The open copy transaction seen as a :class:`Database`, so the ledger checks what is about to be committed."""

    dialect = "postgresql"
    for_update = " FOR UPDATE"
    skip_locked = " FOR UPDATE SKIP LOCKED"
    shared = True

    def __init__(self, tx: Executor, label: str) -> None:
        self._tx = tx
        self.label = label

    async def execute(self, sql: str, params: Params = ()) -> int:
        return await self._tx.execute(sql, params)

    async def execute_many(self, sql: str, rows: Iterable[Params]) -> None:
        await self._tx.execute_many(sql, rows)

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        return await self._tx.fetch_one(sql, params)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        return await self._tx.fetch_all(sql, params)

    def transaction(self) -> AbstractAsyncContextManager[Executor]:
        raise NotImplementedError("already inside the copy's transaction")

    async def schema_version(self) -> int:
        raise NotImplementedError("not needed to verify a copy")

    async def migrate(self, migrations: Iterable[Migration] | None = None) -> int:
        raise NotImplementedError("not needed to verify a copy")

    async def close(self) -> None:
        """Nothing to close: the transaction belongs to the copy."""


def _quote(identifier: str) -> str:
    """A SQL identifier, quoted (names come from the catalogs, but a quote inside one must not break out)."""
    return '"' + identifier.replace('"', '""') + '"'

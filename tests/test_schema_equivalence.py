"""The SQLite and PostgreSQL migrations reach the same schema.

Each dialect has its own folder of numbered SQL files (issue 13). This applies the SQLite ones to a fresh file with
sqlite3 and the PostgreSQL ones to a fresh database with asyncpg (each file in one transaction, as the runner does),
reads both catalogs into one neutral shape, and compares: tables, columns (order, type class, NOT NULL, default),
primary keys, unique column sets, non-unique indexes, foreign keys (with their ON DELETE/UPDATE actions), CHECK
constraint counts and triggers. A difference fails the test with a line naming it.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
POSTGRES_DIR = MIGRATIONS / "postgresql"
# Tables a migrations runner keeps for itself, not part of the schema the migrations describe.
RUNNER_TABLES = frozenset({"schema_migrations"})


def sqlite_dir() -> Path:
    """Where the SQLite migrations live: ``migrations/sqlite/`` once they move there, ``migrations/`` until then."""
    moved = MIGRATIONS / "sqlite"
    return moved if moved.is_dir() else MIGRATIONS


def migration_files(directory: Path) -> list[Path]:
    """The numbered SQL files of one dialect, in order."""
    return sorted(path for path in directory.glob("*.sql") if re.fullmatch(r"\d{4}_\w+\.sql", path.name))


@dataclass(frozen=True)
class Column:
    """One column as both backends can describe it."""

    name: str
    type_class: str  # integer | real | text | blob (anything else is named as it is, and so differs)
    not_null: bool
    default: str | None  # the default's literal, without PostgreSQL's ::type casts


@dataclass(frozen=True)
class ForeignKey:
    """columns → table(ref_columns), with its actions."""

    columns: tuple[str, ...]
    table: str
    ref_columns: tuple[str, ...]
    on_delete: str
    on_update: str


@dataclass(frozen=True)
class Index:
    """A non-primary-key index (or unique constraint): its columns in order; partial = has a WHERE."""

    columns: tuple[str, ...]
    partial: bool


@dataclass
class Table:
    """One table's shape."""

    columns: list[Column]
    primary_key: tuple[str, ...]
    uniques: frozenset[Index]  # column order of a unique set does not matter: stored sorted
    indexes: frozenset[Index]
    foreign_keys: frozenset[ForeignKey]
    checks: int
    triggers: frozenset[tuple[str, str, str]]  # (name, BEFORE|AFTER, INSERT|UPDATE|DELETE)


Schema = dict[str, Table]


def sqlite_type_class(declared: str) -> str:
    """SQLite's type affinity rules (section 3.1 of its datatype docs), as our class names."""
    upper = declared.upper()
    if "INT" in upper:
        return "integer"
    if any(word in upper for word in ("CHAR", "CLOB", "TEXT")):
        return "text"
    if upper == "" or "BLOB" in upper:
        return "blob"
    if any(word in upper for word in ("REAL", "FLOA", "DOUB")):
        return "real"
    return f"numeric ({declared})"


def postgres_type_class(formatted: str) -> str:
    """The class of a PostgreSQL ``format_type`` name."""
    if formatted in ("bigint", "integer", "smallint"):
        return "integer"
    if formatted in ("double precision", "real") or formatted.startswith("numeric"):
        return "real"
    if formatted == "text" or formatted.startswith(("character varying", "character(")):
        return "text"
    if formatted == "bytea":
        return "blob"
    return formatted


def normalise_default(expression: str | None) -> str | None:
    """A default as a literal: PostgreSQL writes ``'month'::text`` where SQLite keeps ``'month'``."""
    if expression is None:
        return None
    return re.sub(r"::[a-z][a-z ]*$", "", expression.strip())


# SQL strings and comments, removed before counting CHECKs in SQLite's stored CREATE TABLE text
# (it keeps inline comments, and a string or a comment may contain the word CHECK).
_STRINGS_AND_COMMENTS = re.compile(r"'(?:[^']|'')*'|--[^\n]*|/\*.*?\*/", re.DOTALL)
_TRIGGER = re.compile(r"CREATE\s+TRIGGER\s+(?:IF\s+NOT\s+EXISTS\s+)?\S+\s+(BEFORE|AFTER|INSTEAD\s+OF)\s+(\w+)", re.I)
_FK_ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


def count_checks(create_sql: str) -> int:
    """CHECK constraints in a CREATE TABLE statement (SQLite has no catalog of them)."""
    return len(re.findall(r"\bCHECK\s*\(", _STRINGS_AND_COMMENTS.sub(" ", create_sql), re.I))


def apply_sqlite(path: Path, files: list[Path]) -> None:
    """Apply ``files`` to a new SQLite database at ``path``, each in one transaction."""
    conn = sqlite3.connect(path)
    try:
        for file in files:
            conn.executescript("BEGIN;\n" + file.read_text() + "\nCOMMIT;")
    finally:
        conn.close()


def read_sqlite(path: Path) -> Schema:
    """The schema of the SQLite database at ``path``."""
    conn = sqlite3.connect(path)
    try:
        schema: Schema = {}
        tables = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        ).fetchall()
        triggers = conn.execute("SELECT tbl_name, name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall()
        for name, create_sql in tables:
            info = conn.execute(f'PRAGMA table_info("{name}")').fetchall()
            primary_key = tuple(row[1] for row in sorted((row for row in info if row[5]), key=lambda row: row[5]))
            columns = [
                Column(
                    name=row[1],
                    type_class=sqlite_type_class(row[2]),
                    # SQLite reports a PRIMARY KEY column as nullable unless declared NOT NULL; PostgreSQL makes
                    # every key column NOT NULL. A NULL key is a bug on either side: compare them as NOT NULL.
                    not_null=bool(row[3]) or row[1] in primary_key,
                    default=normalise_default(row[4]),
                )
                for row in info
            ]
            uniques: set[Index] = set()
            indexes: set[Index] = set()
            for _seq, index_name, unique, origin, partial in conn.execute(f'PRAGMA index_list("{name}")'):
                if origin == "pk":
                    continue
                index_columns = tuple(
                    row[2] if row[2] is not None else "<expression>"
                    for row in conn.execute(f'PRAGMA index_info("{index_name}")')
                )
                if unique:
                    uniques.add(Index(tuple(sorted(index_columns)), bool(partial)))
                else:
                    indexes.add(Index(index_columns, bool(partial)))
            foreign_keys: dict[int, list[tuple[object, ...]]] = {}
            for row in conn.execute(f'PRAGMA foreign_key_list("{name}")'):
                foreign_keys.setdefault(row[0], []).append(row)
            fks = set()
            for rows in foreign_keys.values():
                rows.sort(key=lambda row: row[1])  # type: ignore[arg-type,return-value]
                target = str(rows[0][2])
                ref_columns = tuple(str(row[4]) for row in rows if row[4] is not None)
                if not ref_columns:  # REFERENCES t without columns means t's primary key
                    target_info = conn.execute(f'PRAGMA table_info("{target}")').fetchall()
                    ref_columns = tuple(r[1] for r in sorted((r for r in target_info if r[5]), key=lambda r: r[5]))
                fks.add(
                    ForeignKey(
                        columns=tuple(str(row[3]) for row in rows),
                        table=target,
                        ref_columns=ref_columns,
                        on_delete=str(rows[0][6]).upper(),
                        on_update=str(rows[0][5]).upper(),
                    )
                )
            table_triggers = set()
            for table_name, trigger_name, trigger_sql in triggers:
                if table_name != name:
                    continue
                match = _TRIGGER.search(trigger_sql)
                assert match is not None, f"cannot read trigger {trigger_name}: {trigger_sql}"
                table_triggers.add((trigger_name, " ".join(match[1].upper().split()), match[2].upper()))
            schema[name] = Table(
                columns=columns,
                primary_key=primary_key,
                uniques=frozenset(uniques),
                indexes=frozenset(indexes),
                foreign_keys=frozenset(fks),
                checks=count_checks(create_sql),
                triggers=frozenset(table_triggers),
            )
        return schema
    finally:
        conn.close()


async def apply_postgres(conn: asyncpg.Connection, files: list[Path]) -> None:
    """Apply ``files`` on ``conn``, each in one transaction (the files hold no BEGIN/COMMIT of their own)."""
    for file in files:
        async with conn.transaction():
            await conn.execute(file.read_text())


async def read_postgres(conn: asyncpg.Connection) -> Schema:
    """The schema of the ``public`` schema of the database ``conn`` is connected to."""
    relations = await conn.fetch(
        "SELECT c.oid, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY c.relname"
    )
    attnames: dict[int, dict[int, str]] = {}
    for relation in relations:
        rows = await conn.fetch(
            "SELECT attnum, attname FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped",
            relation["oid"],
        )
        attnames[relation["oid"]] = {row["attnum"]: row["attname"] for row in rows}
    names_by_oid = {relation["oid"]: relation["relname"] for relation in relations}

    def columns_of(oid: int, numbers: list[int]) -> tuple[str, ...]:
        return tuple(attnames[oid][n] if n else "<expression>" for n in numbers)

    schema: Schema = {}
    for relation in relations:
        oid, name = relation["oid"], relation["relname"]
        if name in RUNNER_TABLES:
            continue
        column_rows = await conn.fetch(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull,"
            " pg_get_expr(d.adbin, d.adrelid) AS default"
            " FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
            " WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            oid,
        )
        columns = [
            Column(
                name=row["attname"],
                type_class=postgres_type_class(row["type"]),
                not_null=row["attnotnull"],
                default=normalise_default(row["default"]),
            )
            for row in column_rows
        ]
        constraints = await conn.fetch(
            "SELECT contype::text, conkey, confrelid, confkey, confdeltype::text, confupdtype::text FROM pg_constraint"
            " WHERE conrelid = $1",
            oid,
        )
        primary_key: tuple[str, ...] = ()
        fks = set()
        checks = 0
        for row in constraints:
            if row["contype"] == "p":
                primary_key = columns_of(oid, list(row["conkey"]))
            elif row["contype"] == "f":
                target = row["confrelid"]
                fks.add(
                    ForeignKey(
                        columns=columns_of(oid, list(row["conkey"])),
                        table=names_by_oid[target],
                        ref_columns=columns_of(target, list(row["confkey"])),
                        on_delete=_FK_ACTIONS[row["confdeltype"]],
                        on_update=_FK_ACTIONS[row["confupdtype"]],
                    )
                )
            elif row["contype"] == "c":
                checks += 1
        uniques: set[Index] = set()
        indexes: set[Index] = set()
        for row in await conn.fetch(
            "SELECT indisunique, indisprimary, indkey::int2[] AS keys, indpred IS NOT NULL AS partial"
            " FROM pg_index WHERE indrelid = $1",
            oid,
        ):
            if row["indisprimary"]:
                continue
            index_columns = columns_of(oid, list(row["keys"]))
            if row["indisunique"]:
                uniques.add(Index(tuple(sorted(index_columns)), row["partial"]))
            else:
                indexes.add(Index(index_columns, row["partial"]))
        trigger_rows = await conn.fetch(
            "SELECT trigger_name, action_timing, event_manipulation FROM information_schema.triggers"
            " WHERE event_object_schema = 'public' AND event_object_table = $1",
            name,
        )
        schema[name] = Table(
            columns=columns,
            primary_key=primary_key,
            uniques=frozenset(uniques),
            indexes=frozenset(indexes),
            foreign_keys=frozenset(fks),
            checks=checks,
            triggers=frozenset(
                (row["trigger_name"], row["action_timing"], row["event_manipulation"]) for row in trigger_rows
            ),
        )
    return schema


def schema_differences(sqlite: Schema, postgres: Schema) -> list[str]:
    """Every difference between the two schemas, one line each (empty when they are the same)."""
    out: list[str] = []
    for name in sorted(sqlite.keys() - postgres.keys()):
        out.append(f"table {name}: only in SQLite")
    for name in sorted(postgres.keys() - sqlite.keys()):
        out.append(f"table {name}: only in PostgreSQL")
    for name in sorted(sqlite.keys() & postgres.keys()):
        lite, pg = sqlite[name], postgres[name]
        lite_columns = {column.name: column for column in lite.columns}
        pg_columns = {column.name: column for column in pg.columns}
        for column in sorted(lite_columns.keys() - pg_columns.keys()):
            out.append(f"{name}.{column}: column only in SQLite")
        for column in sorted(pg_columns.keys() - lite_columns.keys()):
            out.append(f"{name}.{column}: column only in PostgreSQL")
        for column in [c.name for c in lite.columns if c.name in pg_columns]:
            a, b = lite_columns[column], pg_columns[column]
            if a.type_class != b.type_class:
                out.append(f"{name}.{column}: type {a.type_class} in SQLite, {b.type_class} in PostgreSQL")
            if a.not_null != b.not_null:
                out.append(f"{name}.{column}: NOT NULL is {a.not_null} in SQLite, {b.not_null} in PostgreSQL")
            if a.default != b.default:
                out.append(f"{name}.{column}: default {a.default!r} in SQLite, {b.default!r} in PostgreSQL")
        if lite_columns.keys() == pg_columns.keys():
            lite_order, pg_order = [c.name for c in lite.columns], [c.name for c in pg.columns]
            if lite_order != pg_order:
                out.append(f"{name}: column order {lite_order} in SQLite, {pg_order} in PostgreSQL")
        if lite.primary_key != pg.primary_key:
            out.append(f"{name}: primary key {lite.primary_key} in SQLite, {pg.primary_key} in PostgreSQL")
        for label, lite_set, pg_set in (
            ("unique", lite.uniques, pg.uniques),
            ("index", lite.indexes, pg.indexes),
            ("foreign key", lite.foreign_keys, pg.foreign_keys),
            ("trigger", lite.triggers, pg.triggers),
        ):
            for item in sorted(map(repr, lite_set - pg_set)):
                out.append(f"{name}: {label} {item} only in SQLite")
            for item in sorted(map(repr, pg_set - lite_set)):
                out.append(f"{name}: {label} {item} only in PostgreSQL")
        if lite.checks != pg.checks:
            out.append(f"{name}: {lite.checks} CHECK constraints in SQLite, {pg.checks} in PostgreSQL")
    return out


@pytest.fixture
def sqlite_schema(tmp_path: Path) -> Schema:
    path = tmp_path / "schema.sqlite3"
    apply_sqlite(path, migration_files(sqlite_dir()))
    return read_sqlite(path)


@pytest.fixture
async def postgres_conn(fresh_postgres_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(fresh_postgres_url)
    try:
        await apply_postgres(conn, migration_files(POSTGRES_DIR))
        yield conn
    finally:
        await conn.close()


def test_both_dialects_have_the_same_numbered_files() -> None:
    lite = [path.name for path in migration_files(sqlite_dir())]
    pg = [path.name for path in migration_files(POSTGRES_DIR)]
    assert lite, "no SQLite migrations found"
    assert lite == pg


def test_postgres_files_leave_transactions_and_versions_to_the_runner() -> None:
    for path in migration_files(POSTGRES_DIR):
        sql = _STRINGS_AND_COMMENTS.sub(" ", path.read_text()).upper()
        assert not re.search(r"\b(BEGIN\s*;|COMMIT|ROLLBACK|SCHEMA_MIGRATIONS)\b", sql), path.name


async def test_sqlite_and_postgres_migrations_reach_the_same_schema(
    sqlite_schema: Schema, postgres_conn: asyncpg.Connection
) -> None:
    postgres_schema = await read_postgres(postgres_conn)
    # The comparison must have something to compare: every table of the bot is there.
    assert {"ledger", "reservations", "jobs", "guild_budgets", "chat_turns"} <= sqlite_schema.keys()
    differences = schema_differences(sqlite_schema, postgres_schema)
    assert differences == [], "the migrations differ:\n" + "\n".join(differences)


async def test_every_postgres_integer_is_64_bit(postgres_conn: asyncpg.Connection) -> None:
    # Discord snowflakes need 64 bits, and a 32-bit epoch or counter overflows: no INTEGER/SMALLINT anywhere.
    rows = await postgres_conn.fetch(
        "SELECT table_name, column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = 'public' AND data_type IN ('integer', 'smallint')"
    )
    assert [f"{row['table_name']}.{row['column_name']}: {row['data_type']}" for row in rows] == []
    biggest = 2**63 - 1
    await postgres_conn.execute(
        "INSERT INTO guild_budgets (guild_id, period_start, created_at) VALUES ($1, $1, $1)", biggest
    )
    assert await postgres_conn.fetchval("SELECT guild_id FROM guild_budgets") == biggest


async def test_ids_the_database_assigns_and_the_append_only_ledger_behave_alike(
    tmp_path: Path, postgres_conn: asyncpg.Connection
) -> None:
    insert_ledger = (
        "INSERT INTO ledger (key, guild_id, kind, balance_delta, reserved_delta, created_at)"
        " VALUES ('k{n}', 1, 'grant', 10, 0, 0)"
    )
    insert_turn = (
        "INSERT INTO chat_turns (channel_id, user_id, role, content, created_at) VALUES (1, 2, 'user', 'hi', 0)"
    )
    path = tmp_path / "behaviour.sqlite3"
    apply_sqlite(path, migration_files(sqlite_dir()))
    lite = sqlite3.connect(path)
    try:
        for n in (1, 2):
            lite.execute(insert_ledger.format(n=n))
            lite.execute(insert_turn)
        lite.commit()
        assert lite.execute("SELECT id FROM ledger ORDER BY id").fetchall() == [(1,), (2,)]
        assert lite.execute("SELECT id FROM chat_turns ORDER BY id").fetchall() == [(1,), (2,)]
        for statement in ("UPDATE ledger SET balance_delta = 0", "DELETE FROM ledger"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                lite.execute(statement)
    finally:
        lite.close()

    for n in (1, 2):
        await postgres_conn.execute(insert_ledger.format(n=n))
        await postgres_conn.execute(insert_turn)
    assert [row["id"] for row in await postgres_conn.fetch("SELECT id FROM ledger ORDER BY id")] == [1, 2]
    assert [row["id"] for row in await postgres_conn.fetch("SELECT id FROM chat_turns ORDER BY id")] == [1, 2]
    for statement in ("UPDATE ledger SET balance_delta = 0", "DELETE FROM ledger"):
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await postgres_conn.execute(statement)
    assert await postgres_conn.fetchval("SELECT sum(balance_delta) FROM ledger") == 20


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ("CREATE TABLE extra (id BIGINT)", "table extra: only in PostgreSQL"),
        ("ALTER TABLE kv ADD COLUMN extra TEXT", "kv.extra: column only in PostgreSQL"),
        ("ALTER TABLE jobs ALTER COLUMN next_poll_at TYPE BIGINT", "jobs.next_poll_at: type real in SQLite, integer"),
        ("ALTER TABLE jobs ALTER COLUMN model DROP NOT NULL", "jobs.model: NOT NULL is True in SQLite, False"),
        ("ALTER TABLE generations ALTER COLUMN options_json SET DEFAULT '[]'", "generations.options_json: default"),
        ("ALTER TABLE guild_budgets ALTER COLUMN period DROP DEFAULT", "guild_budgets.period: default"),
        ("ALTER TABLE kv DROP CONSTRAINT kv_pkey", "kv: primary key ('key',) in SQLite, ()"),
        ("ALTER TABLE ledger DROP CONSTRAINT ledger_key_key", "ledger: unique Index(columns=('key',)"),
        ("DROP INDEX jobs_user", "jobs: index Index(columns=('user_id', 'created_at')"),
        ("DROP INDEX reservations_open; CREATE INDEX ON reservations (state, guild_id)", "reservations: index"),
        ("ALTER TABLE chat_messages DROP CONSTRAINT chat_messages_turn_id_fkey", "chat_messages: foreign key"),
        (
            "ALTER TABLE chat_turns DROP CONSTRAINT chat_turns_parent_id_fkey,"
            " ADD FOREIGN KEY (parent_id) REFERENCES chat_turns (id) ON DELETE CASCADE",
            "on_delete='CASCADE'",
        ),
        (
            "ALTER TABLE reservations DROP CONSTRAINT reservations_state_check",
            "reservations: 3 CHECK constraints in SQLite, 2 in PostgreSQL",
        ),
        ("DROP TRIGGER ledger_no_delete ON ledger", "ledger: trigger ('ledger_no_delete', 'BEFORE', 'DELETE')"),
    ],
)
async def test_a_difference_is_found_and_named(
    sqlite_schema: Schema, postgres_conn: asyncpg.Connection, change: str, named: str
) -> None:
    # The comparison itself must catch what it claims to: break the PostgreSQL schema one way at a time.
    await postgres_conn.execute(change)
    differences = schema_differences(sqlite_schema, await read_postgres(postgres_conn))
    assert any(named in line for line in differences), differences

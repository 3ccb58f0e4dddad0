"""`python -m bot migrate-to-postgres --from FILE --to URL` as a real process, a real SQLite file, a real PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bot.chat.conversations import ConversationStore
from bot.credits import CreditLedger
from bot.db import Database, ProcessLock, SQLiteDatabase, discover_migrations, latest_version, open_postgres
from bot.jobs.store import JobStore, NewJob
from tests.conftest import free_port
from tests.fakediscord import FakeDiscord

ROOT = Path(__file__).resolve().parent.parent
GUILDS = (111, 222, 333)
SECRET = "s3cret-PW-9f2c"


async def _migrate_command(*args: str, cwd: Path) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "migrate-to-postgres", *args,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)}, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


def _ledger(db: Database) -> CreditLedger:
    return CreditLedger(db, time.time, default_allowance=500, default_period="month")


async def _populate(path: Path) -> None:
    """Budgets, caps, settled/refunded/held reservations, jobs in several states and chat threads — via the APIs."""
    async with await SQLiteDatabase.open(path) as db:
        await db.migrate()
        ledger = _ledger(db)
        jobs = JobStore(db, time.time, owner="old-process")
        chat = ConversationStore(db, time.time)
        now = time.time()
        for n, guild in enumerate(GUILDS):
            await ledger.set_allowance(guild, 1000 + n, "week", by=1)
            await ledger.grant(guild, 50 * (n + 1), by=1)
            await ledger.set_user_cap(guild, 7, "video", 300)
            for i in range(4):
                key = f"r:{guild}:{i}"
                await ledger.reserve(guild, 7, (), "image", 4, key, channel_id=5, model="flux")
                if i % 2:
                    await ledger.settle(key, 3)
                else:
                    await ledger.refund(key, "failed")
            held = f"job:{guild}"
            await ledger.reserve(guild, 8, (), "video", 42, held, channel_id=5, model="kling")
            job = await jobs.create(
                NewJob(f"j{guild}", guild, 5, 8, "video", "kling", "video", {"prompt": "a cat"}, held, 42),
                webhook_token=f"tok{guild}",
                deadline_at=int(now) + 3600,
                recheck_at=now + 60,
            )
            await jobs.mark_pending(job.id, f"hj{guild}", None, None, int(now) + 15.5)  # fractional seconds kept
            parent = None
            for turn in range(3):
                parent = await chat.add_turn(
                    guild_id=guild,
                    channel_id=5,
                    user_id=7,
                    role="user" if turn % 2 == 0 else "assistant",
                    content=f"turn {turn} in {guild}",
                    parent_id=parent,
                    model="claude",
                    message_ids=[guild * 100 + turn],
                )
        assert await ledger.check_invariants() == []


async def _tables(db: SQLiteDatabase) -> dict[str, list[str]]:
    names = await db.fetch_all("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    return {row[0]: [c["name"] for c in await db.fetch_all(f"PRAGMA table_info({row[0]})")] for row in names}


def _normal(value: Any) -> Any:
    # SQLite REAL columns give 5.0 where PostgreSQL BIGINT gives 5: the same value, compared as such.
    return int(value) if isinstance(value, float) and value.is_integer() else value


async def _rows(db: Database, table: str, columns: list[str]) -> list[tuple[Any, ...]]:
    rows = await db.fetch_all(f"SELECT {', '.join(columns)} FROM {table}")
    return sorted((tuple(_normal(v) for v in row) for row in rows), key=repr)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_copy_keeps_every_row_balances_the_ledger_and_continues_the_ids(
    tmp_path: Path, fresh_postgres_url: str
) -> None:
    source = tmp_path / "bot.sqlite3"
    await _populate(source)
    before = _digest(source)

    code, out, err = await _migrate_command("--from", str(source), "--to", fresh_postgres_url, cwd=tmp_path)

    assert code == 0, out + err
    async with await SQLiteDatabase.open_readonly(source) as sqlite:
        tables = await _tables(sqlite)
        expected = {table: await _rows(sqlite, table, columns) for table, columns in tables.items()}
    total = sum(len(rows) for rows in expected.values())
    assert out.splitlines() == [out.strip()], out
    assert out.startswith(f"✓ copied {len(tables)} tables, {total} rows; ledger balanced ("), out
    assert _digest(source) == before  # read-only: the source is byte for byte as it was
    assert {"ledger", "reservations", "jobs", "chat_turns", "chat_messages", "guild_budgets"} <= set(tables)
    assert "schema_migrations" not in tables

    async with await open_postgres(fresh_postgres_url) as pg:
        assert await pg.schema_version() == latest_version(ROOT / "migrations" / "postgresql")
        for table, columns in tables.items():
            assert await _rows(pg, table, columns) == expected[table], table
        ledger = _ledger(pg)
        assert await ledger.check_invariants() == []
        held = await ledger.held_keys()
        assert sorted(held) == sorted(f"job:{guild}" for guild in GUILDS)
        # New rows get ids after the copied ones: no collision with a copied chat turn or ledger row.
        highest_turn = max(row[0] for row in expected["chat_turns"])
        chat = ConversationStore(pg, time.time)
        new_turn = await chat.add_turn(guild_id=GUILDS[0], channel_id=5, user_id=7, role="user", content="after")
        assert new_turn == highest_turn + 1
        assert [turn.content for turn in await chat.chain(new_turn)] == ["after"]
        highest_entry = await pg.fetch_value("SELECT MAX(id) FROM ledger")
        await ledger.grant(GUILDS[1], 10, by=1)
        assert await pg.fetch_value("SELECT MAX(id) FROM ledger") == highest_entry + 1
        await ledger.settle(f"job:{GUILDS[2]}", 40)
        assert await ledger.check_invariants() == []
        job = await JobStore(pg, time.time).get(f"j{GUILDS[0]}")
        assert job is not None
        assert job.state == "pending"
        assert job.request == {"prompt": "a cat"}
        assert job.next_poll_at is not None
        assert job.next_poll_at % 1 == pytest.approx(0.5, abs=0.01)


async def test_a_target_with_rows_is_refused_and_left_untouched(tmp_path: Path, fresh_postgres_url: str) -> None:
    source = tmp_path / "bot.sqlite3"
    await _populate(source)
    async with await open_postgres(fresh_postgres_url) as pg:
        await pg.migrate()
        await _ledger(pg).grant(999, 25, by=1)
        entries_before = await pg.fetch_all("SELECT * FROM ledger ORDER BY id")
        budgets_before = await pg.fetch_all("SELECT * FROM guild_budgets")

    code, out, err = await _migrate_command("--from", str(source), "--to", fresh_postgres_url, cwd=tmp_path)

    assert code == 2, out + err
    assert out.splitlines() == [out.strip()], out + err
    assert not err, err
    assert out.startswith("✗ migrate-to-postgres: PostgreSQL at postgresql://"), out
    assert "is not empty (table " in out
    assert "nothing was written" in out
    async with await open_postgres(fresh_postgres_url) as pg:
        assert await pg.fetch_all("SELECT * FROM ledger ORDER BY id") == entries_before
        assert await pg.fetch_all("SELECT * FROM guild_budgets") == budgets_before
        assert await pg.fetch_value("SELECT COUNT(*) FROM chat_turns") == 0


async def test_a_target_with_rows_at_an_older_schema_is_refused_before_it_is_migrated(
    tmp_path: Path, fresh_postgres_url: str
) -> None:
    source = tmp_path / "bot.sqlite3"
    await _populate(source)
    async with await open_postgres(fresh_postgres_url) as pg:
        await pg.migrate(discover_migrations(ROOT / "migrations" / "postgresql")[:2])
        await pg.execute("INSERT INTO kv (key, value) VALUES ('mine', 'x')")

    code, out, _ = await _migrate_command("--from", str(source), "--to", fresh_postgres_url, cwd=tmp_path)

    assert code == 2, out
    assert "is not empty (table kv has rows)" in out, out
    async with await open_postgres(fresh_postgres_url) as pg:
        assert await pg.schema_version() == 2  # not migrated: a database in use is left exactly as it was


async def test_unreachable_server_and_bad_urls_are_one_line_without_the_password(tmp_path: Path) -> None:
    source = tmp_path / "bot.sqlite3"
    await _populate(source)
    unreachable = f"postgresql://bot:{SECRET}@127.0.0.1:{free_port()}/hypereal"
    cases = {
        unreachable: "Cannot reach PostgreSQL at postgresql://bot@127.0.0.1:",
        f"postgresql://bot:{SECRET}@127.0.0.1:notaport/db": "--to is not a valid PostgreSQL URL",
        f"mysql://bot:{SECRET}@127.0.0.1/db": "--to must be a PostgreSQL URL",
    }
    for url, expected in cases.items():
        code, out, err = await _migrate_command("--from", str(source), f"--to={url}", cwd=tmp_path)
        assert code == 2, out + err
        assert out.splitlines() == [out.strip()], out + err
        assert not err, err
        assert out.startswith(f"✗ migrate-to-postgres: {expected}"), out
        assert SECRET not in out + err


async def test_missing_damaged_or_outdated_source_is_one_line(tmp_path: Path, fresh_postgres_url: str) -> None:
    missing = tmp_path / "nope.sqlite3"
    code, out, _ = await _migrate_command("--from", str(missing), "--to", fresh_postgres_url, cwd=tmp_path)
    assert code == 2, out
    assert out.startswith(f"✗ migrate-to-postgres: there is no SQLite database at {missing}"), out
    assert not list(tmp_path.iterdir())  # not even a lock file left behind

    damaged = tmp_path / "damaged.sqlite3"
    damaged.write_bytes(b"this is not a database" * 100)
    code, out, _ = await _migrate_command("--from", str(damaged), "--to", fresh_postgres_url, cwd=tmp_path)
    assert code == 2, out
    assert out.splitlines() == [out.strip()], out
    assert "is not a SQLite database or is damaged" in out, out
    assert damaged.read_bytes() == b"this is not a database" * 100

    old = tmp_path / "old.sqlite3"
    async with await SQLiteDatabase.open(old) as db:
        await db.migrate(discover_migrations()[:3])
    code, out, _ = await _migrate_command("--from", str(old), "--to", fresh_postgres_url, cwd=tmp_path)
    assert code == 2, out
    assert f"is at schema version 3, this bot is at {latest_version()}" in out, out
    assert "start the bot once on it" in out
    async with await open_postgres(fresh_postgres_url) as pg:
        assert await pg.schema_version() == 0  # refused before the target was touched at all


async def test_a_bot_running_on_the_file_is_refused(tmp_path: Path, fresh_postgres_url: str) -> None:
    source = tmp_path / "bot.sqlite3"
    await _populate(source)
    lock = ProcessLock(source)
    lock.acquire()  # what a running bot holds
    try:
        code, out, _ = await _migrate_command("--from", str(source), "--to", fresh_postgres_url, cwd=tmp_path)
    finally:
        lock.release()
    assert code == 2, out
    assert "Another bot process is already running on the database" in out, out
    assert "stop it first" in out


async def test_missing_arguments_print_the_usage(tmp_path: Path) -> None:
    code, _, err = await _migrate_command("--from", "x.sqlite3", cwd=tmp_path)
    assert code == 2
    assert "migrate-to-postgres --from SQLITE_FILE --to POSTGRESQL_URL" in err


# ── the bot itself on the copy ───────────────────────────────────────────────


async def _start_bot(fake: FakeDiscord, tmp_path: Path, **extra_env: str) -> asyncio.subprocess.Process:
    """``python -m bot`` against the fakes; its log goes to ``tmp_path/bot-<pid>.log`` (read it with :func:`_log`)."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "DISCORD_TOKEN": fake.token,
        "DISCORD_API_BASE": fake.api_base,
        "DISCORD_GATEWAY_URL": fake.gateway_url,
        "DISCORD_DEV_GUILD_ID": str(fake.GUILD_ID),
        "HYPEREAL_SANDBOX": "1",
        "DATABASE_PATH": str(tmp_path / "bot.sqlite3"),
        "WEB_HOST": "127.0.0.1",
        "WEB_PORT": "0",
        **extra_env,
    }
    log = (tmp_path / f"bot-{len(list(tmp_path.glob('bot-*.log')))}.log").open("wb")
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", env=env, cwd=tmp_path,
            stdout=asyncio.subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
    finally:
        log.close()


def _logs(tmp_path: Path) -> str:
    return "\n".join(
        f"── {path.name}\n{path.read_text(errors='replace')}" for path in sorted(tmp_path.glob("bot-*.log"))
    )


async def _stop(process: asyncio.subprocess.Process) -> int:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(process.wait(), timeout=15)


async def test_the_bot_carries_on_from_the_copy_on_postgresql(
    fake_discord: FakeDiscord, tmp_path: Path, fresh_postgres_url: str
) -> None:
    fake = fake_discord
    process = await _start_bot(fake, tmp_path)
    try:
        await fake.wait_for_ready(timeout=30)
        first = await fake.response(await fake.invoke("image", prompt="a lighthouse"), timeout=30)
        await fake.wait_for(lambda: first.latest_files, timeout=30)
    finally:
        assert await _stop(process) == 0
    async with await SQLiteDatabase.open_readonly(tmp_path / "bot.sqlite3") as sqlite:
        balance = int(
            await sqlite.fetch_value("SELECT balance FROM guild_budgets WHERE guild_id = ?", (fake.GUILD_ID,))
        )
    assert balance < 1000  # the image was paid for on SQLite

    code, out, err = await _migrate_command("--from", "bot.sqlite3", "--to", fresh_postgres_url, cwd=tmp_path)
    assert code == 0, out + err

    # On PostgreSQL now (the SQLite file is moved away: the bot must not be reading it).
    (tmp_path / "bot.sqlite3").rename(tmp_path / "old.sqlite3")
    process = await _start_bot(fake, tmp_path, DATABASE_URL=fresh_postgres_url)
    try:
        await fake.wait_for(lambda: fake.identify_count == 2 and fake.connected_sessions == 1, timeout=30)
        credits = await fake.response(await fake.invoke("credits"), timeout=30)
        assert f"**{balance}** of 1000 credits left" in credits.embeds[0]["fields"][0]["value"]
        # The copied generation still backs its buttons: Reroll makes a new image and pays for it.
        again = await fake.response(await fake.click(first, first.custom_ids()[0], user=fake.MEMBER), timeout=30)
        await fake.wait_for(lambda: again.latest_files, timeout=30)
        assert again.embeds[0]["title"] == "🎨 a lighthouse"
    finally:
        assert await _stop(process) == 0
    assert not (tmp_path / "bot.sqlite3").exists()
    async with await open_postgres(fresh_postgres_url) as pg:
        ledger = _ledger(pg)
        assert await ledger.balance(fake.GUILD_ID) < balance
        assert await ledger.check_invariants() == []


async def test_the_worked_example_two_processes_one_shard_each_on_the_copy(
    fake_discord: FakeDiscord, tmp_path: Path, fresh_postgres_url: str
) -> None:
    """README's example: the SQLite bot's servers, copied, then served by SHARD_IDS=0 and 1 of SHARD_COUNT=2."""
    fake = fake_discord
    guilds = [fake.guild_on_shard(shard, 2) for shard in (0, 1)]
    channels = [guild.channels[0].id for guild in guilds]
    one = await _start_bot(fake, tmp_path, DISCORD_DEV_GUILD_ID="")
    try:
        await fake.wait_for_ready(timeout=30)
        await fake.wait_for_commands(timeout=30)
        for channel in channels:
            image = await fake.response(await fake.invoke("image", prompt="a harbour", channel_id=channel), timeout=30)
            await fake.wait_for(lambda image=image: image.latest_files, timeout=30)
    finally:
        assert await _stop(one) == 0
    async with await SQLiteDatabase.open_readonly(tmp_path / "bot.sqlite3") as sqlite:
        balances = [await _ledger(sqlite).balance(guild.id) for guild in guilds]
    assert all(balance < 1000 for balance in balances)

    code, out, err = await _migrate_command("--from", "bot.sqlite3", "--to", fresh_postgres_url, cwd=tmp_path)
    assert code == 0, out + err

    shared = {"DATABASE_URL": fresh_postgres_url, "SHARD_COUNT": "2", "DISCORD_DEV_GUILD_ID": ""}
    processes = [await _start_bot(fake, tmp_path, SHARD_IDS=str(shard), **shared) for shard in (0, 1)]
    try:
        await fake.wait_for_shards(2, timeout=60)
        for channel, balance in zip(channels, balances, strict=True):
            credits = await fake.response(await fake.invoke("credits", channel_id=channel), timeout=30)
            assert f"**{balance}** of 1000 credits left" in credits.embeds[0]["fields"][0]["value"]
    finally:
        assert [await _stop(process) for process in processes] == [0, 0], _logs(tmp_path)
    async with await open_postgres(fresh_postgres_url) as pg:
        assert await _ledger(pg).check_invariants() == []

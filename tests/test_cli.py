"""`python -m bot check` and `python -m bot backup PATH`, as real processes against the fakes."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from bot.credits import CreditLedger
from bot.db import SQLiteDatabase, latest_version
from bot.invite import PERMISSIONS
from bot.sandbox import SandboxProvider
from tests.conftest import HYPEREAL_KEY
from tests.fakediscord import FakeDiscord

ROOT = Path(__file__).resolve().parent.parent


async def _bot_command(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), **env}, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


def _check_env(fake: FakeDiscord, sandbox: SandboxProvider, database: Path, **extra: str) -> dict[str, str]:
    return {
        "DISCORD_TOKEN": fake.token,
        "DISCORD_API_BASE": fake.api_base,
        "DISCORD_GATEWAY_URL": fake.gateway_url,
        "HYPEREAL_API_KEY": HYPEREAL_KEY,
        "HYPEREAL_BASE_URL": sandbox.base_url,
        "DATABASE_PATH": str(database),
        **extra,
    }


async def _migrated(path: Path) -> None:
    async with await SQLiteDatabase.open(path) as db:
        await db.migrate()
        ledger = CreditLedger(db, time.time, default_allowance=100, default_period="month")
        await ledger.reserve(1, 2, (), "image", 4, "r1")
        await ledger.settle("r1", 4)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ── check ────────────────────────────────────────────────────────────────────


async def test_check_passes_with_one_line_each_and_the_invite_link(
    fake_discord: FakeDiscord, sandbox: SandboxProvider, tmp_path: Path
) -> None:
    database = tmp_path / "bot.sqlite3"
    await _migrated(database)
    before = _digest(database)
    code, out, err = await _bot_command("check", env=_check_env(fake_discord, sandbox, database), cwd=tmp_path)
    assert code == 0, out + err
    lines = out.strip().splitlines()
    assert [line[0] for line in lines[:-1]] == ["✓"] * 5, out
    assert lines[0].startswith("✓ settings")
    assert f"schema version {latest_version()} (up to date), ledger balanced" in lines[1]
    assert "Discord token: accepted, the bot is Hypereal" in lines[2]
    assert "Hypereal key: accepted" in lines[3]
    assert "PUBLIC_URL: unset" in lines[4]
    assert lines[-1] == (
        f"invite link: https://discord.com/oauth2/authorize?client_id={fake_discord.APPLICATION_ID}"
        f"&scope=bot+applications.commands&permissions={PERMISSIONS}"
    )
    # Harmless: one free status poll for a made-up job, nothing submitted; Discord only asked who we are.
    assert [(r.method, r.path) for r in sandbox.requests] == [("GET", "/api/v1/jobs/bot-check-no-such-job")]
    assert [(c.method, c.route) for c in fake_discord.calls] == [
        ("GET", "/users/@me"),
        ("GET", "/oauth2/applications/@me"),
    ]
    assert _digest(database) == before  # nothing migrated, nothing written
    assert fake_discord.token not in out + err
    assert HYPEREAL_KEY not in out + err


async def test_check_says_what_is_wrong_on_each_line(
    fake_discord: FakeDiscord, sandbox: SandboxProvider, tmp_path: Path
) -> None:
    database = tmp_path / "data" / "bot.sqlite3"  # not created yet
    env = _check_env(fake_discord, sandbox, database, DISCORD_TOKEN="wrong-token-SECRET",
                     HYPEREAL_API_KEY="ck_wrong_SECRET", PUBLIC_URL="https://10.1.2.3")  # fmt: skip
    code, out, err = await _bot_command("check", env=env, cwd=tmp_path)
    assert code == 1, out + err
    lines = out.strip().splitlines()
    assert lines[1].startswith("✓ database")
    assert "not created yet" in lines[1]
    assert lines[2].startswith("✗ Discord rejected DISCORD_TOKEN (401")
    assert lines[3].startswith("✗ Hypereal rejected HYPEREAL_API_KEY (401)")
    assert lines[4].startswith("✗ PUBLIC_URL https://10.1.2.3")
    assert "not a public address" in lines[4]
    assert lines[5] == "invite link: unknown until the Discord token works"
    assert not (tmp_path / "data").exists()  # check creates nothing
    assert "SECRET" not in out + err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("public_url", "ok", "words"),
    [
        ("https://93.184.216.34", True, "(public)"),
        ("http://93.184.216.34", False, "must be https"),
        ("https://127.0.0.1:8443", False, "not a public address"),
    ],
)
async def test_check_public_url(
    fake_discord: FakeDiscord, sandbox: SandboxProvider, tmp_path: Path, public_url: str, ok: bool, words: str
) -> None:
    env = _check_env(fake_discord, sandbox, tmp_path / "bot.sqlite3", PUBLIC_URL=public_url, HYPEREAL_SANDBOX="1")
    code, out, _ = await _bot_command("check", env=env, cwd=tmp_path)
    line = next(line for line in out.splitlines() if "PUBLIC_URL" in line)
    assert line.startswith("✓" if ok else "✗"), out
    assert words in line
    assert code == (0 if ok else 1)


async def test_check_refuses_a_database_from_a_newer_version_without_touching_it(
    fake_discord: FakeDiscord, sandbox: SandboxProvider, tmp_path: Path
) -> None:
    database = tmp_path / "bot.sqlite3"
    conn = sqlite3.connect(database)
    conn.execute("PRAGMA user_version = 42")
    conn.close()
    before = _digest(database)
    code, out, _ = await _bot_command("check", env=_check_env(fake_discord, sandbox, database), cwd=tmp_path)
    assert code == 1
    assert "✗ database: The database" in out
    assert "newer version" in out
    assert _digest(database) == before


async def test_check_with_broken_settings_is_one_line_and_exit_2(tmp_path: Path) -> None:
    code, out, _err = await _bot_command("check", env={"DISCORD_TOKEN": " ", "HYPEREAL_SANDBOX": "1"}, cwd=tmp_path)
    assert code == 2
    assert out.strip().splitlines() == ["✗ settings: DISCORD_TOKEN is not set (or empty): set DISCORD_TOKEN=... in "
                                        ".env or the environment (see .env.example)."]  # fmt: skip


async def test_an_unknown_subcommand_prints_the_usage(tmp_path: Path) -> None:
    code, _out, err = await _bot_command("chekc", env={}, cwd=tmp_path)
    assert code == 2
    assert err.startswith("usage: python -m bot [check | backup PATH]")


# ── backup ───────────────────────────────────────────────────────────────────


async def test_backup_while_200_reservations_run_is_consistent(tmp_path: Path) -> None:
    database = tmp_path / "live" / "bot.sqlite3"
    copy = tmp_path / "backups" / "copy.sqlite3"
    async with await SQLiteDatabase.open(database) as db:
        await db.migrate()
        ledger = CreditLedger(db, time.time, default_allowance=1_000_000, default_period="month")
        rows_at_start = await db.fetch_value("SELECT COUNT(*) FROM ledger")
        backup_done = asyncio.Event()
        rounds = 0

        async def member(n: int) -> None:
            """Reserve, then settle or refund, over and over until the backup finished (at least once)."""
            nonlocal rounds
            turn = 0
            while True:
                key = f"r-{n}-{turn}"
                await ledger.reserve(n % 10, n, (), "image", 5, key)
                await asyncio.sleep(random.random() / 100)  # the request is "at Hypereal" for a moment
                if turn % 2:
                    await ledger.settle(key, random.randint(0, 8))
                else:
                    await ledger.refund(key, "failed")
                turn += 1
                rounds += 1
                if backup_done.is_set():
                    return

        members = [asyncio.create_task(member(n)) for n in range(200)]
        await asyncio.sleep(0.05)  # all 200 are in flight
        # The backup reads nothing but DATABASE_PATH: no token, no key.
        code, out, err = await _bot_command("backup", str(copy), env={"DATABASE_PATH": str(database)}, cwd=tmp_path)
        backup_done.set()
        await asyncio.gather(*members)
        assert await ledger.check_invariants() == []
    assert code == 0, out + err
    assert out.startswith(f"✓ backup: {copy} (")
    assert "integrity ok, ledger balanced" in out
    assert rounds >= 200
    assert sorted(p.name for p in copy.parent.iterdir()) == ["copy.sqlite3"]  # no partial file left behind
    async with await SQLiteDatabase.open_readonly(copy) as backup:
        assert await backup.fetch_value("PRAGMA journal_mode") == "delete"  # one self-contained file
        assert await backup.schema_version() == latest_version()
        assert await backup.fetch_value("SELECT COUNT(*) FROM ledger") > rows_at_start
        assert (
            await CreditLedger(backup, time.time, default_allowance=0, default_period="none").check_invariants() == []
        )


async def test_backup_refuses_a_copy_whose_ledger_does_not_balance(tmp_path: Path) -> None:
    database = tmp_path / "bot.sqlite3"
    await _migrated(database)
    conn = sqlite3.connect(database)
    conn.execute("UPDATE guild_budgets SET balance = balance + 1")  # drift: counters no longer equal the ledger
    conn.commit()
    conn.close()
    target = tmp_path / "copy.sqlite3"
    code, out, _ = await _bot_command("backup", str(target), env={"DATABASE_PATH": str(database)}, cwd=tmp_path)
    assert code == 1
    assert "the ledger does not balance in the copy" in out
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


async def test_backup_into_a_directory_gets_a_dated_name(tmp_path: Path) -> None:
    database = tmp_path / "bot.sqlite3"
    await _migrated(database)
    code, out, _ = await _bot_command("backup", f"{tmp_path}/backups/", env={"DATABASE_PATH": str(database)},
                                      cwd=tmp_path)  # fmt: skip
    assert code == 0, out
    (made,) = (tmp_path / "backups").iterdir()
    assert made.name.startswith("bot-")
    assert made.suffix == ".sqlite3"


async def test_backup_without_a_database_or_onto_itself_says_so(tmp_path: Path) -> None:
    database = tmp_path / "bot.sqlite3"
    env = {"DATABASE_PATH": str(database)}
    code, out, _ = await _bot_command("backup", str(tmp_path / "x.sqlite3"), env=env, cwd=tmp_path)
    assert code == 1
    assert "there is no database at" in out
    await _migrated(database)
    code, out, _ = await _bot_command("backup", str(database), env=env, cwd=tmp_path)
    assert code == 2
    assert "is the live database itself" in out

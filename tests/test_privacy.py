"""Purging personal data (bot.privacy) and retention (bot.retention) on both backends, with an injected clock."""

from __future__ import annotations

import asyncio
import itertools
import json

import pytest

from bot.chat.conversations import ConversationStore
from bot.credits import CreditLedger
from bot.db import Database
from bot.privacy import PrivacyStore, PurgeReport, parse_user_id, purge_summary
from bot.retention import DAY, Retention

GUILD, OTHER_GUILD = 100, 200
ALICE, BOB = 11, 22
NOW = 1_800_000_000.0
_ids = itertools.count(1)  # row ids without the tag in them: the tag must be found only where it was written


class Clock:
    """A clock the test moves."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def _seed(db: Database, clock: Clock, user_id: int, guild_id: int | None, tag: str) -> str:
    """One chat exchange, one image generation, one finished job and one reservation (with its ledger rows).

    Returns the seed's row id suffix (``g-N``, ``j-N``, ``r-N``).
    """
    n = str(next(_ids))
    turns = ConversationStore(db, clock)
    asked = await turns.add_turn(
        guild_id=guild_id, channel_id=5, user_id=user_id, role="user", content=f"{tag} question", message_ids=[]
    )
    await turns.add_turn(
        guild_id=guild_id,
        channel_id=5,
        user_id=user_id,
        role="assistant",
        content=f"{tag} answer",
        parent_id=asked,
        message_ids=[int(clock()) * 1000 + user_id + (guild_id or 0)],
    )
    await db.execute(
        "INSERT INTO generations (id, guild_id, channel_id, user_id, kind, model, prompt, source_urls, created_at)"
        " VALUES (?, ?, 5, ?, 'image', 'm', ?, ?, ?)",
        (f"g-{n}", guild_id, user_id, f"{tag} image prompt", json.dumps([f"https://cdn/{tag}.png"]), int(clock())),
    )
    request = {"model": "v", "input": {"prompt": f"{tag} video prompt"}}
    await db.execute(
        "INSERT INTO jobs (id, guild_id, channel_id, user_id, category, model, poll_type, request_json, state,"
        " webhook_payload, credits_used, deadline_at, created_at, updated_at)"
        " VALUES (?, ?, 5, ?, 'video', 'v', 'video', ?, 'delivered', ?, 7, ?, ?, ?)",
        (
            f"j-{n}",
            guild_id,
            user_id,
            json.dumps(request),
            json.dumps({"input": f"{tag} echoed"}),
            int(clock()) + 60,
            int(clock()),
            int(clock()),
        ),
    )
    if guild_id is not None:
        ledger = CreditLedger(db, clock, default_allowance=1000, default_period="month")
        await ledger.reserve(guild_id, user_id, [], "image", 4, f"r-{n}", user_name=f"{tag} name")
        await ledger.settle(f"r-{n}", 4)
    return n


async def _text(db: Database) -> str:
    """Every value of every table this module writes to, as one string to search."""
    parts = []
    for table in ("chat_turns", "chat_messages", "generations", "jobs", "reservations", "ledger"):
        for row in await db.fetch_all(f"SELECT * FROM {table}"):
            parts.extend(str(value) for value in tuple(row))
    return "\n".join(parts)


async def test_forgetting_a_member_in_one_server_leaves_the_books_and_everyone_else(migrated: Database) -> None:
    clock = Clock()
    here = await _seed(migrated, clock, ALICE, GUILD, "alice-here")
    await _seed(migrated, clock, ALICE, OTHER_GUILD, "alice-there")
    await _seed(migrated, clock, BOB, GUILD, "bob-here")
    ledger_before = await migrated.fetch_all("SELECT * FROM ledger ORDER BY id")
    await migrated.execute(
        "INSERT INTO user_caps (guild_id, user_id, category, cap) VALUES (?, ?, 'image', 50)", (GUILD, ALICE)
    )

    report = await PrivacyStore(migrated, clock).purge(user_id=ALICE, guild_id=GUILD)

    assert report == PurgeReport(turns=2, generations=1, jobs=1, names=1)
    text = await _text(migrated)
    assert "alice-here" not in text
    for kept in ("alice-there question", "bob-here question", "bob-here name"):
        assert kept in text
    assert [tuple(r) for r in await migrated.fetch_all("SELECT * FROM ledger ORDER BY id")] == [
        tuple(r) for r in ledger_before
    ]
    kept = await migrated.fetch_one("SELECT estimate, actual, state FROM reservations WHERE key = ?", (f"r-{here}",))
    assert tuple(kept) == (4, 4, "settled")  # the amounts stay: caps keep counting this period
    assert await migrated.fetch_value("SELECT cap FROM user_caps WHERE user_id = ?", (ALICE,)) == 50
    job = await migrated.fetch_one(
        "SELECT request_json, webhook_payload, credits_used FROM jobs WHERE id = ?", (f"j-{here}",)
    )
    assert tuple(job) == ("{}", None, 7)
    # Idempotent: nothing left to delete.
    assert await PrivacyStore(migrated, clock).purge(user_id=ALICE, guild_id=GUILD) == PurgeReport()


async def test_forgetting_a_member_everywhere_includes_dms(migrated: Database) -> None:
    clock = Clock()
    await _seed(migrated, clock, ALICE, GUILD, "alice-here")
    await _seed(migrated, clock, ALICE, None, "alice-dm")
    await _seed(migrated, clock, BOB, GUILD, "bob-here")
    report = await PrivacyStore(migrated, clock).purge(user_id=ALICE)
    assert report == PurgeReport(turns=4, generations=2, jobs=2, names=1)
    text = await _text(migrated)
    assert "alice" not in text
    assert "bob-here answer" in text
    assert await migrated.fetch_value("SELECT COUNT(*) FROM chat_messages") == 1  # Bob's answer's message only


async def test_a_purge_never_means_everything() -> None:
    with pytest.raises(ValueError, match="needs a member"):
        await PrivacyStore(None, Clock()).purge()  # type: ignore[arg-type]


async def test_another_members_reply_loses_its_parent_not_its_text(migrated: Database) -> None:
    clock = Clock()
    turns = ConversationStore(migrated, clock)
    alice = await turns.add_turn(guild_id=GUILD, channel_id=5, user_id=ALICE, role="user", content="alice says")
    bob = await turns.add_turn(
        guild_id=GUILD, channel_id=5, user_id=BOB, role="user", content="bob replies", parent_id=alice
    )
    await PrivacyStore(migrated, clock).purge(user_id=ALICE, guild_id=GUILD)
    assert [t.content for t in await turns.chain(bob)] == ["bob replies"]


async def test_retention_purges_what_is_older_than_retention_days_and_keeps_the_rest(migrated: Database) -> None:
    clock = Clock(NOW - 31 * DAY)
    await _seed(migrated, clock, ALICE, GUILD, "old-alice")
    await _seed(migrated, clock, BOB, GUILD, "old-bob")
    clock.now = NOW - 29 * DAY
    await _seed(migrated, clock, ALICE, GUILD, "new-alice")
    clock.now = NOW
    ledger_rows = await migrated.fetch_value("SELECT COUNT(*) FROM ledger")
    retention = Retention(migrated, PrivacyStore(migrated, clock), clock, retention_days=30, batch_size=1)

    report = await retention.run_once()

    assert report == PurgeReport(turns=4, generations=2, jobs=2, names=0)
    text = await _text(migrated)
    for gone in ("old-alice question", "old-bob image prompt", "old-bob video", "old-bob echoed"):
        assert gone not in text
    for kept in ("new-alice question", "new-alice image prompt", "new-alice video prompt"):
        assert kept in text
    assert await migrated.fetch_value("SELECT COUNT(*) FROM ledger") == ledger_rows
    assert await retention.run_once() == PurgeReport()  # idempotent


async def test_retention_spares_jobs_still_running(migrated: Database) -> None:
    clock = Clock(NOW - 40 * DAY)
    await _seed(migrated, clock, ALICE, GUILD, "old")
    await migrated.execute("UPDATE jobs SET state = 'pending'")
    clock.now = NOW
    await Retention(migrated, PrivacyStore(migrated, clock), clock, retention_days=30).run_once()
    assert "old video prompt" in await migrated.fetch_value("SELECT request_json FROM jobs")


async def test_a_removed_server_keeps_its_data_for_retention_days_then_loses_it(migrated: Database) -> None:
    clock = Clock()
    await _seed(migrated, clock, ALICE, GUILD, "leaving")
    await _seed(migrated, clock, ALICE, OTHER_GUILD, "staying")
    retention = Retention(migrated, PrivacyStore(migrated, clock), clock, retention_days=30)
    await retention.guild_removed(GUILD)
    clock.now = NOW + 29 * DAY
    await _seed(migrated, clock, BOB, OTHER_GUILD, "fresh")  # keeps the rows of the kept server inside retention

    assert (await retention.run_once()).total == 0  # within retention: budget and data kept
    assert "leaving question" in await _text(migrated)

    clock.now = NOW + 30 * DAY + 1
    report = await retention.run_once()
    assert report.names == 1  # the removed server's names went, not only its old rows
    text = await _text(migrated)
    assert "leaving" not in text
    assert "fresh question" in text
    assert await migrated.fetch_value("SELECT purged_at FROM guild_removals WHERE guild_id = ?", (GUILD,)) == int(
        clock.now
    )
    assert await migrated.fetch_value("SELECT balance FROM guild_budgets WHERE guild_id = ?", (GUILD,)) == 996
    assert (await retention.run_once()).total == 0


async def test_a_server_that_readds_the_bot_is_no_longer_scheduled(migrated: Database) -> None:
    clock = Clock()
    await _seed(migrated, clock, ALICE, GUILD, "back")
    retention = Retention(migrated, PrivacyStore(migrated, clock), clock, retention_days=30)
    await retention.guild_removed(GUILD)
    await retention.guild_present(GUILD)
    await retention.guild_present(OTHER_GUILD)  # never removed: nothing to do
    assert await migrated.fetch_value("SELECT COUNT(*) FROM guild_removals") == 0
    clock.now = NOW + 10 * DAY
    # A fresh Retention (a restart) reads the record from the database.
    await Retention(migrated, PrivacyStore(migrated, clock), clock, retention_days=30).guild_removed(GUILD)
    restarted = Retention(migrated, PrivacyStore(migrated, clock), clock, retention_days=30)
    await restarted.guild_present(GUILD)
    assert await migrated.fetch_value("SELECT COUNT(*) FROM guild_removals") == 0


def test_summary_and_user_ids() -> None:
    assert purge_summary(PurgeReport(turns=2, generations=1, jobs=0, names=3)) == (
        "Deleted 2 conversation turns, 1 image prompt, 0 video, audio or 3D requests, 3 stored names (on requests)."
    )
    assert purge_summary(PurgeReport()).startswith("There was nothing to delete")
    assert parse_user_id("<@!400000000000000011>") == 400_000_000_000_000_011
    assert parse_user_id(" 400000000000000011 ") == 400_000_000_000_000_011
    assert parse_user_id("alice") is None
    assert parse_user_id("12") is None


async def test_many_servers_seen_at_once_cost_one_query(migrated: Database) -> None:
    clock = Clock()
    await Retention(migrated, PrivacyStore(migrated, clock), clock, retention_days=30).guild_removed(GUILD)
    retention = Retention(migrated, PrivacyStore(migrated, clock), clock, retention_days=30)
    queries: list[str] = []
    fetch_all = migrated.fetch_all

    async def counting(sql: str, params: object = ()) -> list:
        queries.append(sql)
        return await fetch_all(sql, params)  # type: ignore[arg-type]

    migrated.fetch_all = counting  # type: ignore[method-assign]
    try:
        await asyncio.gather(*(retention.guild_present(guild_id) for guild_id in range(1000, 3000)))
    finally:
        del migrated.fetch_all
    assert queries == ["SELECT guild_id FROM guild_removals"]
    await retention.guild_present(GUILD)
    assert await migrated.fetch_value("SELECT COUNT(*) FROM guild_removals") == 0

"""/forget-me, /privacy purge, server removal and prompt-free logs, end to end (fake Discord + sandbox)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.db import Database
from bot.logs import CONTENT_LOGGERS, quiet_library_loggers
from bot.retention import DAY
from tests.conftest import RunningBot, bot_settings, run_bot
from tests.fakediscord import FakeDiscord, MessageRecord
from tests.fakediscord.state import User

pytestmark = pytest.mark.both_backends  # each end-to-end test runs on SQLite and on PostgreSQL

ALICE = User(400_000_000_000_000_021, "alice_z", nick="Alice Zebrastripe")
BOB = User(400_000_000_000_000_022, "bob_o", nick="Bob Okapison")
# Words that appear nowhere but in what the members typed (and the sandbox's echo of it).
ALICE_WORD, BOB_WORD = "zebracorn", "okapiwhale"


def _join(fake: FakeDiscord, *users: User) -> None:
    for user in users:
        fake.guilds[fake.GUILD_ID].members[user.id] = (user, ())


async def _settled(bot: RunningBot) -> None:
    """Until no reservation is held and every job is delivered."""
    db = bot.services.db
    for _ in range(400):
        held = await db.fetch_value("SELECT COUNT(*) FROM reservations WHERE state = 'held'")
        open_jobs = await db.fetch_value("SELECT COUNT(*) FROM jobs WHERE state <> 'delivered'")
        if not held and not open_jobs:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("a reservation stayed held or a job never delivered")


async def _use_the_bot(bot: RunningBot, user: User, word: str) -> None:
    """A /chat, an /image and a /tts job by ``user``, each mentioning ``word``; waited for to the end."""
    fake = bot.fake
    await fake.response(await fake.invoke("chat", user=user, prompt=f"tell me about {word}"))
    await fake.wait_for(lambda: [m for m in fake.messages() if f"Sandbox reply to: tell me about {word}" in m.content])
    image = await fake.response(await fake.invoke("image", user=user, prompt=f"a {word} at dawn"))
    await fake.wait_for(lambda: image.latest_files)
    await fake.response(await fake.invoke("tts", user=user, text=f"hello {word}"))
    await _settled(bot)


async def database_dump(db: Database) -> str:
    """Every value of every column of every table, one per line: what a grep of a dump would see."""
    if db.dialect == "sqlite":
        tables = [r[0] for r in await db.fetch_all("SELECT name FROM sqlite_master WHERE type = 'table'")]
    else:
        tables = [
            r[0]
            for r in await db.fetch_all(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            )
        ]
    values: list[str] = []
    for table in tables:
        for row in await db.fetch_all(f'SELECT * FROM "{table}"'):  # table names come from the catalog itself
            values.extend(str(value) for value in tuple(row))
    return "\n".join(values)


async def _confirm(fake: FakeDiscord, ask: MessageRecord, user: User) -> str:
    """Click Confirm on a confirmation as ``user`` and return what the message says afterwards."""
    await fake.click(ask, ask.custom_ids()[0], user=user)
    await fake.wait_for(lambda: "Deleted" in ask.content or "nothing to delete" in ask.content)
    return ask.content


async def test_forget_me_leaves_none_of_the_members_prompts_and_keeps_the_books(running_bot: RunningBot) -> None:
    fake, services = running_bot.fake, running_bot.services
    _join(fake, ALICE, BOB)
    await services.ledger.set_user_cap(fake.GUILD_ID, ALICE.id, "image", 100)
    await _use_the_bot(running_bot, ALICE, ALICE_WORD)
    await _use_the_bot(running_bot, BOB, BOB_WORD)
    before = await database_dump(services.db)
    assert ALICE_WORD in before  # so the checks below can fail
    assert ALICE.nick in before
    ledger_before = [tuple(r) for r in await services.db.fetch_all("SELECT * FROM ledger ORDER BY id")]
    used_before = await services.ledger.user_status(fake.GUILD_ID, ALICE.id, [])

    ask = await fake.response(await fake.invoke("forget-me", user=ALICE))
    assert ask.ephemeral
    assert "financial record" in ask.content
    assert "caps this period" in ask.content
    assert ALICE_WORD in await database_dump(services.db)  # nothing happens before the click
    done = await _confirm(fake, ask, ALICE)

    assert done == (
        "🗑️ Your data: Deleted 2 conversation turns, 1 image prompt, 1 video, audio or 3D request,"
        " 3 stored names (on requests)."
    )
    after = await database_dump(services.db)
    assert ALICE_WORD not in after
    assert ALICE.nick not in after
    assert BOB_WORD in after  # another member's data is not touched
    assert BOB.nick in after
    assert [tuple(r) for r in await services.db.fetch_all("SELECT * FROM ledger ORDER BY id")] == ledger_before
    used_after = await services.ledger.user_status(fake.GUILD_ID, ALICE.id, [])
    assert used_after == used_before
    assert next(s for s in used_after if s.category == "image").cap == 100

    again = await fake.response(await fake.invoke("forget-me", user=ALICE, scope="all"))
    assert "every server and in DMs" in again.content
    assert (await _confirm(fake, again, ALICE)).endswith(
        "There was nothing to delete: no conversations, prompts or names were stored."
    )


async def test_cancel_deletes_nothing(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    _join(fake, ALICE)
    await _use_the_bot(running_bot, ALICE, ALICE_WORD)
    ask = await fake.response(await fake.invoke("forget-me", user=ALICE))
    await fake.click(ask, ask.custom_ids()[1], user=ALICE)
    await fake.wait_for(lambda: "Cancelled" in ask.content)
    assert ALICE_WORD in await database_dump(running_bot.services.db)


async def test_an_admin_purges_a_member_who_left(running_bot: RunningBot) -> None:
    fake, services = running_bot.fake, running_bot.services
    _join(fake, ALICE, BOB)
    await _use_the_bot(running_bot, ALICE, ALICE_WORD)
    await _use_the_bot(running_bot, BOB, BOB_WORD)
    del fake.guilds[fake.GUILD_ID].members[ALICE.id]  # she left

    refused = await fake.response(await fake.invoke("privacy purge", user=BOB, member=str(ALICE.id)))
    assert "Manage Server" in refused.content
    bad = await fake.response(await fake.invoke("privacy purge", user=fake.ADMIN, member="alice"))
    assert "not a user id" in bad.content

    ask = await fake.response(await fake.invoke("privacy purge", user=fake.ADMIN, member=f"<@{ALICE.id}>"))
    assert ask.ephemeral
    assert "financial record" in ask.content
    done = await _confirm(fake, ask, fake.ADMIN)
    assert done.startswith(f"🗑️ <@{ALICE.id}>: Deleted 2 conversation turns, 1 image prompt")
    after = await database_dump(services.db)
    assert ALICE_WORD not in after
    assert ALICE.nick not in after
    assert BOB_WORD in after


async def test_a_forgotten_image_cannot_be_rerolled_and_says_why(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    _join(fake, ALICE)
    image = await fake.response(await fake.invoke("image", user=ALICE, prompt=f"a {ALICE_WORD}"))
    await fake.wait_for(lambda: image.latest_files)
    await _settled(running_bot)
    await _confirm(fake, await fake.response(await fake.invoke("forget-me", user=ALICE)), ALICE)
    reroll = next(c for c in image.custom_ids() if "reroll" in c)
    answer = await fake.response(await fake.click(image, reroll, user=ALICE))
    assert "prompt was deleted" in answer.content
    assert await running_bot.services.db.fetch_value("SELECT COUNT(*) FROM reservations WHERE state = 'held'") == 0


async def _removals(bot: RunningBot) -> list[int]:
    return [int(r[0]) for r in await bot.services.db.fetch_all("SELECT guild_id FROM guild_removals")]


async def test_server_removal_is_recorded_unless_it_is_an_outage_and_a_rejoin_clears_it(
    running_bot: RunningBot,
) -> None:
    fake = running_bot.fake
    guild = fake.guilds[fake.OTHER_GUILD_ID]
    bot = running_bot.app.bot
    await fake.dispatch("GUILD_DELETE", {"id": str(guild.id), "guild_id": str(guild.id), "unavailable": True})
    await fake.wait_for(lambda: bot.get_guild(guild.id) is not None and bot.get_guild(guild.id).unavailable)
    await asyncio.sleep(0.1)
    assert await _removals(running_bot) == []  # an outage: nothing is scheduled

    await fake.dispatch("GUILD_DELETE", {"id": str(guild.id), "guild_id": str(guild.id)})
    for _ in range(100):
        if await _removals(running_bot) == [guild.id]:
            break
        await asyncio.sleep(0.05)
    assert await _removals(running_bot) == [guild.id]
    removed_at = await running_bot.services.db.fetch_value("SELECT removed_at FROM guild_removals")
    assert abs(removed_at - running_bot.services.clock()) < 60

    await fake.dispatch("GUILD_CREATE", {**guild.payload(), "guild_id": str(guild.id)})
    for _ in range(100):
        if await _removals(running_bot) == []:
            break
        await asyncio.sleep(0.05)
    assert await _removals(running_bot) == []


async def test_retention_at_start_up_purges_what_is_older_than_retention_days_and_keeps_newer(
    fake_discord: FakeDiscord, sandbox: object, tmp_path: Path, e2e_backend: dict[str, object]
) -> None:
    now = [time.time() - 31 * DAY]  # the services' clock, moved by the test
    settings = bot_settings(fake_discord, sandbox, tmp_path, retention_days=30, **e2e_backend)  # type: ignore[arg-type]
    _join(fake_discord, ALICE, BOB)
    async with run_bot(settings, fake_discord, sandbox, clock=lambda: now[0]) as first:  # type: ignore[arg-type]
        await _use_the_bot(first, ALICE, ALICE_WORD)
    now[0] += 2 * DAY
    async with run_bot(settings, fake_discord, sandbox, clock=lambda: now[0]) as second:  # type: ignore[arg-type]
        await _use_the_bot(second, BOB, BOB_WORD)
        assert ALICE_WORD in await database_dump(second.services.db)  # 2 days old: kept
        ledger_rows = await second.services.db.fetch_value("SELECT COUNT(*) FROM ledger")
    now[0] += 29 * DAY  # Alice's rows are now 31 days old, Bob's 29
    async with run_bot(settings, fake_discord, sandbox, clock=lambda: now[0]) as third:  # type: ignore[arg-type]
        db = third.services.db
        for _ in range(100):  # the pass started with the app, in the background
            if ALICE_WORD not in await database_dump(db):
                break
            await asyncio.sleep(0.05)
        dump = await database_dump(db)
        assert ALICE_WORD not in dump
        assert BOB_WORD in dump
        assert ALICE.nick in dump  # names are not age-limited: they go with /forget-me or the server's removal
        assert await db.fetch_value("SELECT COUNT(*) FROM ledger") >= ledger_rows  # the books stay whole


# ── logs ─────────────────────────────────────────────────────────────────────


@pytest.fixture
def production_log_levels() -> Iterator[None]:
    """discord.py's loggers set as ``configure_logging`` sets them in production (restored after)."""
    saved = {name: logging.getLogger(name).level for name in (*CONTENT_LOGGERS, "discord.client", "aiohttp.access")}
    quiet_library_loggers("DEBUG")
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def _records_with(caplog: pytest.LogCaptureFixture, word: str) -> list[logging.LogRecord]:
    found = []
    for record in caplog.records:
        text = record.getMessage() + (record.exc_text or "")
        if record.exc_info and record.exc_info[1] is not None:
            text += logging.Formatter().formatException(record.exc_info)
        if word in text:
            found.append(record)
    return found


@pytest.mark.parametrize("log_prompts", [False, True], ids=["default", "LOG_PROMPTS=1"])
async def test_prompts_and_model_text_stay_out_of_the_logs(
    fake_discord: FakeDiscord,
    sandbox: object,
    tmp_path: Path,
    e2e_backend: dict[str, object],
    caplog: pytest.LogCaptureFixture,
    production_log_levels: None,
    log_prompts: bool,
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = bot_settings(fake_discord, sandbox, tmp_path, log_prompts=log_prompts, **e2e_backend)  # type: ignore[arg-type]
    async with run_bot(settings, fake_discord, sandbox) as running:  # type: ignore[arg-type]
        _join(fake_discord, ALICE)
        await _use_the_bot(running, ALICE, ALICE_WORD)
    leaked = _records_with(caplog, ALICE_WORD)
    assert [r for r in leaked if r.levelno >= logging.INFO] == []  # never at INFO or above
    if not log_prompts:
        assert leaked == []
    else:
        # At DEBUG, by the bot's own loggers only: the chat prompt and answer, the image and the job prompts.
        assert {r.name for r in leaked} == {"bot.chat.service", "bot.images", "bot.jobs.service"}
        assert any("chat answer" in r.getMessage() for r in leaked)

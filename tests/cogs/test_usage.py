"""/usage end to end (fake Discord + sandbox): members' display names in the CSV, channels by name, periods."""

from __future__ import annotations

import asyncio
import csv
import io

import pytest
from PIL import Image

from bot.preview import BACKGROUND
from tests.conftest import RunningBot
from tests.fakediscord import FakeDiscord, MessageRecord
from tests.fakediscord.state import User

pytestmark = pytest.mark.both_backends  # each end-to-end test runs on SQLite and on PostgreSQL

# Members the bot's cache has never seen (the GUILD_CREATE came before they were added, and the bot runs
# without the members intent): only the names stored with their reservations can name them.
ALICE = User(400_000_000_000_000_011, "alice_w", nick="Alice Wonder")
MALLORY = User(400_000_000_000_000_012, "mallory", nick='=HYPERLINK("http://evil.example","click")')


def _join(fake: FakeDiscord, *users: User) -> None:
    for user in users:
        fake.guilds[fake.GUILD_ID].members[user.id] = (user, ())


async def _image(running_bot: RunningBot, user: User, channel_id: int | None = None) -> None:
    """A paid /image by ``user``, waited for until its reservation is settled."""
    fake = running_bot.fake
    message = await fake.response(await fake.invoke("image", user=user, channel_id=channel_id, prompt="a red fox"))
    await fake.wait_for(lambda: message.latest_files)
    db = running_bot.services.db
    for _ in range(200):
        held = await db.fetch_value("SELECT COUNT(*) FROM reservations WHERE state = 'held'")
        if held == 0:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the /image reservation was never settled")


def _csv(message: MessageRecord) -> list[list[str]]:
    files = {f.filename: f for f in message.latest_files}
    return list(csv.reader(io.StringIO(files["usage.csv"].data.decode("utf-8-sig"), newline="")))


async def test_usage_by_member_names_members_in_the_csv_and_escapes_formulas(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    _join(fake, ALICE, MALLORY)
    await _image(running_bot, ALICE)
    await _image(running_bot, ALICE)
    await _image(running_bot, MALLORY)
    message = await fake.response(await fake.invoke("usage", user=fake.ADMIN, by="member"))
    assert message.ephemeral
    files = {f.filename: f for f in message.latest_files}
    assert set(files) == {"usage.png", "usage.csv"}
    rows = _csv(message)
    assert rows[0] == ["member_id", "member", "category", "credits", "requests"]
    assert rows[1:] == [
        [str(ALICE.id), "Alice Wonder", "Images", "8", "2"],
        [str(MALLORY.id), '\'=HYPERLINK("http://evil.example","click")', "Images", "4", "1"],
    ]
    description = message.embeds[0]["description"]
    assert f"**Alice Wonder** (<@{ALICE.id}>) — 8 credits (2)" in description
    assert "member …" not in description
    assert "this period: 1 " in message.embeds[0]["footer"]["text"]
    chart = Image.open(io.BytesIO(files["usage.png"].data))
    assert chart.format == "PNG"
    background = tuple(int(BACKGROUND[i : i + 2], 16) for i in (1, 3, 5))
    assert chart.convert("RGB").getpixel((1, 1)) == background


async def test_usage_by_channel_names_channels(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    _join(fake, ALICE)
    await _image(running_bot, ALICE, channel_id=fake.OTHER_CHANNEL_ID)
    await _image(running_bot, ALICE, channel_id=fake.OTHER_CHANNEL_ID)
    await _image(running_bot, ALICE)
    message = await fake.response(await fake.invoke("usage", user=fake.ADMIN, by="channel"))
    rows = _csv(message)
    assert rows[1:] == [
        [str(fake.OTHER_CHANNEL_ID), "#generation", "Images", "8", "2"],
        [str(fake.CHANNEL_ID), "#general", "Images", "4", "1"],
    ]


async def test_usage_periods_are_the_budget_period_and_the_one_before(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    await _image(running_bot, fake.MEMBER)
    synced = {c["name"]: c for c in fake.commands(fake.GUILD_ID)}
    period_option = next(o for o in synced["usage"]["options"] if o["name"] == "period")
    assert [(c["name"], c["value"]) for c in period_option["choices"]] == [
        ("This period", "this_period"),
        ("Last period", "last_period"),
        ("Last 30 days", "last_30_days"),
    ]
    last = await fake.response(await fake.invoke("usage", user=fake.ADMIN, period="last_period", by="category"))
    assert last.embeds[0]["description"] == "No credits were spent in this period."
    assert _csv(last) == [["category", "credits", "requests"]]
    recent = await fake.response(await fake.invoke("usage", user=fake.ADMIN, period="last_30_days", by="category"))
    assert _csv(recent)[1:] == [["Images", "4", "1"]]
    assert "last 30 days: " in recent.embeds[0]["footer"]["text"]


async def test_last_period_of_a_one_off_pool_says_what_to_pick(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    await running_bot.services.ledger.set_allowance(fake.GUILD_ID, 500, "none", by=fake.ADMIN.id)
    message = await fake.response(await fake.invoke("usage", user=fake.ADMIN, period="last_period"))
    assert message.ephemeral
    assert "one-off pool, so there is no last period" in message.content
    assert "**This period** or **Last 30 days**" in message.content

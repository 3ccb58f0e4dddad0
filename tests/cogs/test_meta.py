"""/models and /help end to end: the real bot in-process against the fake Discord and the sandbox."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from bot import __version__
from bot.about import format_uptime
from bot.invite import invite_url
from tests.conftest import RunningBot
from tests.fakediscord.state import MessageRecord


async def test_commands_are_synced_to_the_dev_guild(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    names = {command["name"] for command in fake.commands(fake.GUILD_ID)}
    assert {"models", "help"} <= names
    assert fake.unknown_routes() == []


async def test_models_video_lists_video_models_with_prices(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    ix = await fake.invoke("models", category="video")
    message = await fake.response(ix)
    embed = message.embeds[0]
    assert embed["title"] == "Models — Video"
    assert "`kling-3-0-std-i2v` — 42 credits" in embed["description"]
    assert "nano-banana" not in embed["description"]
    assert message.ephemeral


async def test_models_pages_with_buttons_only_for_the_asker(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    ix = await fake.invoke("models")
    message = await fake.response(ix)
    assert message.embeds[0]["footer"]["text"].startswith("Page 1/")
    next_id = next(cid for cid in message.custom_ids() if cid)
    ids = message.custom_ids()
    click = await fake.click(message, ids[1], user=fake.MEMBER)
    await fake.wait_for(lambda: message.embeds[0]["footer"]["text"].startswith("Page 2/"))
    assert click.callback_types == [7]
    stranger = await fake.click(message, next_id, user=fake.OTHER_MEMBER)
    await fake.wait_for(lambda: stranger.callbacks)
    refusal = fake.original(stranger)
    assert refusal is not None
    assert "yourself" in refusal.content


async def test_category_autocomplete(running_bot: RunningBot) -> None:
    choices = await running_bot.fake.autocomplete("models", focused="category", category="vi")
    assert [c["value"] for c in choices] == ["video"]


async def test_unknown_category_is_a_clear_ephemeral_error(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    message = await fake.response(await fake.invoke("models", category="holograms"))
    assert message.ephemeral
    assert "There is no model category" in message.content


def _help_text(message: MessageRecord) -> str:
    """The /help text across its embeds (it outgrows one when every admin command is listed)."""
    return "\n\n".join(embed["description"] for embed in message.embeds)


ADMIN_COMMANDS = ("`/quota", "`/channels", "`/usage`", "`/chat-defaults`")


async def test_help_as_a_plain_member_lists_no_admin_or_operator_command(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    message = await fake.response(await fake.invoke("help", user=fake.MEMBER))
    assert message.ephemeral
    text = _help_text(message)
    for member_command in ("`/models`", "`/help`", "`/chat`", "`/image`", "`/credits`", "**Edit image**"):
        assert member_command in text
    for hidden in (*ADMIN_COMMANDS, "`/budget", "Server admin", "Bot operator"):
        assert hidden not in text
    # Grouped by what they do, one line each with its price range from the catalog.
    assert "**Images**" in text
    assert "**Video**" in text
    image_line = next(line for line in text.split("\n") if line.startswith("• `/image`"))
    assert image_line.endswith("· ~1–10 credits")
    assert all(len(embed["description"]) <= 4096 for embed in message.embeds)  # Discord's limits
    assert sum(len(embed["description"]) for embed in message.embeds) <= 6000


async def test_help_as_an_admin_shows_the_admin_and_operator_sections(running_bot: RunningBot) -> None:
    fake = running_bot.fake  # the fake's admin has Manage Server and is the bot's operator (OWNER_IDS)
    message = await fake.response(await fake.invoke("help", user=fake.ADMIN))
    text = _help_text(message)
    admin_part = text.split("**Server admin (Manage Server)**", 1)[1].split("**Bot operator", 1)[0]
    for command in ADMIN_COMMANDS:
        assert command in admin_part
    assert "`/budget set`" in text.split("**Bot operator (OWNER_IDS)**", 1)[1]
    assert "`/chat`" in text
    assert all(len(embed["description"]) <= 4096 for embed in message.embeds)  # Discord's limits
    assert sum(len(embed["description"]) for embed in message.embeds) <= 6000


async def test_models_groups_the_chat_models_on_one_line(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    message = await fake.response(await fake.invoke("models", category="chat"))
    lines = message.embeds[0]["description"].split("\n")
    chat_lines = [line for line in lines if line.startswith("• ")]
    assert len(chat_lines) == 1
    assert chat_lines[0].startswith("• 21 models at ~2 credits per message")
    assert "`gpt-5`" in chat_lines[0]


async def test_about_shows_version_uptime_servers_and_the_invite_link(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    message = await fake.response(await fake.invoke("about"))
    assert message.ephemeral
    fields = {field["name"]: field["value"] for field in message.embeds[0]["fields"]}
    assert fields["Version"] == __version__
    assert re.fullmatch(r"\d+ (s|min)", fields["Uptime"])
    assert fields["Servers"] == str(len(fake.guilds))
    assert fields["Add it to a server"] == f"[Invite link]({invite_url(fake.APPLICATION_ID)})"


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0 s"), (59.9, "59 s"), (60, "1 min"), (3599, "59 min"), (3660, "1 h 1 min"), (90_061, "1 d 1 h")],
)
def test_uptime_shows_the_two_largest_units(seconds: float, shown: str) -> None:
    assert format_uptime(seconds) == shown


def test_the_version_is_the_packages() -> None:
    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["version"] == __version__

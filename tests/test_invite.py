"""The invite link asks for exactly the permissions the bot uses, computed from named bits."""

from __future__ import annotations

import re
from pathlib import Path

import discord

from bot.invite import PERMISSIONS, REQUIRED_PERMISSIONS, invite_url

ROOT = Path(__file__).resolve().parent.parent


def test_the_permission_integer_matches_discord_py() -> None:
    expected = discord.Permissions(
        view_channel=True,
        send_messages=True,
        send_messages_in_threads=True,
        embed_links=True,
        attach_files=True,
        read_message_history=True,
        send_voice_messages=True,
    )
    assert expected.value == PERMISSIONS == 70643622202368
    # Nothing more: no admin, no manage, no mentions of everyone.
    granted = discord.Permissions(PERMISSIONS)
    assert not granted.administrator
    assert not granted.manage_guild
    assert not granted.manage_messages
    assert not granted.mention_everyone


def test_the_invite_link_has_both_scopes_and_the_integer() -> None:
    assert invite_url(900000000000000001) == (
        "https://discord.com/oauth2/authorize?client_id=900000000000000001"
        "&scope=bot+applications.commands&permissions=70643622202368"
    )


def test_the_readme_names_every_permission_and_the_integer() -> None:
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())  # lines wrap anywhere
    for name in REQUIRED_PERMISSIONS:
        assert f"*{name}*" in readme
    assert f"permissions integer `{PERMISSIONS}`" in readme
    assert re.search(rf"permissions={PERMISSIONS}\b", readme)

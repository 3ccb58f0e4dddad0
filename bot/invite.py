"""The bot's invite link: the two OAuth2 scopes and exactly the channel permissions it uses.

The integer is computed from Discord's documented permission bits (discord.com/developers/docs/topics/permissions),
named one by one, so the link asks for nothing more; a test checks it against ``discord.Permissions``.
``bot/`` stays Discord-free, so this module does not import discord.py.
"""

from __future__ import annotations

from urllib.parse import urlencode

# Discord's permission bits (documented values), only those the bot needs.
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
SEND_MESSAGES_IN_THREADS = 1 << 38
SEND_VOICE_MESSAGES = 1 << 46

# Why each one: see the channel it answers in, post there and in threads, result embeds, result files
# (images, MP4, GLB, audio), replies to earlier messages (results reply to their status message), and /tts
# results posted as voice messages.
REQUIRED_PERMISSIONS: dict[str, int] = {
    "View Channels": VIEW_CHANNEL,
    "Send Messages": SEND_MESSAGES,
    "Send Messages in Threads": SEND_MESSAGES_IN_THREADS,
    "Embed Links": EMBED_LINKS,
    "Attach Files": ATTACH_FILES,
    "Read Message History": READ_MESSAGE_HISTORY,
    "Send Voice Messages": SEND_VOICE_MESSAGES,
}

PERMISSIONS = sum(REQUIRED_PERMISSIONS.values())
SCOPES = ("bot", "applications.commands")


def invite_url(application_id: int) -> str:
    """``https://discord.com/oauth2/authorize?client_id=…&scope=bot+applications.commands&permissions=…``."""
    query = urlencode({"client_id": application_id, "scope": " ".join(SCOPES), "permissions": PERMISSIONS})
    return f"https://discord.com/oauth2/authorize?{query}"

"""The fake Discord's world: users, guilds, roles, channels, and messages with every version kept."""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

# Permission bits (https://discord.com/developers/docs/topics/permissions).
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_HISTORY = 1 << 16
USE_APP_COMMANDS = 1 << 31
MANAGE_GUILD = 1 << 5
BASIC = VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS | ATTACH_FILES | READ_HISTORY | USE_APP_COMMANDS

DISCORD_EPOCH_MS = 1_420_070_400_000
_sequence = itertools.count()


def snowflake() -> int:
    """A fresh id made like Discord's: it encodes the current time (discord.py reads ``created_at`` from it)."""
    now_ms = int(time.time() * 1000)
    return ((now_ms - DISCORD_EPOCH_MS) << 22) | (next(_sequence) % (1 << 22))


def iso_now() -> str:
    """The current time as Discord writes it."""
    return dt.datetime.now(dt.UTC).isoformat()


@dataclass(frozen=True)
class User:
    """A Discord user (members and the bot)."""

    id: int
    name: str
    bot: bool = False
    nick: str | None = None  # the member's server nickname (their display name there), sent in member objects

    def payload(self) -> dict[str, Any]:
        """The user object."""
        return {
            "id": str(self.id),
            "username": self.name,
            "global_name": self.name,
            "discriminator": "0",
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
        }


@dataclass(frozen=True)
class Role:
    """A guild role."""

    id: int
    name: str
    permissions: int
    position: int = 1

    def payload(self) -> dict[str, Any]:
        """The role object."""
        return {
            "id": str(self.id),
            "name": self.name,
            "permissions": str(self.permissions),
            "position": self.position,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }


@dataclass(frozen=True)
class Channel:
    """A text channel, a thread (type 11, with a parent) or a DM (type 1)."""

    id: int
    name: str
    type: int = 0
    guild_id: int | None = None
    parent_id: int | None = None
    recipient: User | None = None
    nsfw: bool = False  # age-restricted (threads: Discord sends their parent's flag only on the parent)

    def payload(self) -> dict[str, Any]:
        """The channel object."""
        data: dict[str, Any] = {"id": str(self.id), "type": self.type, "name": self.name, "position": 0}
        if self.guild_id is not None:
            data["guild_id"] = str(self.guild_id)
            data["permission_overwrites"] = []
            data["nsfw"] = self.nsfw
            data["last_message_id"] = None
        if self.parent_id is not None:
            data["parent_id"] = str(self.parent_id)
        if self.type == 11:
            data["owner_id"] = "1"
            data["member_count"] = 1
            data["message_count"] = 0
            data["thread_metadata"] = {
                "archived": False,
                "auto_archive_duration": 1440,
                "archive_timestamp": iso_now(),
                "locked": False,
            }
        if self.type == 1 and self.recipient is not None:
            data["recipients"] = [self.recipient.payload()]
            data.pop("name")
        return data


@dataclass
class Guild:
    """A guild with its roles, channels and members (user → role ids)."""

    id: int
    name: str
    owner_id: int
    roles: list[Role]
    channels: list[Channel]
    members: dict[int, tuple[User, tuple[int, ...]]]
    filesize_limit: int = 10 * 1024 * 1024

    def permissions_of(self, user_id: int) -> int:
        """The member's guild permissions: @everyone plus their roles'."""
        everyone = next(role for role in self.roles if role.id == self.id)
        total = everyone.permissions
        _user, role_ids = self.members[user_id]
        for role in self.roles:
            if role.id in role_ids:
                total |= role.permissions
        return total

    def member_payload(self, user_id: int, *, with_permissions: bool = False) -> dict[str, Any]:
        """The member object (with ``permissions`` inside interactions)."""
        user, role_ids = self.members[user_id]
        data: dict[str, Any] = {
            "user": user.payload(),
            "roles": [str(r) for r in role_ids],
            "joined_at": "2025-01-01T00:00:00+00:00",
            "deaf": False,
            "mute": False,
            "flags": 0,
            "nick": user.nick,
            "avatar": None,
            "pending": False,
        }
        if with_permissions:
            data["permissions"] = str(self.permissions_of(user_id))
        return data

    def payload(self) -> dict[str, Any]:
        """GUILD_CREATE's data."""
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "owner_id": str(self.owner_id),
            "roles": [role.payload() for role in self.roles],
            "channels": [c.payload() for c in self.channels if c.type != 11],
            "threads": [c.payload() for c in self.channels if c.type == 11],
            "members": [self.member_payload(user_id) for user_id in self.members],
            "member_count": len(self.members),
            "unavailable": False,
            "large": False,
            "features": [],
            "emojis": [],
            "stickers": [],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "system_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
            "joined_at": "2025-01-01T00:00:00+00:00",
            "max_members": 500000,
        }


@dataclass
class StoredFile:
    """A file attached to a message or uploaded by a test."""

    filename: str
    data: bytes
    content_type: str


@dataclass
class MessageRecord:
    """A message and every version of it a user could have seen."""

    id: int
    channel_id: int
    versions: list[dict[str, Any]] = field(default_factory=list)
    files: list[list[StoredFile]] = field(default_factory=list)  # per version
    deleted: bool = False
    ephemeral: bool = False
    loading: bool = False
    created_at: float = field(default_factory=time.monotonic)

    @property
    def current(self) -> dict[str, Any]:
        """The latest version (a snapshot: safe to keep)."""
        return self.versions[-1]

    @property
    def content(self) -> str:
        """The latest content."""
        return self.current.get("content") or ""

    @property
    def embeds(self) -> list[dict[str, Any]]:
        """The latest embeds."""
        return self.current.get("embeds") or []

    @property
    def components(self) -> list[dict[str, Any]]:
        """The latest components (action rows)."""
        return self.current.get("components") or []

    @property
    def latest_files(self) -> list[StoredFile]:
        """The files of the latest version."""
        return self.files[-1] if self.files else []

    def custom_ids(self) -> list[str]:
        """Every component custom_id on the latest version."""
        ids: list[str] = []
        for row in self.components:
            for component in row.get("components", []):
                if "custom_id" in component:
                    ids.append(component["custom_id"])
        return ids

    def snapshot(self, version: dict[str, Any], files: list[StoredFile]) -> None:
        """Keep a deep copy of a new version."""
        self.versions.append(copy.deepcopy(version))
        self.files.append(list(files))

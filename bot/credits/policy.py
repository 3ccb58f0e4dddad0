"""Community generation channels: which categories may be used in which channels.

Per category, a guild is in one of two modes:

- **everywhere** (the default): allowed in every channel except those explicitly disabled
  (``/channels disable video #general`` → video everywhere but #general);
- **only in listed channels**: as soon as a category is enabled somewhere
  (``/channels enable video #video-gen``), it is allowed only where it is enabled.

``/channels reset`` returns a category to "everywhere". Threads follow their parent channel.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.audit import AuditLog
from bot.db import Database

# A listed "channel" that matches no real channel: "only in" this means the category is off everywhere.
NOWHERE = 0


@dataclass(frozen=True)
class CategoryPolicy:
    """Where one category may be used."""

    category: str
    only_in: tuple[int, ...]  # non-empty: allowed only in these channels
    disabled_in: tuple[int, ...]  # in "everywhere" mode: everywhere except these

    def allows(self, channel_id: int) -> bool:
        """True when the category may be used in ``channel_id`` (a thread passes its parent)."""
        if self.only_in:
            return channel_id in self.only_in
        return channel_id not in self.disabled_in

    def describe(self) -> str:
        """One line for /channels show."""
        listed = [c for c in self.only_in if c != NOWHERE]
        if self.only_in and not listed:
            return "switched off everywhere"
        if listed:
            return "only in " + ", ".join(f"<#{c}>" for c in listed)
        if self.disabled_in:
            return "everywhere except " + ", ".join(f"<#{c}>" for c in self.disabled_in)
        return "everywhere"


class ChannelPolicy:
    """Reads and changes the channel rules of a guild."""

    def __init__(self, db: Database, audit: AuditLog | None = None) -> None:
        self.db = db
        self.audit = audit

    async def _audited(self, guild_id: int, category: str, by: int | None, before: CategoryPolicy) -> None:
        """Record a channel-policy change as ``before → after`` (one line each, as /channels show says it)."""
        if self.audit is None:
            return
        after = await self.policy(guild_id, category)
        if after != before:
            await self.audit.record(
                guild_id, by, "channels", target=category, old=before.describe(), new=after.describe()
            )

    async def policy(self, guild_id: int, category: str) -> CategoryPolicy:
        """The rules of one category."""
        rows = await self.db.fetch_all(
            "SELECT channel_id, enabled FROM channel_policy WHERE guild_id = ? AND category = ? ORDER BY channel_id",
            (guild_id, category),
        )
        return CategoryPolicy(
            category=category,
            only_in=tuple(row["channel_id"] for row in rows if row["enabled"]),
            disabled_in=tuple(row["channel_id"] for row in rows if not row["enabled"]),
        )

    async def is_allowed(self, guild_id: int, category: str, channel_id: int, *, parent_id: int | None = None) -> bool:
        """True when ``category`` may be used in the channel (threads are judged by their parent)."""
        policy = await self.policy(guild_id, category)
        return policy.allows(parent_id if parent_id is not None else channel_id)

    async def allowed_channels(self, guild_id: int, category: str) -> list[int]:
        """The channels a category is limited to (empty: it is not limited to a list)."""
        return [c for c in (await self.policy(guild_id, category)).only_in if c != NOWHERE]

    async def enable(self, guild_id: int, category: str, channel_id: int, *, by: int | None = None) -> None:
        """Allow the category in this channel (and, from now on, only in enabled channels)."""
        before = await self.policy(guild_id, category)
        await self._set(guild_id, category, channel_id, True)
        await self.db.execute(
            "DELETE FROM channel_policy WHERE guild_id = ? AND category = ? AND channel_id = ?",
            (guild_id, category, NOWHERE),
        )
        await self._audited(guild_id, category, by, before)

    async def disable(self, guild_id: int, category: str, channel_id: int, *, by: int | None = None) -> None:
        """Forbid the category in this channel (taking it off the list in "only in" mode)."""
        before = await self.policy(guild_id, category)
        await self._disable(guild_id, category, channel_id)
        await self._audited(guild_id, category, by, before)

    async def _disable(self, guild_id: int, category: str, channel_id: int) -> None:
        async with self.db.transaction() as conn:
            rows = await conn.fetch_all(
                "SELECT channel_id FROM channel_policy WHERE guild_id = ? AND category = ? AND enabled = 1",
                (guild_id, category),
            )
            listed = [row[0] for row in rows]
            if listed:
                await conn.execute(
                    "DELETE FROM channel_policy WHERE guild_id = ? AND category = ? AND channel_id = ?",
                    (guild_id, category, channel_id),
                )
                if set(listed) <= {channel_id, NOWHERE}:
                    # The last listed channel was removed: the category is now off everywhere.
                    await conn.execute(
                        "INSERT INTO channel_policy (guild_id, channel_id, category, enabled) VALUES (?, ?, ?, 1)"
                        " ON CONFLICT (guild_id, channel_id, category) DO UPDATE SET enabled = 1",
                        (guild_id, NOWHERE, category),
                    )
                return
            await conn.execute(
                "INSERT INTO channel_policy (guild_id, channel_id, category, enabled) VALUES (?, ?, ?, 0)"
                " ON CONFLICT (guild_id, channel_id, category) DO UPDATE SET enabled = 0",
                (guild_id, channel_id, category),
            )

    async def reset(self, guild_id: int, category: str, *, by: int | None = None) -> None:
        """Back to the default: allowed everywhere."""
        before = await self.policy(guild_id, category)
        await self.db.execute("DELETE FROM channel_policy WHERE guild_id = ? AND category = ?", (guild_id, category))
        await self._audited(guild_id, category, by, before)

    async def _set(self, guild_id: int, category: str, channel_id: int, enabled: bool) -> None:
        await self.db.execute(
            "INSERT INTO channel_policy (guild_id, channel_id, category, enabled) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (guild_id, channel_id, category) DO UPDATE SET enabled = excluded.enabled",
            (guild_id, channel_id, category, int(enabled)),
        )

    async def show(self, guild_id: int, categories: tuple[str, ...]) -> list[CategoryPolicy]:
        """The rules of every category, for /channels show."""
        return [await self.policy(guild_id, category) for category in categories]

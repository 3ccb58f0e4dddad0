"""Small persistent key/value state (e.g. the hash of the last global command sync)."""

from __future__ import annotations

from bot.db import Database


class KeyValueStore:
    """String values by key in the ``kv`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, key: str) -> str | None:
        """The stored value, or None."""
        return await self._db.fetch_value("SELECT value FROM kv WHERE key = ?", (key,))

    async def set(self, key: str, value: str) -> None:
        """Store ``value`` under ``key`` (insert or replace)."""
        await self._db.execute(
            "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

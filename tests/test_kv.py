"""The key/value store (the last global command sync's hash) on both backends."""

from __future__ import annotations

from bot.db import Database
from bot.kv import KeyValueStore


async def test_get_set_and_replace_on_each_backend(migrated: Database) -> None:
    kv = KeyValueStore(migrated)
    assert await kv.get("commands_hash") is None
    await kv.set("commands_hash", "abc")
    assert await kv.get("commands_hash") == "abc"
    await kv.set("commands_hash", "def")  # a second sync replaces the value, never a second row
    assert await kv.get("commands_hash") == "def"
    assert await migrated.fetch_value("SELECT COUNT(*) FROM kv") == 1

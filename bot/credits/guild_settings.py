"""Per-guild settings an admin controls: confirmation threshold, shared buttons, chat defaults, alerts."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from bot.db import Database
from bot.inputs import ALERT_RANGE, CONFIRM_RANGE, check_int, check_system_prompt

DEFAULT_ALERT_THRESHOLDS = (80, 100)


@dataclass(frozen=True)
class GuildSettings:
    """A guild's settings (defaults when the admin never changed them)."""

    confirm_threshold: int
    shared_buttons: bool = False
    default_chat_model: str | None = None
    system_prompt: str | None = None
    alert_channel_id: int | None = None
    alert_thresholds: tuple[int, ...] = DEFAULT_ALERT_THRESHOLDS


class GuildSettingsRepo:
    """Reads and writes ``guild_settings``."""

    def __init__(self, db: Database, *, default_confirm_threshold: int) -> None:
        self.db = db
        self.default_confirm_threshold = default_confirm_threshold

    async def get(self, guild_id: int) -> GuildSettings:
        """The guild's settings."""
        row = await self.db.fetch_one("SELECT * FROM guild_settings WHERE guild_id = ?", (guild_id,))
        if row is None:
            return GuildSettings(confirm_threshold=self.default_confirm_threshold)
        thresholds = tuple(int(v) for v in row["alert_thresholds"].split(",") if v.strip())
        return GuildSettings(
            confirm_threshold=row["confirm_threshold"],
            shared_buttons=bool(row["shared_buttons"]),
            default_chat_model=row["default_chat_model"],
            system_prompt=row["system_prompt"],
            alert_channel_id=row["alert_channel_id"],
            alert_thresholds=thresholds,
        )

    async def update(self, guild_id: int, **changes: Any) -> GuildSettings:
        """Change some settings (names as in :class:`GuildSettings`), atomically.

        One upsert that writes only the changed columns: two admins changing different settings at
        the same moment both keep their change (a read-then-write of the whole row lost one).
        """
        known = {f.name for f in fields(GuildSettings)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown guild settings: {', '.join(sorted(unknown))}")
        changes = _checked(changes)
        if not changes:
            return await self.get(guild_id)
        defaults = GuildSettings(confirm_threshold=self.default_confirm_threshold)
        row = {
            f.name: _column_value(f.name, changes.get(f.name, getattr(defaults, f.name))) for f in fields(GuildSettings)
        }
        columns = list(row)
        # Column names come from the dataclass (never from input); values are bound parameters.
        updates = ", ".join(f"{name} = excluded.{name}" for name in changes)
        await self.db.execute(
            f"INSERT INTO guild_settings (guild_id, {', '.join(columns)}) VALUES (?, {', '.join('?' for _ in columns)})"
            f" ON CONFLICT (guild_id) DO UPDATE SET {updates}",
            (guild_id, *row.values()),
        )
        return await self.get(guild_id)


def _column_value(name: str, value: Any) -> Any:
    """How a setting is stored: booleans as 0/1, thresholds as "80,100"."""
    if name == "shared_buttons":
        return int(bool(value))
    if name == "alert_thresholds":
        return ",".join(str(int(v)) for v in value)
    return value


def _checked(changes: dict[str, Any]) -> dict[str, Any]:
    """The changes with their values range-checked (``InvalidInput`` before anything is written)."""
    checked = dict(changes)
    if "confirm_threshold" in checked:
        checked["confirm_threshold"] = check_int(
            checked["confirm_threshold"], *CONFIRM_RANGE, name="The confirmation threshold", unit="credits"
        )
    if "alert_thresholds" in checked:
        checked["alert_thresholds"] = tuple(
            check_int(value, *ALERT_RANGE, name="Alert thresholds", unit="%") for value in checked["alert_thresholds"]
        )
    if checked.get("system_prompt") is not None:
        checked["system_prompt"] = check_system_prompt(checked["system_prompt"])
    return checked

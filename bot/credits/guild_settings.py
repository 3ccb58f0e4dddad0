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
        """Change some settings (names as in :class:`GuildSettings`)."""
        known = {f.name for f in fields(GuildSettings)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown guild settings: {', '.join(sorted(unknown))}")
        changes = _checked(changes)
        current = await self.get(guild_id)
        merged = {**{f.name: getattr(current, f.name) for f in fields(GuildSettings)}, **changes}
        await self.db.execute(
            "INSERT INTO guild_settings (guild_id, confirm_threshold, shared_buttons, default_chat_model,"
            " system_prompt, alert_channel_id, alert_thresholds) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (guild_id) DO UPDATE SET confirm_threshold = excluded.confirm_threshold,"
            " shared_buttons = excluded.shared_buttons, default_chat_model = excluded.default_chat_model,"
            " system_prompt = excluded.system_prompt, alert_channel_id = excluded.alert_channel_id,"
            " alert_thresholds = excluded.alert_thresholds",
            (
                guild_id,
                merged["confirm_threshold"],
                int(merged["shared_buttons"]),
                merged["default_chat_model"],
                merged["system_prompt"],
                merged["alert_channel_id"],
                ",".join(str(int(v)) for v in merged["alert_thresholds"]),
            ),
        )
        return await self.get(guild_id)


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

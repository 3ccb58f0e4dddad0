"""Per-guild settings an admin controls: confirmation threshold, shared buttons, chat defaults, alerts."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from bot.audit import AuditLog
from bot.db import Database
from bot.errors import InvalidInput
from bot.inputs import ALERT_RANGE, CONFIRM_RANGE, INFLIGHT_RANGE, check_int, check_system_prompt

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
    adult_content: str = "age_restricted"  # or "off": see bot.moderation
    max_inflight: int | None = None  # None: MAX_INFLIGHT_PER_MEMBER
    voice_clone_notice: bool = True  # the one-time consent notice before a member's first /voice-clone


class GuildSettingsRepo:
    """Reads and writes ``guild_settings``."""

    def __init__(self, db: Database, *, default_confirm_threshold: int, audit: AuditLog | None = None) -> None:
        self.db = db
        self.default_confirm_threshold = default_confirm_threshold
        self.audit = audit

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
            adult_content=row["adult_content"],
            max_inflight=row["max_inflight"],
            voice_clone_notice=bool(row["voice_clone_notice"]),
        )

    async def update(self, guild_id: int, *, by: int | None = None, **changes: Any) -> GuildSettings:
        """Change some settings (names as in :class:`GuildSettings`), atomically; ``by`` is audited as the actor.

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
        before = await self.get(guild_id)
        async with self.db.transaction() as tx:
            await tx.execute(
                f"INSERT INTO guild_settings (guild_id, {', '.join(columns)})"
                f" VALUES (?, {', '.join('?' for _ in columns)}) ON CONFLICT (guild_id) DO UPDATE SET {updates}",
                (guild_id, *row.values()),
            )
            if self.audit is not None:
                for name, value in changes.items():
                    old = getattr(before, name)
                    if old != value:
                        await self.audit.record(
                            guild_id, by, f"setting {name}", old=_shown(old), new=_shown(value), tx=tx
                        )
        return await self.get(guild_id)


def _shown(value: Any) -> str:
    """A setting as the audit log shows it ("80,100", "on", "none")."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def _column_value(name: str, value: Any) -> Any:
    """How a setting is stored: booleans as 0/1, thresholds as "80,100"."""
    if name in ("shared_buttons", "voice_clone_notice"):
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
    if checked.get("adult_content") is not None and checked["adult_content"] not in ("off", "age_restricted"):
        raise InvalidInput("Adult content is either `off` or `age_restricted`.")
    if checked.get("max_inflight") is not None:
        checked["max_inflight"] = check_int(
            checked["max_inflight"], *INFLIGHT_RANGE, name="The in-flight limit", unit="requests"
        )
    if checked.get("system_prompt") is not None:
        checked["system_prompt"] = check_system_prompt(checked["system_prompt"])
    return checked

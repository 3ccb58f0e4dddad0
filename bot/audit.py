"""The admin audit log: every admin or operator change as a row — who, when, what, old → new.

The repositories that make the changes (ledger, guild settings, channel policy, moderation) write the
row themselves, in the same transaction as the change where they have one, so no command can forget
it. ``/quota audit`` reads the latest rows; a listener (the alert channel) may be told of each row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from bot.db import Database, Executor

log = logging.getLogger(__name__)

# Values longer than this are cut in the log (a system prompt, a long rule): the row says *that* it changed.
VALUE_CHARS = 200


@dataclass(frozen=True)
class AuditEntry:
    """One change: who (None: the bot itself), when (epoch seconds), what, on what, old → new."""

    id: int
    guild_id: int
    actor_id: int | None
    action: str
    target: str | None
    old: str | None
    new: str | None
    at: float

    def line(self) -> str:
        """``<t:…:R> <@actor> cap: image for <@1> 5 → 10`` (one line of /quota audit)."""
        who = f"<@{self.actor_id}>" if self.actor_id else "the bot"
        what = self.action + (f" ({self.target})" if self.target else "")
        return f"<t:{int(self.at)}:R> {who} {what}: {self.old or '—'} → {self.new or '—'}"


def shown(value: object) -> str | None:
    """How a value is written to the log: None stays None, everything else a short string."""
    if value is None:
        return None
    text = str(value)
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"


class AuditLog:
    """Writes and reads ``audit_log``."""

    def __init__(self, db: Database, clock: Callable[[], float]) -> None:
        self.db = db
        self.clock = clock

    async def record(
        self,
        guild_id: int,
        actor_id: int | None,
        action: str,
        *,
        target: str | None = None,
        old: object = None,
        new: object = None,
        tx: Executor | None = None,
    ) -> None:
        """Append one row (inside ``tx`` when the change has a transaction, so both commit together)."""
        executor: Executor = tx if tx is not None else self.db
        now = self.clock()
        await executor.execute(
            "INSERT INTO audit_log (guild_id, actor_id, action, target, old_value, new_value, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (guild_id, actor_id, action, target, shown(old), shown(new), now),
        )
        log.info("audit guild=%s actor=%s action=%s target=%s", guild_id, actor_id, action, target)

    async def latest(self, guild_id: int, *, actor_or_target: int | None = None, limit: int = 25) -> list[AuditEntry]:
        """The latest ``limit`` rows of a server, newest first; with a member: changes by them or about them."""
        if actor_or_target is None:
            rows = await self.db.fetch_all(
                "SELECT * FROM audit_log WHERE guild_id = ? ORDER BY id DESC LIMIT ?", (guild_id, limit)
            )
        else:
            rows = await self.db.fetch_all(
                "SELECT * FROM audit_log WHERE guild_id = ? AND (actor_id = ? OR target LIKE ?)"
                " ORDER BY id DESC LIMIT ?",
                (guild_id, actor_or_target, f"%<@{actor_or_target}>%", limit),
            )
        return [
            AuditEntry(
                id=row["id"],
                guild_id=row["guild_id"],
                actor_id=row["actor_id"],
                action=row["action"],
                target=row["target"],
                old=row["old_value"],
                new=row["new_value"],
                at=row["created_at"],
            )
            for row in rows
        ]

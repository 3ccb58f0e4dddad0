"""Deleting a member's personal data (/forget-me, /privacy purge) and a removed server's (retention).

What goes: conversation turns (and the message links that point at them), the prompt text and
uploaded-source links of image generations, the request payload (prompt, text to speak, input
images, voice samples) and webhook payload of jobs, the display names kept with reservations, and the
record of having accepted the voice-clone consent notice (it is shown again afterwards).
What stays: every ledger row and every reservation's amounts and states (the financial record; a
member's caps keep counting this period), caps, and a job's or generation's model, credits and
output (so the books and /jobs still add up).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.db import Database, Executor

# What a job's request payload becomes: the books need only the job's model and credits, kept in their own columns.
BLANK_REQUEST = "{}"


@dataclass(frozen=True)
class PurgeReport:
    """How many rows of each kind a purge deleted or blanked."""

    turns: int = 0
    generations: int = 0
    jobs: int = 0
    names: int = 0
    consents: int = 0  # voice-clone notice acceptances (bot.consent)

    @property
    def total(self) -> int:
        """Rows changed in all."""
        return self.turns + self.generations + self.jobs + self.names + self.consents

    def __add__(self, other: PurgeReport) -> PurgeReport:
        return PurgeReport(
            self.turns + other.turns,
            self.generations + other.generations,
            self.jobs + other.jobs,
            self.names + other.names,
            self.consents + other.consents,
        )


# SQL below is assembled from these fixed column conditions only; every value is a ``?`` parameter.
def _scope(user_id: int | None, guild_id: int | None) -> tuple[str, list[Any]]:
    """``WHERE`` conditions (and their parameters) for a member, a server, or a member in a server."""
    conditions: list[str] = []
    params: list[Any] = []
    if user_id is not None:
        conditions.append("user_id = ?")
        params.append(user_id)
    if guild_id is not None:
        conditions.append("guild_id = ?")
        params.append(guild_id)
    if not conditions:
        raise ValueError("a purge needs a member, a server, or both")  # never "everything" by accident
    return " AND ".join(conditions), params


async def delete_turns(tx: Executor, where: str, params: list[Any]) -> int:
    """Delete the chat turns matching ``where`` (over ``chat_turns``) with their message links.

    Links and children are handled explicitly rather than by the foreign keys' actions, so the
    result is the same on both backends whatever the connection's foreign-key setting.
    """
    ids = f"SELECT id FROM chat_turns WHERE {where}"
    await tx.execute(f"DELETE FROM chat_messages WHERE turn_id IN ({ids})", params)
    # Another member's reply continuing this conversation loses its parent, not its own text.
    await tx.execute(f"UPDATE chat_turns SET parent_id = NULL WHERE parent_id IN ({ids})", params)
    return await tx.execute(f"DELETE FROM chat_turns WHERE {where}", params)


async def blank_generations(tx: Executor, where: str, params: list[Any]) -> int:
    """Blank the prompt and the member's uploaded sources of the generations matching ``where``."""
    return await tx.execute(
        f"UPDATE generations SET prompt = '', source_urls = '[]'"
        f" WHERE {where} AND (prompt <> '' OR source_urls <> '[]')",
        params,
    )


async def blank_jobs(tx: Executor, where: str, params: list[Any]) -> int:
    """Blank the request and webhook payloads of the jobs matching ``where``."""
    return await tx.execute(
        f"UPDATE jobs SET request_json = ?, webhook_payload = NULL"
        f" WHERE {where} AND (request_json <> ? OR webhook_payload IS NOT NULL)",
        [BLANK_REQUEST, *params, BLANK_REQUEST],
    )


class PrivacyStore:
    """Purges of personal data by member and/or server, each in one transaction."""

    def __init__(self, db: Database, clock: Callable[[], float]) -> None:
        self.db = db
        self.clock = clock

    async def purge(self, *, user_id: int | None = None, guild_id: int | None = None) -> PurgeReport:
        """Delete a member's personal data in one server, in every server (``guild_id`` None, DMs included),
        or a whole server's (``user_id`` None). Ledger rows, reservation amounts and caps stay.

        Idempotent: a second call changes nothing and reports zeros.
        """
        where, params = _scope(user_id, guild_id)
        async with self.db.transaction() as tx:
            turns = await delete_turns(tx, where, params)
            generations = await blank_generations(tx, where, params)
            jobs = await blank_jobs(tx, where, params)
            names = await tx.execute(
                f"UPDATE reservations SET user_name = NULL WHERE {where} AND user_name IS NOT NULL",
                params,
            )
            # A member who asks to be forgotten sees the voice-clone notice again (the record of accepting goes).
            consents = await tx.execute(f"DELETE FROM voice_clone_consents WHERE {where}", params)
        return PurgeReport(turns=turns, generations=generations, jobs=jobs, names=names, consents=consents)


def purge_summary(report: PurgeReport) -> str:
    """What a purge deleted, in a sentence a member or an admin reads."""
    if report.total == 0:
        return "There was nothing to delete: no conversations, prompts or names were stored."
    parts = [
        f"{report.turns} conversation turn{'s' if report.turns != 1 else ''}",
        f"{report.generations} image prompt{'s' if report.generations != 1 else ''}",
        f"{report.jobs} video, audio or 3D request{'s' if report.jobs != 1 else ''}",
        f"{report.names} stored name{'s' if report.names != 1 else ''} (on requests)",
    ]
    if report.consents:  # named only when there was one: most members never clone a voice
        accepted = "acceptances" if report.consents != 1 else "acceptance"
        parts.append(f"{report.consents} voice-clone notice {accepted}")
    return "Deleted " + ", ".join(parts) + "."


def parse_user_id(text: str) -> int | None:
    """A Discord user id from ``123…``, ``<@123…>`` or ``<@!123…>``; None when it is not one."""
    cleaned = text.strip().removeprefix("<@").removeprefix("!").removesuffix(">").strip()
    if not cleaned.isdigit() or not 15 <= len(cleaned) <= 21:  # snowflakes are 17-20 digits today
        return None
    return int(cleaned)

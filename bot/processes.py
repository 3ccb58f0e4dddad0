"""Which bot processes are alive, so one never takes over what a live neighbour is doing.

Every process registers an owner id and refreshes its heartbeat every few seconds. Reservations
and job leases carry their owner; start-up recovery and the job poller treat work as abandoned
only when its owner's heartbeat is older than :data:`HEARTBEAT_TTL_SECONDS` (or the owner is
unknown: rows from before owners existed, or from a process that stopped). On SQLite there is one
process per file, so every other owner is dead by definition — the same rule gives the old
behaviour.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Callable, Sequence

from bot.db import Database

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0
#: A process whose heartbeat is older than this is dead: its reservations and leases are recovered.
HEARTBEAT_TTL_SECONDS = 20.0


def process_slot(shard_ids: Sequence[int] | None = None, shard_count: int | None = None) -> str:
    """``host:shards=0,1/2:`` — what a process runs where; a restarted process has its predecessor's slot.

    With ``SHARD_IDS``/``SHARD_COUNT`` unset the process runs every shard (``shards=all``).
    """
    shards = "all" if shard_ids is None else ",".join(str(n) for n in shard_ids)
    total = "" if shard_count is None else f"/{shard_count}"
    return f"{socket.gethostname()[:40]}:shards={shards}{total}:"


def new_owner_id(slot: str | None = None) -> str:
    """``slot`` + ``pid:random``: readable in the database, unique even when a pid is reused."""
    return f"{slot if slot is not None else process_slot()}{os.getpid()}:{secrets.token_hex(4)}"


class ProcessRegistry:
    """This process's row in ``processes`` and its heartbeat.

    ``slot`` (see :func:`process_slot`) names what the process runs on which host. A process that
    starts in a slot replaces the slot's previous incarnation: that one was killed (or it could not
    be restarted in its place), so its reservations and job leases are taken over at once instead of
    after :data:`HEARTBEAT_TTL_SECONDS`.
    """

    def __init__(
        self, db: Database, clock: Callable[[], float], owner: str | None = None, *, slot: str | None = None
    ) -> None:
        self.db = db
        self.clock = clock
        self.slot = slot
        if owner is not None and slot is not None and not owner.startswith(slot):
            raise ValueError(f"owner {owner!r} is not in slot {slot!r}")
        self.owner = owner or new_owner_id(slot)
        self._task: asyncio.Task[None] | None = None

    async def register(self) -> list[str]:
        """Announce this process (before it reserves or claims anything); returns the predecessors it replaced."""
        now = self.clock()
        replaced: list[str] = []
        if self.slot is not None:
            replaced = await self._replace_predecessors(now)
        await self._upsert(now)
        return replaced

    async def _replace_predecessors(self, now: float) -> list[str]:
        """Delete the rows of earlier processes in this slot: from now on they count as dead."""
        assert self.slot is not None
        rows = await self.db.fetch_all(
            "SELECT owner, heartbeat_at FROM processes WHERE substr(owner, 1, ?) = ? AND owner <> ?",
            (len(self.slot), self.slot, self.owner),
        )
        for row in rows:
            await self.db.execute("DELETE FROM processes WHERE owner = ?", (row["owner"],))
            if float(row["heartbeat_at"]) >= now - HEARTBEAT_TTL_SECONDS:
                # Usually a process killed moments ago. If it is in fact alive, two processes run the
                # same shards on one host (a configuration mistake); its next beat re-registers it.
                log.warning("taking over from %s, the previous process with these shards on this host", row["owner"])
        return [row["owner"] for row in rows]

    async def _upsert(self, now: float) -> None:
        await self.db.execute(
            "INSERT INTO processes (owner, started_at, heartbeat_at) VALUES (?, ?, ?)"
            " ON CONFLICT (owner) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
            (self.owner, now, now),
        )

    async def beat(self) -> None:
        """Refresh the heartbeat (and forget processes long dead, so the table stays small).

        An upsert, not an update: a live process whose row a newcomer in its slot removed comes back.
        """
        now = self.clock()
        await self._upsert(now)
        await self.db.execute("DELETE FROM processes WHERE heartbeat_at < ?", (now - 24 * 3600,))

    def start(self) -> None:
        """Beat every :data:`HEARTBEAT_SECONDS` until :meth:`stop`."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="process-heartbeat")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                await self.beat()
            except Exception:  # a missed beat is retried; the TTL is several beats long
                log.warning("process heartbeat failed; retrying", exc_info=True)

    async def stop(self) -> None:
        """Stop beating and leave the table: what this process still holds is free for the others at once."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self.db.execute("DELETE FROM processes WHERE owner = ?", (self.owner,))

    async def live_owners(self) -> set[str]:
        """The owners whose work must not be taken over: this process, and on a shared database every
        process whose heartbeat is fresh. (SQLite admits one live process per file, so there it is this one.)"""
        if not self.db.shared:
            return {self.owner}
        rows = await self.db.fetch_all(
            "SELECT owner FROM processes WHERE heartbeat_at >= ?", (self.clock() - HEARTBEAT_TTL_SECONDS,)
        )
        return {row["owner"] for row in rows} | {self.owner}

"""Retention: personal data older than RETENTION_DAYS goes, and so does a removed server's, in the background.

A pass (:meth:`Retention.run_once`) deletes conversation turns and blanks prompt text and job
payloads created before the cut-off, in batches of :attr:`Retention.batch_size` rows, each batch its
own short transaction, so a large backlog never holds the database for long (other writers get
in between batches). Then every server the bot was removed from more than RETENTION_DAYS ago has
its members' personal data purged (its budget and ledger stay: they are the books). Every step
only touches rows that still hold something, so a pass is idempotent and any process may run it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bot.db import Database, Executor
from bot.privacy import BLANK_REQUEST, PrivacyStore, PurgeReport, blank_generations, blank_jobs, delete_turns

log = logging.getLogger(__name__)

DAY = 86_400
# Jobs still running need their payload (Job.prompt is shown on delivery); they end within JOB_DEADLINE_MINUTES.
FINISHED_JOB_STATES = "('completed', 'failed', 'delivered', 'cancelled')"
# One batch's work on the rows ``id IN (…)``: delete or blank them, return how many changed.
BatchStep = Callable[[Executor, str, list[Any]], Awaitable[int]]


class Retention:
    """The retention pass, the removed-servers record, and the background task that runs the pass."""

    def __init__(
        self,
        db: Database,
        privacy: PrivacyStore,
        clock: Callable[[], float],
        *,
        retention_days: int,
        batch_size: int = 500,
        interval_seconds: float = 3600.0,
    ) -> None:
        self.db = db
        self.privacy = privacy
        self.clock = clock
        self.retention_days = retention_days
        self.batch_size = batch_size
        self.interval_seconds = interval_seconds
        self._task: asyncio.Task[None] | None = None
        # Servers recorded as removed, so the thousands of GUILD_CREATEs at start-up cost no write each.
        self._removed: set[int] | None = None
        self._loading = asyncio.Lock()  # thousands of GUILD_CREATEs arrive at once: one SELECT, not one each

    def cutoff(self) -> int:
        """Rows created before this Unix time are past retention."""
        return int(self.clock()) - self.retention_days * DAY

    # ── removed servers ─────────────────────────────────────────────────────

    async def _removed_guilds(self) -> set[int]:
        if self._removed is None:
            async with self._loading:
                if self._removed is None:
                    rows = await self.db.fetch_all("SELECT guild_id FROM guild_removals")
                    self._removed = {int(row["guild_id"]) for row in rows}
        return self._removed

    async def guild_removed(self, guild_id: int) -> None:
        """The bot was removed from a server (not an outage): its data is kept RETENTION_DAYS from now."""
        await self.db.execute(
            "INSERT INTO guild_removals (guild_id, removed_at) VALUES (?, ?)"
            " ON CONFLICT (guild_id) DO UPDATE SET removed_at = excluded.removed_at, purged_at = NULL",
            (guild_id, int(self.clock())),
        )
        (await self._removed_guilds()).add(guild_id)
        log.info("removed from guild=%s: its members' data is purged in %s days", guild_id, self.retention_days)

    async def guild_present(self, guild_id: int) -> None:
        """The bot is in this server (re-added, or seen at start-up): nothing is scheduled for it any more."""
        removed = await self._removed_guilds()
        if guild_id not in removed:
            return
        await self.db.execute("DELETE FROM guild_removals WHERE guild_id = ?", (guild_id,))
        removed.discard(guild_id)
        log.info("back in guild=%s: its retention-after-removal is cancelled", guild_id)

    # ── the pass ────────────────────────────────────────────────────────────

    async def run_once(self) -> PurgeReport:
        """One full pass: everything past retention, then servers removed longer ago than retention."""
        cutoff = self.cutoff()
        report = PurgeReport(
            turns=await self._batches("chat_turns", "created_at < ?", [cutoff], delete_turns),
            generations=await self._batches(
                "generations", "created_at < ? AND (prompt <> '' OR source_urls <> '[]')", [cutoff], blank_generations
            ),
            jobs=await self._batches(
                "jobs",
                f"created_at < ? AND state IN {FINISHED_JOB_STATES}"
                " AND (request_json <> ? OR webhook_payload IS NOT NULL)",
                [cutoff, BLANK_REQUEST],
                blank_jobs,
            ),
        )
        due = await self.db.fetch_all(
            "SELECT guild_id FROM guild_removals WHERE removed_at < ? AND purged_at IS NULL ORDER BY guild_id",
            (cutoff,),
        )
        for row in due:
            guild_id = int(row["guild_id"])
            report += await self.privacy.purge(guild_id=guild_id)
            await self.db.execute(
                "UPDATE guild_removals SET purged_at = ? WHERE guild_id = ?", (int(self.clock()), guild_id)
            )
            log.info("purged personal data of guild=%s removed over %s days ago", guild_id, self.retention_days)
        if report.total:
            log.info(
                "retention pass turns=%s generations=%s jobs=%s names=%s consents=%s",
                report.turns,
                report.generations,
                report.jobs,
                report.names,
                report.consents,
            )
        return report

    async def _batches(self, table: str, where: str, params: list[Any], step: BatchStep) -> int:
        """Apply ``step`` to the rows of ``table`` matching ``where``, ``batch_size`` at a time, each batch its own
        transaction, yielding to the event loop between batches."""
        total = 0
        while True:
            async with self.db.transaction() as tx:
                rows = await tx.fetch_all(
                    f"SELECT id FROM {table} WHERE {where} ORDER BY id LIMIT ?",
                    [*params, self.batch_size],
                )
                if not rows:
                    return total
                ids = [row["id"] for row in rows]
                marks = ", ".join("?" for _ in ids)
                changed = await step(tx, f"id IN ({marks})", ids)
            total += changed
            if len(rows) < self.batch_size:
                return total
            await asyncio.sleep(0)  # off the hot path: commands get the loop (and the database) between batches

    # ── the background task ─────────────────────────────────────────────────

    def start(self) -> None:
        """Run a pass now and every ``interval_seconds`` until :meth:`stop` (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="retention")

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # the next pass tries again; nothing is half-done (each batch is a transaction)
                log.exception("retention pass failed; retrying in %.0f s", self.interval_seconds)
            await asyncio.sleep(self.interval_seconds)

    async def stop(self) -> None:
        """Cancel the task (a batch in progress is rolled back or committed whole)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

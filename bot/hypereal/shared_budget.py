"""The Hypereal request budget shared by every bot process on one database.

``HYPEREAL_REQUESTS_PER_HOUR`` is a budget for the whole bot, not per process: on PostgreSQL each
request takes its slot in the ``hypereal_requests`` table, under a transaction-scoped lock so two
processes never both take the last slot. A full window answers how long until its oldest request
leaves it. On SQLite (one process) the in-memory limiter alone is exact and this is not used.
"""

from __future__ import annotations

from bot.db import Database

#: The lock every process takes its slot under (any constant; distinct from the migrations' lock).
SLOT_LOCK_KEY = 0x48525F534C4F54


class SharedRequestLog:
    """Slots of a rolling window kept in the database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def take(self, now: float, window: float, max_requests: int) -> float | None:
        """Take a slot at ``now`` (wall-clock seconds): None when taken, else seconds to wait before trying again."""
        async with self.db.transaction() as tx:
            await tx.lock(SLOT_LOCK_KEY)
            await tx.execute("DELETE FROM hypereal_requests WHERE at <= ?", (now - window,))
            used = int(await tx.fetch_value("SELECT COUNT(*) FROM hypereal_requests") or 0)
            if used < max_requests:
                await tx.execute("INSERT INTO hypereal_requests (at) VALUES (?)", (now,))
                return None
            oldest = await tx.fetch_value("SELECT MIN(at) FROM hypereal_requests")
            return max(0.01, float(oldest) + window - now)

    async def used(self, now: float, window: float) -> int:
        """Requests all processes made in the window ending ``now``."""
        return int(await self.db.fetch_value("SELECT COUNT(*) FROM hypereal_requests WHERE at > ?", (now - window,)))

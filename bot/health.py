"""Process health: a database write probe for /healthz, and the open-file limit raised at start-up."""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections.abc import Callable

from bot.kv import KeyValueStore

log = logging.getLogger(__name__)

PROBE_KEY = "health:write-probe"
PROBE_INTERVAL_SECONDS = 10.0
PROBE_WAIT_SECONDS = 3.0
MAX_REASON_CHARS = 200
# Where the hard limit is "unlimited" (macOS), setting the soft limit to it fails: stop here instead.
FALLBACK_FILE_LIMIT = 65536


class WriteProbe:
    """Answers "can the bot write to its database?" with a tiny upsert, at most once per ``interval``.

    A read (``SELECT 1``) keeps answering while every write fails with "database or disk is full",
    so the probe writes a scratch key through the key-value repository. The result is cached: a
    health checker polling every second costs one write per ``interval``. A write that hangs is
    never cancelled (a cancelled write may leave work half done on the database thread); the
    probe reports it as not finishing and the next check waits on the same write.
    """

    def __init__(
        self,
        kv: KeyValueStore,
        *,
        clock: Callable[[], float] = time.monotonic,
        interval: float = PROBE_INTERVAL_SECONDS,
        wait: float = PROBE_WAIT_SECONDS,
    ) -> None:
        self._kv = kv
        self._clock = clock
        self._interval = interval
        self._wait = wait
        self._lock = asyncio.Lock()
        self._checked_at: float | None = None
        self._problem: str | None = None
        self._write: asyncio.Task[str | None] | None = None

    async def problem(self) -> str | None:
        """None when a write works, else the reason ("write failed: database or disk is full")."""
        async with self._lock:  # concurrent health checks share one write
            now = self._clock()
            if self._checked_at is not None and now - self._checked_at < self._interval:
                return self._problem
            if self._write is None:
                self._write = asyncio.create_task(self._try_write(), name="health-write-probe")
            done, _ = await asyncio.wait({self._write}, timeout=self._wait)
            if done:
                problem = self._write.result()
                self._write = None
            else:
                problem = f"write did not finish within {self._wait:g} s"
            self._report_change(problem)
            self._problem = problem
            self._checked_at = self._clock()
            return problem

    async def _try_write(self) -> str | None:
        value = f"{time.time():.6f}"
        try:
            await self._kv.set(PROBE_KEY, value)
            stored = await self._kv.get(PROBE_KEY)
        except Exception as exc:  # the storage layer may be SQLite or PostgreSQL: any failure is the answer
            return f"write failed: {str(exc)[:MAX_REASON_CHARS] or type(exc).__name__}"
        if stored != value:
            return "write failed: the value written was not read back"
        return None

    def _report_change(self, problem: str | None) -> None:
        """One log line when the answer changes, not one per check (health checkers poll often)."""
        if problem == self._problem and self._checked_at is not None:
            return
        if problem is not None:
            log.warning("health check: database %s", problem)
        elif self._checked_at is not None:
            log.info("health check: database writes work again")


def raise_open_file_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit; returns (before, after) soft limits.

    The default soft limit (often 1024, sometimes 256) is what a burst of slow connections runs
    into first; the hard limit is what the operator actually allowed. Failing to raise it is not
    fatal: the bot runs with what it has and says so.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = FALLBACK_FILE_LIMIT if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft >= target:
        return soft, soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:
        log.warning("could not raise the open-file limit from %s to %s: %s", soft, target, exc)
        return soft, soft
    return soft, target


def open_file_limit() -> int:
    """The current soft RLIMIT_NOFILE (what this process may open)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return FALLBACK_FILE_LIMIT if soft == resource.RLIM_INFINITY else soft

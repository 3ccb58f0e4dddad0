"""A rolling-window request limiter shared by everything that uses one Hypereal key.

Hypereal allows 1,000 requests per rolling hour per key. Exceeding it answers 429s, and repeated
429s help nobody, so the client waits for a slot instead: callers queue in FIFO order. A request
that has to wait tells whoever is observing it (``observe``) its place in the queue and roughly
how long, so a member is not left looking at "thinking…" with their credits held.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.hypereal.shared_budget import SharedRequestLog

log = logging.getLogger(__name__)

# Called with (position in the queue, seconds until it is expected to run); position 0 = it runs now.
QueueObserver = Callable[[int, float], Awaitable[object]]


class RequestLimiter:
    """At most ``max_requests`` acquisitions in any ``window`` seconds; ``acquire`` waits (FIFO) instead of failing."""

    def __init__(
        self,
        max_requests: int = 1000,
        window: float = 3600.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        shared: SharedRequestLog | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if max_requests < 1:
            raise ValueError("max_requests must be at least 1")
        self.max_requests = max_requests
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._stamps: deque[float] = deque()
        # Several processes on one database share the budget: each slot is also taken there (wall clock,
        # since monotonic clocks differ between processes). The local stamps stay this process's share.
        self._shared = shared
        self._wall_clock = wall_clock
        self._lock = asyncio.Lock()  # asyncio.Lock wakes waiters in FIFO order: fairness for free
        self._queued = 0  # callers inside acquire() right now
        self._waiting = False  # the caller holding the lock is sleeping until the window has room
        # Per-task observer: set around a request by whoever shows its progress (one variable per limiter).
        self._observer: contextvars.ContextVar[QueueObserver | None] = contextvars.ContextVar(
            f"hypereal-limiter-observer-{id(self)}", default=None
        )
        self._notices: set[asyncio.Task[object]] = set()

    def _expire(self, now: float) -> None:
        while self._stamps and self._stamps[0] <= now - self.window:
            self._stamps.popleft()

    @contextlib.contextmanager
    def observe(self, observer: QueueObserver) -> Iterator[None]:
        """Within the block, requests that must wait call ``observer(position, eta)`` (and ``(0, 0)`` when they run)."""
        token = self._observer.set(observer)
        try:
            yield
        finally:
            self._observer.reset(token)

    def _eta(self, position: int, now: float) -> float:
        """Seconds until the caller at ``position`` (1 = next) should get a slot."""
        self._expire(now)
        free = self.max_requests - len(self._stamps)
        index = position - free - 1
        if index < 0:
            return 0.0
        if index >= len(self._stamps):
            return self.window
        return max(0.0, self._stamps[index] + self.window - now)

    def _notify(self, observer: QueueObserver | None, position: int, eta: float) -> None:
        if observer is None:
            return
        # In the background: a Discord edit must not hold up the queue or lose this caller its place.
        task = asyncio.ensure_future(observer(position, eta))
        self._notices.add(task)
        task.add_done_callback(self._notice_done)

    def _notice_done(self, task: asyncio.Task[object]) -> None:
        self._notices.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("queue notice failed: %s", type(task.exception()).__name__)

    async def acquire(self) -> None:
        """Take one slot, waiting for the oldest request to leave the window when all are used."""
        observer = self._observer.get()
        self._queued += 1
        position = self._queued
        waited = False
        try:
            now = self._clock()
            # Queued when the window is full, or someone ahead is waiting for it (the lock is also
            # held, briefly, while a shared slot is taken in the database: that is not a queue).
            if self._waiting or self._eta(position, now) > 0:
                waited = True
                self._notify(observer, position, self._eta(position, now))
            async with self._lock:
                while True:
                    now = self._clock()
                    self._expire(now)
                    if len(self._stamps) < self.max_requests:
                        if self._shared is None:
                            self._stamps.append(now)
                            break
                        wait = await self._shared.take(self._wall_clock(), self.window, self.max_requests)
                        if wait is None:
                            self._stamps.append(now)
                            break
                        wait = min(wait, self.window)  # the other processes used the window up
                    else:
                        wait = self._stamps[0] + self.window - now
                    if not waited:
                        waited = True
                        self._notify(observer, position, wait)
                    self._waiting = True
                    try:
                        await self._sleep(wait)
                    finally:
                        self._waiting = False
        finally:
            self._queued -= 1
        if waited:
            self._notify(observer, 0, 0.0)

    def used(self) -> int:
        """Requests made in the current window."""
        self._expire(self._clock())
        return len(self._stamps)

    def available(self) -> int:
        """Requests that can be made right now without waiting."""
        return self.max_requests - self.used()

    @property
    def queued(self) -> int:
        """Callers waiting for (or taking) a slot right now."""
        return self._queued

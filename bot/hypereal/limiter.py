"""A rolling-window request limiter shared by everything that uses one Hypereal key.

Hypereal allows 1,000 requests per rolling hour per key. Exceeding it answers 429s, and repeated
429s help nobody, so the client waits for a slot instead: callers queue in FIFO order.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable


class RequestLimiter:
    """At most ``max_requests`` acquisitions in any ``window`` seconds; ``acquire`` waits (FIFO) instead of failing."""

    def __init__(
        self,
        max_requests: int = 1000,
        window: float = 3600.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if max_requests < 1:
            raise ValueError("max_requests must be at least 1")
        self.max_requests = max_requests
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._stamps: deque[float] = deque()
        self._lock = asyncio.Lock()  # asyncio.Lock wakes waiters in FIFO order: fairness for free

    def _expire(self, now: float) -> None:
        while self._stamps and self._stamps[0] <= now - self.window:
            self._stamps.popleft()

    async def acquire(self) -> None:
        """Take one slot, waiting for the oldest request to leave the window when all are used."""
        async with self._lock:
            while True:
                now = self._clock()
                self._expire(now)
                if len(self._stamps) < self.max_requests:
                    self._stamps.append(now)
                    return
                await self._sleep(self._stamps[0] + self.window - now)

    def used(self) -> int:
        """Requests made in the current window."""
        self._expire(self._clock())
        return len(self._stamps)

    def available(self) -> int:
        """Requests that can be made right now without waiting."""
        return self.max_requests - self.used()

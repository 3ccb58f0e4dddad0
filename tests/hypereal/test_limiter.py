"""The rolling-hour limiter with an injected clock: it queues (FIFO) instead of failing."""

from __future__ import annotations

import asyncio

from bot.hypereal.limiter import RequestLimiter


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


async def test_allows_up_to_the_limit_then_waits_for_the_window() -> None:
    fake = FakeTime()
    limiter = RequestLimiter(3, 3600, clock=fake.clock, sleep=fake.sleep)
    for _ in range(3):
        await limiter.acquire()
    assert fake.slept == []
    assert limiter.available() == 0
    fake.now = 100.0
    await limiter.acquire()  # waits until the first request leaves the window
    assert fake.slept == [3500.0]
    assert fake.now == 3600.0
    assert limiter.used() == 1  # the three made at t=0 have left the window


async def test_waiters_are_served_in_order() -> None:
    fake = FakeTime()
    limiter = RequestLimiter(1, 10, clock=fake.clock, sleep=fake.sleep)
    order: list[int] = []

    async def take(n: int) -> None:
        await limiter.acquire()
        order.append(n)

    await asyncio.gather(*(take(n) for n in range(5)))
    assert order == [0, 1, 2, 3, 4]
    assert fake.now == 40.0  # one slot per 10 s window, nobody failed

"""Pacing message edits so streamed answers never draw a 429 from Discord.

Discord allows about 5 edits per 5 seconds per channel (observed, not documented), shared by
every message in the channel. One :class:`ChannelPacer` per channel owns that budget: every
stream in the channel registers a :class:`PacedMessage`, says what its message should show now
(``show``), and the pacer's single worker sends the latest content of whichever message has waited
longest — so concurrent streams share the channel fairly, intermediate states are coalesced, and
a message's final content is always sent (``finish``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

SendEdit = Callable[[str], Awaitable[object]]


@dataclass(frozen=True)
class PacingRules:
    """The limits the pacer keeps (defaults: one under Discord's 5 per 5 s, for headroom)."""

    actions_per_window: int = 4
    window: float = 5.0
    min_interval: float = 1.0  # between two edits of the same message
    # Discord counts an edit when it arrives, we when we send it: requests sent exactly one window apart
    # can land closer together. A little extra spacing keeps the count right at Discord's end too.
    jitter_margin: float = 0.25

    @property
    def span(self) -> float:
        """How long an action counts against the budget, as seen from our side."""
        return self.window + self.jitter_margin


class PacedMessage:
    """One message whose content a stream keeps updating; edits go out through its channel's pacer."""

    def __init__(self, pacer: ChannelPacer, send: SendEdit, *, shown: str | None = None) -> None:
        self._pacer = pacer
        self._send = send
        self._wanted: str | None = None
        self._shown = shown
        self._final = False
        self.last_sent_at = float("-inf")
        self.error: BaseException | None = None
        self._settled = asyncio.Event()
        self.edits_sent = 0

    @property
    def dirty(self) -> bool:
        """True when the message should show something it does not show yet."""
        return self._wanted is not None and self._wanted != self._shown

    def show(self, content: str) -> None:
        """Ask for the message to show ``content`` soon (coalesced with later calls; never blocks)."""
        if self._final:
            return
        self._wanted = content
        self._pacer.wake()

    async def finish(self, content: str) -> None:
        """Send ``content`` as the message's last edit and wait until it went out (or failed)."""
        self._wanted = content
        self._final = True
        if not self.dirty:
            self._settled.set()
        self._pacer.wake()
        await self._settled.wait()
        self._pacer.release(self)
        if self.error is not None:
            raise self.error

    def abandon(self) -> None:
        """Stop updating this message (its stream ended abnormally and someone else shows the outcome)."""
        self._final = True
        self._wanted = None
        self._settled.set()
        self._pacer.release(self)

    async def _deliver(self) -> None:
        content = self._wanted
        if content is None:
            return
        try:
            await self._send(content)
        except Exception as exc:
            # An edit that failed (message deleted, token expired) is not retried: the next content may work.
            log.warning("paced edit failed: %s", type(exc).__name__)
            if self._final:
                self.error = exc
        else:
            self.edits_sent += 1
        self._shown = content
        if self._final and not self.dirty:
            self._settled.set()


class ChannelPacer:
    """The edit budget of one channel, spent fairly on the messages streaming in it."""

    def __init__(
        self,
        rules: PacingRules | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rules = rules or PacingRules()
        self._clock = clock
        self._stamps: deque[float] = deque()
        self._messages: list[PacedMessage] = []
        self._wake = asyncio.Event()
        self._budget_lock = asyncio.Lock()  # the worker and `acquire` callers must not both take the last slot
        self._worker: asyncio.Task[None] | None = None

    def message(self, send: SendEdit, *, shown: str | None = None) -> PacedMessage:
        """Register a message that will be edited through this pacer."""
        paced = PacedMessage(self, send, shown=shown)
        self._messages.append(paced)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run(), name="channel-pacer")
        return paced

    async def acquire(self) -> None:
        """Spend one action of the channel's budget on something else (e.g. sending a continuation message)."""
        async with self._budget_lock:
            await self._wait_for_budget()
            self._stamps.append(self._clock())

    def wake(self) -> None:
        """A message has new content."""
        self._wake.set()

    def release(self, paced: PacedMessage) -> None:
        """Forget a finished message."""
        with contextlib.suppress(ValueError):
            self._messages.remove(paced)
        self._wake.set()

    @property
    def idle(self) -> bool:
        """True when no message is registered and the last action is out of the window (safe to forget)."""
        return not self._messages and not self._budget_wait() and not self._stamps

    def _budget_wait(self) -> float:
        now = self._clock()
        while self._stamps and self._stamps[0] <= now - self.rules.span:
            self._stamps.popleft()
        if len(self._stamps) < self.rules.actions_per_window:
            return 0.0
        return self._stamps[0] + self.rules.span - now

    async def _wait_for_budget(self) -> None:
        # Waiting for time to pass (the oldest action leaving the window), not for another task: no Event fits.
        while (delay := self._budget_wait()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(delay)

    def _next_ready(self) -> tuple[PacedMessage | None, float | None]:
        """The dirty message that has waited longest and may be edited now, or how long until one may."""
        now = self._clock()
        best: PacedMessage | None = None
        soonest: float | None = None
        for paced in self._messages:
            if not paced.dirty:
                continue
            ready_at = paced.last_sent_at + self.rules.min_interval
            if ready_at <= now:
                if best is None or paced.last_sent_at < best.last_sent_at:
                    best = paced
            else:
                soonest = ready_at - now if soonest is None else min(soonest, ready_at - now)
        return best, soonest

    async def _run(self) -> None:
        while self._messages:
            paced, wait = self._next_ready()
            if paced is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)
                continue
            async with self._budget_lock:
                await self._wait_for_budget()
                paced, _ = self._next_ready()  # content may have changed while we waited
                if paced is None:
                    continue
                now = self._clock()
                self._stamps.append(now)
                paced.last_sent_at = now
            await paced._deliver()


class PacerRegistry:
    """One pacer per channel, created on demand and dropped when idle."""

    def __init__(self, rules: PacingRules | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rules = rules or PacingRules()
        self._clock = clock
        self._pacers: dict[int, ChannelPacer] = {}

    def for_channel(self, channel_id: int) -> ChannelPacer:
        """The channel's pacer (shared by every stream in it)."""
        for key in [key for key, pacer in self._pacers.items() if pacer.idle and key != channel_id]:
            del self._pacers[key]
        pacer = self._pacers.get(channel_id)
        if pacer is None:
            pacer = self._pacers[channel_id] = ChannelPacer(self.rules, clock=self._clock)
        return pacer

"""The per-channel edit pacer: budget, per-message interval, fairness, final edits."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from bot.chat.pacing import ChannelPacer, PacerRegistry, PacingRules

FAST = PacingRules(actions_per_window=4, window=0.5, min_interval=0.1, jitter_margin=0.025)


class Recorder:
    """A fake 'edit this message' function that records what was sent and when."""

    def __init__(self, log: list[tuple[float, str, str]], name: str, fail: bool = False) -> None:
        self.log = log
        self.name = name
        self.fail = fail

    async def __call__(self, content: str) -> None:
        if self.fail:
            raise RuntimeError("message deleted")
        self.log.append((time.monotonic(), self.name, content))


def _max_in_window(stamps: list[float], window: float) -> int:
    return max((sum(1 for t in stamps if s <= t < s + window) for s in stamps), default=0)


async def test_first_content_goes_out_at_once() -> None:
    log: list[tuple[float, str, str]] = []
    pacer = ChannelPacer(FAST)
    started = time.monotonic()
    message = pacer.message(Recorder(log, "a"))
    message.show("first tokens")
    await asyncio.sleep(0.03)
    await message.finish("first tokens and the rest")
    assert log[0][2] == "first tokens"
    assert log[0][0] - started < 0.05
    assert log[-1][2] == "first tokens and the rest"


async def test_updates_are_coalesced_and_the_final_content_always_sent() -> None:
    log: list[tuple[float, str, str]] = []
    pacer = ChannelPacer(FAST)
    message = pacer.message(Recorder(log, "a"))
    for n in range(200):
        message.show(f"text {n}")
        await asyncio.sleep(0.001)
    await message.finish("final")
    assert log[-1][2] == "final"
    assert len(log) < 20
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(log)]
    assert min(gaps) >= FAST.min_interval * 0.9


async def test_concurrent_streams_share_the_channel_budget_fairly() -> None:
    log: list[tuple[float, str, str]] = []
    pacer = ChannelPacer(FAST)

    async def stream(name: str) -> None:
        message = pacer.message(Recorder(log, name))
        for n in range(40):
            message.show(f"{name} {n}")
            await asyncio.sleep(0.02)
        await message.finish(f"{name} done")

    await asyncio.gather(*(stream(name) for name in "abc"))
    assert _max_in_window([t for t, _, _ in log], FAST.window) <= FAST.actions_per_window
    for name in "abc":
        mine = [content for _, who, content in log if who == name]
        assert mine[-1] == f"{name} done"
        assert len(mine) >= 2  # nobody starved
    assert pacer.idle or not pacer._messages


async def test_other_actions_share_the_budget() -> None:
    log: list[tuple[float, str, str]] = []
    pacer = ChannelPacer(FAST)
    stamps: list[float] = []
    message = pacer.message(Recorder(log, "a"))
    for n in range(6):
        await pacer.acquire()
        stamps.append(time.monotonic())
        message.show(f"v{n}")
    await message.finish("end")
    stamps += [t for t, _, _ in log]
    assert _max_in_window(sorted(stamps), FAST.window) <= FAST.actions_per_window


async def test_a_failed_final_edit_is_reported() -> None:
    pacer = ChannelPacer(FAST)
    message = pacer.message(Recorder([], "a", fail=True))
    with pytest.raises(RuntimeError, match="message deleted"):
        await message.finish("final")


async def test_finish_with_content_already_shown_returns_at_once() -> None:
    log: list[tuple[float, str, str]] = []
    pacer = ChannelPacer(FAST)
    message = pacer.message(Recorder(log, "a"), shown="same")
    await asyncio.wait_for(message.finish("same"), timeout=0.2)
    assert log == []


async def test_registry_gives_one_pacer_per_channel() -> None:
    registry = PacerRegistry(FAST)
    assert registry.for_channel(1) is registry.for_channel(1)
    assert registry.for_channel(1) is not registry.for_channel(2)

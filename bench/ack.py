"""Acknowledgement under load: INTERACTION_CREATE → the bot's first callback, with 50 slash commands at once.

    python bench/ack.py [--commands 50] [--slow 5]

The real bot runs in-process against the fake Discord and the sandbox Hypereal, which answers every
request only after ``--slow`` seconds. ``--commands`` slash commands (``/image``, ``/chat`` and
``/video`` in turn, from three members) are dispatched at once. For each, the time from the fake
sending INTERACTION_CREATE to receiving the interaction's first callback (the defer, or an answer).
Discord's deadline is 3 s; the bar is p99 < 0.3 s. A probe task measures the event loop's lag
(how late a 5 ms sleep wakes up) during the burst.

The baseline, named: a bare discord.py client whose same three commands call ``defer()`` first thing
(then wait ``--slow`` seconds and answer), against the same fake, the same burst. The ratio is ours / it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

import discord
from discord import app_commands

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._rows import emit, ratio, verdict
from bot.bot import point_discord_at
from bot.sandbox import SandboxProvider
from tests.conftest import HYPEREAL_KEY, bot_settings, run_bot
from tests.fakediscord import FakeDiscord, InteractionHandle

DEADLINE = 3.0
BAR = 0.3
COMMANDS = ("image", "chat", "video")


class LoopLag:
    """How late a 5 ms sleep wakes up, sampled continuously while running (the loop's responsiveness)."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _probe(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(0.005)
            self.samples.append(time.perf_counter() - started - 0.005)

    def start(self) -> None:
        """Begin sampling."""
        self.samples.clear()
        self._task = asyncio.create_task(self._probe())

    async def stop(self) -> None:
        """Stop sampling."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


def _first_callback_at(fake: FakeDiscord, handle: InteractionHandle) -> float | None:
    path_part = f"/interactions/{handle.id}/{handle.token}/callback"
    times = [c.time for c in fake.calls if c.path == path_part and c.status in (200, 204)]
    return min(times) if times else None


async def burst(fake: FakeDiscord, count: int, within: float, lag: LoopLag) -> tuple[list[float], int]:
    """(seconds to first callback for each command acknowledged, commands never acknowledged); starts ``lag``."""
    users = (fake.MEMBER, fake.OTHER_MEMBER, fake.ADMIN)
    lag.start()

    async def one(n: int) -> tuple[float, InteractionHandle]:
        name = COMMANDS[n % len(COMMANDS)]
        sent = time.monotonic()  # the fake's Call.time is time.monotonic() too
        handle = await fake.invoke(name, user=users[n % len(users)], prompt=f"bench {name} {n}")
        return sent, handle

    sent = await asyncio.gather(*(one(n) for n in range(count)))
    with contextlib.suppress(TimeoutError):  # the ones never acknowledged are counted below
        await fake.wait_for(lambda: all(_first_callback_at(fake, h) is not None for _, h in sent), timeout=within)
    delays = []
    for started, handle in sent:
        acked = _first_callback_at(fake, handle)
        if acked is not None:
            delays.append(acked - started)
    return delays, count - len(delays)


async def ours(count: int, slow: float) -> tuple[list[float], LoopLag, int]:
    """The real bot, the sandbox answering after ``slow`` seconds."""
    lag = LoopLag()
    with tempfile.TemporaryDirectory() as tmp:
        async with (
            SandboxProvider(api_key=HYPEREAL_KEY, job_delay=0.5) as sandbox,
            # No message-write limits here: this figure is the acknowledgement (callbacks are not in
            # the channel's write bucket); bench/chat_stream.py measures writes under Discord's limits.
            FakeDiscord() as fake,
            run_bot(bot_settings(fake, sandbox, Path(tmp), default_allowance=1_000_000), fake, sandbox),
        ):
            sandbox.faults.delay_seconds = slow
            delays, missed = await burst(fake, count, within=DEADLINE * 5, lag=lag)
            # The load lasts until the slow answers are in: keep sampling the loop, and let them finish
            # so the bot stops with balanced books.
            handles = [h for h in fake.interactions.values() if h.type == 2]
            with contextlib.suppress(TimeoutError):  # counted below
                await fake.wait_for(
                    lambda: all((m := fake.original(h)) is not None and not m.loading for h in handles),
                    timeout=slow * 2 + 5,
                )
            done = sum(1 for h in handles if (m := fake.original(h)) is not None and not m.loading)
            print(f"ours: answers visible (not loading) {slow * 2 + 5:g} s after the burst: {done}/{len(handles)}",
                  flush=True)  # fmt: skip
            await lag.stop()
            return delays, lag, missed


class BareClient(discord.Client):
    """The baseline: discord.py with three commands that defer first thing, then answer after ``slow``."""

    def __init__(self, guild_id: int, slow: float) -> None:
        super().__init__(intents=discord.Intents.default())
        self.tree = app_commands.CommandTree(self)
        self.guild = discord.Object(guild_id)
        for name in COMMANDS:
            self.tree.add_command(self._command(name, slow), guild=self.guild)

    @staticmethod
    def _command(name: str, slow: float) -> app_commands.Command[..., ..., None]:
        async def callback(interaction: discord.Interaction, prompt: str) -> None:
            await interaction.response.defer()
            await asyncio.sleep(slow)  # the slow provider
            await interaction.followup.send(f"done: {prompt}")

        return app_commands.Command(name=name, description=f"{name} (bare)", callback=callback)

    async def setup_hook(self) -> None:
        """Sync the commands to the test guild (the fake needs their schemas to play users)."""
        await self.tree.sync(guild=self.guild)


async def bare(count: int, slow: float) -> tuple[list[float], LoopLag, int]:
    """The baseline client against a fresh fake, the same burst."""
    lag = LoopLag()
    async with FakeDiscord() as fake:
        point_discord_at(fake.api_base, fake.gateway_url)
        client = BareClient(fake.GUILD_ID, slow)
        runner = asyncio.create_task(client.start(fake.token))
        try:
            await fake.wait_for_commands(timeout=30)
            await asyncio.wait_for(client.wait_until_ready(), timeout=30)
            delays, missed = await burst(fake, count, within=DEADLINE * 5, lag=lag)
            await asyncio.sleep(slow + 1)  # the load lasts until the answers are out
            await lag.stop()
            return delays, lag, missed
        finally:
            await client.close()
            await asyncio.gather(runner, return_exceptions=True)


def _p(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commands", type=int, default=50)
    parser.add_argument("--slow", type=float, default=5.0, help="seconds the sandbox takes to answer")
    args = parser.parse_args()
    our_delays, our_lag, our_missed = asyncio.run(ours(args.commands, args.slow))
    bare_delays, bare_lag, bare_missed = asyncio.run(bare(args.commands, args.slow))
    for label, delays, lag, missed in (
        ("ours", our_delays, our_lag, our_missed),
        ("bare discord.py, defer() first", bare_delays, bare_lag, bare_missed),
    ):
        print(
            f"{label}: {args.commands} commands at once, INTERACTION_CREATE → first callback: "
            f"p50 {_p(delays, 50) * 1000:.0f} ms, p99 {_p(delays, 99) * 1000:.0f} ms, "
            f"max {max(delays, default=float('nan')) * 1000:.0f} ms, never acknowledged: {missed}; "
            f"event-loop lag p99 {_p(lag.samples, 99) * 1000:.1f} ms, max {max(lag.samples, default=0) * 1000:.1f} ms"
        )
    p99 = _p(our_delays, 99)
    emit(
        f"Ack: {args.commands} slash commands at once (image/chat/video, provider {args.slow:g} s) → first callback",
        f"p50 {_p(our_delays, 50) * 1000:.0f} / p99 {p99 * 1000:.0f} / max {max(our_delays) * 1000:.0f} ms"
        + (f", {our_missed} never acknowledged" if our_missed else ""),
        f"bare discord.py, defer() first: p50 {_p(bare_delays, 50) * 1000:.0f} / "
        f"p99 {_p(bare_delays, 99) * 1000:.0f} / max {max(bare_delays) * 1000:.0f} ms",
        f"p99 {ratio(p99, _p(bare_delays, 99), 1)}",
        verdict(p99 < BAR and not our_missed, f"p99 < {BAR} s (Discord's deadline {DEADLINE:g} s)"),
    )
    emit(
        "Ack: event-loop lag during the burst (5 ms sleep wakes late by)",
        f"p99 {_p(our_lag.samples, 99) * 1000:.1f} / max {max(our_lag.samples) * 1000:.1f} ms",
        f"bare discord.py: p99 {_p(bare_lag.samples, 99) * 1000:.1f} / max {max(bare_lag.samples) * 1000:.1f} ms",
        f"max {ratio(max(our_lag.samples), max(bare_lag.samples), 1)}",
        "",
    )


if __name__ == "__main__":
    main()

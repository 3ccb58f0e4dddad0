"""Chat pacing: first token → first visible text, and message writes per 5 s per channel under a long stream.

    python bench/chat_stream.py [--runs 20] [--seconds 120] [--streams 3]

Runs the real bot in-process against the sandbox Hypereal and the fake Discord with Discord's
message-edit limits enforced (5 per 5 s per channel, 429 beyond), all on 127.0.0.1.

1. Latency: ``--runs`` sequential ``/chat`` answers. For each, the time from the sandbox writing the
   first token to the fake Discord receiving the first message or edit showing it. The baseline is one
   message sent to the same fake straight from aiohttp (a loopback round trip); the ratio is ours / baseline.
2. Pacing: ``--streams`` concurrent answers in one channel, each streaming for ``--seconds``.
   Prints the most message writes (sends and edits) seen in any 5-second window of the channel
   (the bar: ≤ 5; the bot aims for 4) and the number of 429s (the bar: 0).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.sandbox import SandboxProvider
from tests.conftest import HYPEREAL_KEY, bot_settings, run_bot
from tests.fakediscord import FakeDiscord

# Every call that puts answer text in the channel: the first followup (it replaces the "thinking…"
# placeholder), continuation messages, and edits.
WRITE_ROUTES = {
    ("POST", "/webhooks/{app}/{token}"),
    ("POST", "/channels/{channel_id}/messages"),
    ("PATCH", "/webhooks/{app}/{token}/messages/{message_id}"),
    ("PATCH", "/channels/{channel_id}/messages/{message_id}"),
}
FOOTER = "\n-# "


def _writes(fake: FakeDiscord, since: float) -> list[float]:
    """Times of successful message sends and edits that carried text, after ``since``."""
    return sorted(
        call.time
        for call in fake.calls
        if (call.method, call.route) in WRITE_ROUTES
        and call.status == 200
        and call.time >= since
        and isinstance(call.json, dict)
        and (call.json.get("content") or "").strip()
    )


async def _finished(fake: FakeDiscord, count: int, within: float) -> None:
    """Wait until ``count`` answers carry their final footer."""
    await fake.wait_for(lambda: sum(FOOTER in m.content for m in fake.messages()) >= count, timeout=within)


async def first_text_latencies(runs: int) -> list[float]:
    """Seconds from the first token to the first visible text, one per ``/chat``."""
    latencies: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        async with (
            SandboxProvider(api_key=HYPEREAL_KEY) as sandbox,
            FakeDiscord(ratelimits=True) as fake,
            run_bot(bot_settings(fake, sandbox, Path(tmp), default_allowance=100_000), fake, sandbox),
        ):
            sandbox.faults.chat_reply = "A short streamed answer, told in a few pieces. " * 4
            sandbox.faults.chat_chunk_size = 12
            sandbox.faults.chat_chunk_delay = 0.02
            for run in range(runs):
                await fake.invoke("chat", prompt=f"question {run}")
                await _finished(fake, run + 1, within=60)
                first_token = sandbox.first_token_at[-1]
                latencies.append(_writes(fake, first_token)[0] - first_token)
                # Let the channel's edit window drain so every run starts alike.
                await asyncio.sleep(5.5)
    return latencies


async def bare_send_latencies(runs: int) -> list[float]:
    """The baseline: one message sent to the fake Discord straight from aiohttp (a loopback round trip)."""
    async with FakeDiscord() as fake, aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bot {fake.token}"}
        url = f"{fake.api_base}/channels/{fake.CHANNEL_ID}/messages"
        latencies = []
        for run in range(runs):
            started = time.monotonic()
            async with session.post(url, json={"content": f"baseline {run}"}, headers=headers) as response:
                await response.read()
            latencies.append(time.monotonic() - started)
    return latencies


async def long_streams(seconds: float, streams: int) -> tuple[int, int, int, float]:
    """(most writes in any 5 s window, 429s, finished streams, stream seconds) for concurrent long answers."""
    with tempfile.TemporaryDirectory() as tmp:
        async with (
            SandboxProvider(api_key=HYPEREAL_KEY) as sandbox,
            FakeDiscord(ratelimits=True) as fake,
            run_bot(bot_settings(fake, sandbox, Path(tmp), default_allowance=100_000), fake, sandbox),
        ):
            # Tokens arrive every 50 ms for ``seconds``; answers stay under one message so the
            # figure is about edit pacing, not about how many messages a long answer needs.
            pieces = int(seconds / 0.05)
            sandbox.faults.chat_chunk_size = max(1, 1800 // pieces)
            sandbox.faults.chat_reply = "x" * (sandbox.faults.chat_chunk_size * pieces)
            sandbox.faults.chat_chunk_delay = 0.05
            started = time.monotonic()
            for n in range(streams):
                await fake.invoke("chat", prompt=f"long {n}")
            await _finished(fake, streams, within=seconds * 3 + 60)
            elapsed = time.monotonic() - started
            writes = _writes(fake, started)
            busiest = max(sum(1 for t in writes if start <= t < start + 5.0) for start in writes)
            finished = sum(FOOTER in m.content for m in fake.messages())
            return busiest, len(fake.rate_limited), finished, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--streams", type=int, default=3)
    args = parser.parse_args()

    ours = asyncio.run(first_text_latencies(args.runs))
    bare = asyncio.run(bare_send_latencies(args.runs))
    ours_ms, bare_ms = statistics.median(ours) * 1000, statistics.median(bare) * 1000
    print(f"first token → first visible text, median of {args.runs}: {ours_ms:.1f} ms (max {max(ours) * 1000:.1f} ms)")
    print(f"baseline: one message sent by bare aiohttp, median of {args.runs}: {bare_ms:.1f} ms")
    print(f"ratio ours / baseline: {ours_ms / bare_ms:.1f}")

    busiest, throttled, finished, elapsed = asyncio.run(long_streams(args.seconds, args.streams))
    print(
        f"{args.streams} concurrent streams for {elapsed:.0f} s in one channel: "
        f"at most {busiest} writes per 5 s (bar ≤ 5), {throttled} × 429, {finished}/{args.streams} finished"
    )


if __name__ == "__main__":
    main()

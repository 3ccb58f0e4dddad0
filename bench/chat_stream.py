"""Chat pacing against the peers' policy: first token → first visible text, and streams under Discord's limits.

    python bench/chat_stream.py [--runs 5] [--seconds 30] [--streams 1 3 10]

Runs the real bot in-process against the sandbox Hypereal and the fake Discord with Discord's
message-write limits enforced (5 per 5 s per channel, 429 beyond), all on 127.0.0.1.

1. Latency: ``--runs`` sequential ``/chat`` answers. For each, the time from the sandbox writing the
   first token to the fake Discord receiving the first message or edit showing it. The baseline is one
   message sent to the same fake straight from aiohttp (a loopback round trip); the ratio is ours / baseline.
2. Streams, ours against llmcord's policy: for each count in ``--streams``, that many answers stream
   at once in one channel for ``--seconds`` (a token every 50 ms). At the same time, in another
   channel of the same fake, the same number of answers are relayed the way llmcord does it
   (jakobdylanc/llmcord: discord.py, one edit per message at most every 1 s once the previous edit
   returned, no channel-wide budget). Both read the same model stream through a recording proxy, so
   the lag of the visible text behind the model's output is measured alike: for every token, the time
   from the model emitting it to the first successful write that shows it (median and p95). Also: 429s
   drawn in the channel, and the most writes (sends and edits) in any 5 s window (Discord: ≤ 5).
   Ours must draw 0 × 429 at every count.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import discord
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._rows import emit, ratio, verdict
from bot.hypereal import ChatMessage, HyperealClient
from bot.sandbox import SandboxProvider
from bot.web import WebServer
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


class RecordingProxy:
    """Forwards every request to the sandbox; for chat streams, notes when each token passed, per prompt.

    Both the bot and the llmcord-style relay read the model through it, so "when the model emitted
    a token" is the same clock and the same place for both.
    """

    HOP_BY_HOP = frozenset({"host", "content-length", "transfer-encoding", "connection"})

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.emitted: dict[str, list[tuple[float, int]]] = {}  # prompt → (time, characters so far)
        self._http: aiohttp.ClientSession | None = None
        self._server: WebServer | None = None
        self.url = ""

    async def __aenter__(self) -> RecordingProxy:
        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._server = WebServer(app, "127.0.0.1", 0)
        await self._server.start()
        self.url = f"http://127.0.0.1:{self._server.port}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._server is not None:
            await self._server.close()
        if self._http is not None:
            await self._http.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._http is not None
        body = await request.read()
        key = None
        if request.path == "/v1/chat" and body:
            messages = json.loads(body).get("messages") or []
            key = next((m.get("content") for m in reversed(messages) if m.get("role") == "user"), None)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in self.HOP_BY_HOP}
        async with self._http.request(request.method, self.upstream + request.path_qs, data=body, headers=headers,
                                      allow_redirects=False) as upstream:  # fmt: skip
            passed = {k: v for k, v in upstream.headers.items() if k.lower() not in self.HOP_BY_HOP}
            if "text/event-stream" not in upstream.headers.get("Content-Type", "") or key is None:
                return web.Response(body=await upstream.read(), status=upstream.status, headers=passed)
            response = web.StreamResponse(status=upstream.status, headers=passed)
            await response.prepare(request)
            record = self.emitted.setdefault(key, [])
            buffer, total = b"", 0
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
                buffer += chunk
                while b"\n\n" in buffer:
                    event, buffer = buffer.split(b"\n\n", 1)
                    for line in event.split(b"\n"):
                        if not line.startswith(b"data: ") or line.strip() == b"data: [DONE]":
                            continue
                        choices = json.loads(line[6:]).get("choices") or [{}]
                        piece = (choices[0].get("delta") or {}).get("content") or ""
                        if piece:
                            total += len(piece)
                            record.append((time.monotonic(), total))
            await response.write_eof()
            return response


async def _edit(message: discord.Message, text: str) -> None:
    # discord.py retries a 429 itself; an edit that still fails is dropped, as in llmcord (its task just ends).
    with contextlib.suppress(discord.HTTPException):
        await message.edit(content=text)


async def llmcord_stream(hypereal: HyperealClient, channel: discord.TextChannel, user_message_id: int,
                         prompt: str) -> None:  # fmt: skip
    """One answer relayed as llmcord relays it (its EDIT_DELAY_SECONDS = 1, one edit task at a time)."""
    text = ""
    reply: discord.Message | None = None
    edit_task: asyncio.Task[None] | None = None
    last_edit = 0.0
    async with hypereal.chat_stream([ChatMessage(role="user", content=prompt)]) as stream:
        async for delta in stream:
            text += delta
            ready = (edit_task is None or edit_task.done()) and time.monotonic() - last_edit >= 1.0
            if reply is None or ready:
                if edit_task is not None:
                    await edit_task
                if reply is None:
                    reply = await channel.get_partial_message(user_message_id).reply(text, mention_author=False)
                else:
                    edit_task = asyncio.create_task(_edit(reply, text))
                last_edit = time.monotonic()
    if edit_task is not None:
        await edit_task
    if reply is not None:
        await _edit(reply, text + FOOTER + "llmcord-style")  # llmcord's final edit when the stream ends


@dataclass
class StreamFigures:
    """One policy at one concurrency."""

    streams: int
    finished: int = 0
    throttled: int = 0
    busiest: int = 0
    lags: list[float] = field(default_factory=list)
    unseen: int = 0  # tokens never shown (should stay 0)

    def lag(self, q: int) -> float:
        """The q-th percentile of the visible-text lag, in seconds."""
        if len(self.lags) < 2:
            return self.lags[0] if self.lags else float("nan")
        return statistics.quantiles(self.lags, n=100, method="inclusive")[q - 1]


def _channel_of(fake: FakeDiscord, path: str) -> int | None:
    parts = path.split("/")
    if parts[1] == "channels":
        return int(parts[2])
    if parts[1] in ("webhooks", "interactions"):
        handle = fake.interactions.get(parts[3])
        return handle.channel_id if handle is not None else None
    return None


def _stream_of(fake: FakeDiscord, call_path: str, body: dict, llmcord_keys: dict[int, str]) -> str | None:
    """The prompt of the answer a write belongs to (ours: by interaction token; llmcord's: by message)."""
    parts = call_path.split("/")
    if parts[1] == "webhooks":
        handle = fake.interactions.get(parts[3])
        return str(handle.payload["data"]["options"][0]["value"]) if handle is not None else None
    if len(parts) >= 5:  # PATCH /channels/{c}/messages/{m}
        return llmcord_keys.get(int(parts[4]))
    reference = (body.get("message_reference") or {}).get("message_id")
    return llmcord_keys.get(int(reference)) if reference else None


def _figures(fake: FakeDiscord, proxy: RecordingProxy, channel_id: int, keys: list[str],
             llmcord_keys: dict[int, str], since: float) -> StreamFigures:  # fmt: skip
    figures = StreamFigures(len(keys))
    writes: dict[str, list[tuple[float, int]]] = {key: [] for key in keys}
    times = []
    for call in fake.calls:
        if call.time < since or (call.method, call.route) not in WRITE_ROUTES:
            continue
        if _channel_of(fake, call.path) != channel_id:
            continue
        if call.status == 429:
            figures.throttled += 1
            continue
        body = call.json if isinstance(call.json, dict) else {}
        if call.status != 200 or not (body.get("content") or "").strip():
            continue
        times.append(call.time)
        key = _stream_of(fake, call.path, body, llmcord_keys)
        if key in writes:
            writes[key].append((call.time, body["content"].count("x")))
            figures.finished += FOOTER in body["content"]
    figures.busiest = max((sum(1 for t in times if s <= t < s + 5.0) for s in times), default=0)
    for key in keys:
        shown = sorted(writes[key])
        for emitted_at, count in proxy.emitted.get(key, []):
            seen = next((t for t, visible in shown if t >= emitted_at and visible >= count), None)
            if seen is None:
                figures.unseen += 1
            else:
                figures.lags.append(seen - emitted_at)
    figures.finished = min(figures.finished, len(keys))
    return figures


async def streams_side_by_side(seconds: float, streams: int) -> tuple[StreamFigures, StreamFigures]:
    """(ours, llmcord's policy) for ``streams`` concurrent answers per channel, run at the same time."""
    with tempfile.TemporaryDirectory() as tmp:
        async with (
            SandboxProvider(api_key=HYPEREAL_KEY) as sandbox,
            RecordingProxy(sandbox.base_url) as proxy,
            FakeDiscord(ratelimits=True) as fake,
            run_bot(
                bot_settings(
                    fake,
                    sandbox,
                    Path(tmp),
                    default_allowance=1_000_000,
                    hypereal_base_url=proxy.url,
                    # One member asks every stream: the edit pacing is measured here, not the abuse limit (3).
                    max_inflight_per_member=20,
                ),
                fake,
                sandbox,
            ) as running,
            aiohttp.ClientSession() as http,
        ):
            # Tokens arrive every 50 ms for ``seconds``; answers stay under one message so the
            # figure is about edit pacing, not about how many messages a long answer needs.
            pieces = int(seconds / 0.05)
            sandbox.faults.chat_chunk_size = max(1, 1800 // pieces)
            sandbox.faults.chat_reply = "x" * (sandbox.faults.chat_chunk_size * pieces)
            sandbox.faults.chat_chunk_delay = 0.05
            # The llmcord-style relay: discord.py's REST client (its bucket handling included) with the bot's token.
            relay = discord.Client(intents=discord.Intents.none())
            await relay.login(fake.token)
            hypereal = HyperealClient(http, proxy.url, running.app.settings.hypereal_api_key)  # type: ignore[arg-type]
            try:
                channel = await relay.fetch_channel(fake.OTHER_CHANNEL_ID)
                assert isinstance(channel, discord.TextChannel)
                started = time.monotonic()
                ours_keys = [f"long {n}" for n in range(streams)]
                peer_keys = [f"peer {n}" for n in range(streams)]
                llmcord_keys: dict[int, str] = {}
                peers = []
                for n in range(streams):
                    await fake.invoke("chat", prompt=ours_keys[n])
                    asked = await fake.send_user_message(fake.OTHER_CHANNEL_ID, fake.MEMBER, peer_keys[n])
                    llmcord_keys[asked.id] = peer_keys[n]
                    peers.append(asyncio.create_task(llmcord_stream(hypereal, channel, asked.id, peer_keys[n])))
                await asyncio.gather(*peers)
                for message in fake.messages(fake.OTHER_CHANNEL_ID):
                    reference = (message.current.get("message_reference") or {}).get("message_id")
                    if reference and int(reference) in llmcord_keys:
                        llmcord_keys[message.id] = llmcord_keys[int(reference)]
                await fake.wait_for(
                    lambda: sum(FOOTER in m.content for m in fake.messages(fake.CHANNEL_ID)) >= streams,
                    timeout=seconds * 3 + 60,
                )
                ours = _figures(fake, proxy, fake.CHANNEL_ID, ours_keys, {}, started)
                peer = _figures(fake, proxy, fake.OTHER_CHANNEL_ID, peer_keys, llmcord_keys, started)
                return ours, peer
            finally:
                await relay.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 3, 10])
    args = parser.parse_args()

    ours = asyncio.run(first_text_latencies(args.runs))
    bare = asyncio.run(bare_send_latencies(args.runs))
    ours_ms, bare_ms = statistics.median(ours) * 1000, statistics.median(bare) * 1000
    print(f"first token → first visible text, median of {args.runs}: {ours_ms:.1f} ms (max {max(ours) * 1000:.1f} ms)")
    print(f"baseline: one message sent by bare aiohttp, median of {args.runs}: {bare_ms:.1f} ms")
    print(f"ratio ours / baseline: {ours_ms / bare_ms:.1f}")
    emit(
        f"Chat: first token → first visible text (median of {args.runs})",
        f"{ours_ms:.0f} ms (max {max(ours) * 1000:.0f} ms)",
        f"one message sent by bare aiohttp: {bare_ms:.1f} ms",
        ratio(ours_ms, bare_ms, 1),
        "",
    )

    for count in args.streams:
        mine, peer = asyncio.run(streams_side_by_side(args.seconds, count))
        for label, figures in (("ours", mine), ("llmcord's policy", peer)):
            print(
                f"{label}: {count} concurrent {args.seconds:.0f} s streams in one channel: "
                f"{figures.throttled} × 429, at most {figures.busiest} writes per 5 s, visible-text lag "
                f"median {figures.lag(50):.2f} s, p95 {figures.lag(95):.2f} s, "
                f"{figures.finished}/{count} finished, tokens never shown {figures.unseen}",
                flush=True,
            )
        emit(
            f"Chat: {count} concurrent {args.seconds:.0f} s stream(s) in one channel: "
            "429s, max writes / 5 s, visible-text lag median / p95",
            f"{mine.throttled} × 429, {mine.busiest} / 5 s, {mine.lag(50):.2f} / {mine.lag(95):.2f} s",
            f"llmcord (1 edit/s per message, no channel budget): {peer.throttled} × 429, {peer.busiest} / 5 s, "
            f"{peer.lag(50):.2f} / {peer.lag(95):.2f} s",
            f"lag p95 {ratio(mine.lag(95), peer.lag(95))}",
            verdict(mine.throttled == 0 and mine.busiest <= 5 and mine.finished == count, "0 × 429, ≤ 5 writes / 5 s"),
        )


if __name__ == "__main__":
    main()

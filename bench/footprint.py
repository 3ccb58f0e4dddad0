"""Footprint against a bare client: RSS and time to READY with 1,000 and 10,000 guilds from the fake gateway.

    python bench/footprint.py [--guilds 1000 10000]

For each guild count, two processes start at the same time, each against its own fake Discord
serving that many guilds (sharded as Discord requires past 2,500: ``GET /gateway/bot`` recommends
one shard per 1,000 guilds, and the fake closes a session serving more than 2,500 with 4011):

- ours: the real ``python -m bot`` with the in-process sandbox; ready = ``/healthz`` answers 200
  (every shard connected and ready, database answering);
- the baseline: a bare ``discord.py`` ``AutoShardedClient`` with its default intents and caches
  (``bench/_bare_client.py``); ready = ``on_ready``.

Time to READY is spawn → ready (it includes discord.py's 5 s pause between shard IDENTIFYs);
RSS is read from /proc once ready. Ratios are ours / baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._rows import emit, ratio
from tests.fakediscord import FakeDiscord

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 240.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 20)
        except TimeoutError:
            process.kill()
            await process.wait()


def _env(fake: FakeDiscord, **extra: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), "DISCORD_TOKEN": fake.token, **extra}


async def measure_bot(guilds: int) -> tuple[float, float, str]:
    """(seconds to healthy, RSS MB when healthy, failure or "") of ``python -m bot``."""
    port = _free_port()
    async with FakeDiscord(extra_guilds=guilds - 2) as fake, aiohttp.ClientSession() as http:
        with tempfile.TemporaryDirectory() as tmp:
            env = _env(
                fake,
                DISCORD_API_BASE=fake.api_base,
                DISCORD_GATEWAY_URL=fake.gateway_url,
                DISCORD_DEV_GUILD_ID=str(fake.GUILD_ID),
                HYPEREAL_SANDBOX="1",
                DATABASE_PATH=str(Path(tmp) / "bot.sqlite3"),
                WEB_HOST="127.0.0.1",
                WEB_PORT=str(port),
                LOG_LEVEL="WARNING",
            )
            stderr_path = Path(tmp) / "stderr.log"
            with stderr_path.open("wb") as stderr:
                started = time.perf_counter()
                process = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "bot", env=env, cwd=tmp, stdout=asyncio.subprocess.DEVNULL, stderr=stderr
                )
                try:
                    while time.perf_counter() - started < TIMEOUT:
                        if process.returncode is not None:
                            lines = stderr_path.read_text(errors="replace").strip().splitlines()
                            # The bot's one start-up line, without its time and level.
                            last = lines[-1].split(" bot ", 1)[-1][:110] if lines else ""
                            return float("nan"), float("nan"), f"exit {process.returncode}: {last}"
                        try:
                            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                                if response.status == 200:
                                    return time.perf_counter() - started, _rss_mb(process.pid), ""
                        except aiohttp.ClientError:
                            pass
                        await asyncio.sleep(0.05)
                    return float("nan"), float("nan"), f"not ready after {TIMEOUT:.0f} s"
                finally:
                    await _stop(process)


async def measure_bare(guilds: int) -> tuple[float, float, str]:
    """(seconds to on_ready, RSS MB then, failure or "") of a bare discord.py AutoShardedClient."""
    async with FakeDiscord(extra_guilds=guilds - 2) as fake:
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "bench" / "_bare_client.py"), fake.api_base, fake.gateway_url,
            env=_env(fake), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            assert process.stdout is not None
            line = await asyncio.wait_for(process.stdout.readline(), TIMEOUT)
            elapsed = time.perf_counter() - started
            if not line.startswith(b"READY"):
                return float("nan"), float("nan"), f"exit {await process.wait()} before READY"
            return elapsed, _rss_mb(process.pid), ""
        except TimeoutError:
            return float("nan"), float("nan"), f"not ready after {TIMEOUT:.0f} s"
        finally:
            await _stop(process)


async def measure_two_processes(guilds: int, url: str) -> tuple[float, list[float], str]:
    """(seconds until both are healthy, RSS MB of each, failure or "") of two ``python -m bot`` splitting the shards.

    SHARD_COUNT = one per 1,000 guilds, the first half of the ids in one process and the rest in the other, both on
    the PostgreSQL database at ``url``, against one fake Discord.
    """
    shards = max(2, -(-guilds // 1000))
    halves = [list(range(shards // 2)), list(range(shards // 2, shards))]
    ports = [_free_port(), _free_port()]
    async with FakeDiscord(extra_guilds=guilds - 2) as fake, aiohttp.ClientSession() as http:
        with tempfile.TemporaryDirectory() as tmp:
            processes = []
            started = time.perf_counter()
            for ids, port in zip(halves, ports, strict=True):
                env = _env(
                    fake,
                    DISCORD_API_BASE=fake.api_base,
                    DISCORD_GATEWAY_URL=fake.gateway_url,
                    DISCORD_DEV_GUILD_ID=str(fake.GUILD_ID),
                    HYPEREAL_SANDBOX="1",
                    DATABASE_URL=url,
                    SHARD_COUNT=str(shards),
                    SHARD_IDS=",".join(map(str, ids)),
                    WEB_HOST="127.0.0.1",
                    WEB_PORT=str(port),
                    LOG_LEVEL="WARNING",
                )
                processes.append(
                    await asyncio.create_subprocess_exec(
                        sys.executable,
                        "-m",
                        "bot",
                        env=env,
                        cwd=tmp,
                        stdout=asyncio.subprocess.DEVNULL,
                        stderr=asyncio.subprocess.DEVNULL,
                    )
                )
            try:
                ready: dict[int, float] = {}
                while time.perf_counter() - started < TIMEOUT and len(ready) < 2:
                    for n, (process, port) in enumerate(zip(processes, ports, strict=True)):
                        if process.returncode is not None:
                            return float("nan"), [], f"process {n} exited {process.returncode}"
                        if n in ready:
                            continue
                        try:
                            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                                if response.status == 200:
                                    ready[n] = _rss_mb(process.pid)
                        except aiohttp.ClientError:
                            pass
                    await asyncio.sleep(0.05)
                if len(ready) < 2:
                    return float("nan"), [], f"not ready after {TIMEOUT:.0f} s"
                return time.perf_counter() - started, [ready[0], ready[1]], ""
            finally:
                for process in processes:
                    await _stop(process)


async def side_by_side(guilds: int) -> tuple[tuple[float, float, str], tuple[float, float, str]]:
    """Both at once (each against its own fake): the wait between shard IDENTIFYs dominates at 10,000."""
    ours, bare = await asyncio.gather(measure_bot(guilds), measure_bare(guilds))
    return ours, bare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--guilds", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--split", type=int, default=10000, help="guilds for the two-process run (0: skip)")
    parser.add_argument("--postgres", default=os.environ.get("BENCH_DATABASE_URL"), help="a PostgreSQL URL")
    args = parser.parse_args()
    for guilds in args.guilds:
        shards = max(1, -(-guilds // 1000))
        sharding = f"{shards} shard{'s' if shards > 1 else ''}"
        (t_ours, rss_ours, failed), (t_bare, rss_bare, bare_failed) = asyncio.run(side_by_side(guilds))
        ours_text = failed or f"RSS {rss_ours:.1f} MB, ready in {t_ours:.1f} s"
        bare_text = bare_failed or f"RSS {rss_bare:.1f} MB, ready in {t_bare:.1f} s"
        print(f"{guilds:>6} guilds ({sharding}): ours {ours_text}; "
              f"bare discord.py {bare_text}", flush=True)  # fmt: skip
        emit(
            f"Footprint at {guilds:,} guilds ({sharding}, one process): RSS, time to READY",
            ours_text,
            f"bare discord.py AutoShardedClient, default intents and caches: {bare_text}",
            "" if failed or bare_failed else f"RSS {ratio(rss_ours, rss_bare)}, time {ratio(t_ours, t_bare)}",
            "connects (sharded past 2,500)" if not failed else "✗ must connect (sharded past 2,500)",
        )
    if args.split:
        from bench.ledger import postgres  # the same throwaway PostgreSQL the ledger bench uses

        with postgres(args.postgres) as url:
            if url is None:
                print("two processes: not measured (no PostgreSQL)")
                return
            elapsed, rss, failed = asyncio.run(measure_two_processes(args.split, url))
        shards = max(2, -(-args.split // 1000))
        text = failed or f"RSS {rss[0]:.1f} + {rss[1]:.1f} MB, all {shards} shards ready in {elapsed:.1f} s"
        print(f"{args.split:>6} guilds, {shards // 2}+{shards - shards // 2} shards over two processes: {text}")
        emit(
            f"Footprint at {args.split:,} guilds, {shards // 2}+{shards - shards // 2} shards over two processes "
            "(one PostgreSQL): RSS each, time until both are ready",
            text,
            "one process with all shards: see the row above",
            "",
            "connects" if not failed else "✗ must connect",
        )


if __name__ == "__main__":
    main()

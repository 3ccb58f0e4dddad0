"""Footprint: RSS and start-up time of `python -m bot` with 1,000 and 10,000 guilds from the fake gateway.

    python bench/footprint.py [--guilds 1000 10000]

Each run starts the real bot process against the fake Discord (which sends one GUILD_CREATE per
guild right after READY) and the in-process sandbox, then polls ``/healthz`` until it answers 200
(gateway connected and ready, database answering). Start-up time is spawn → first 200; RSS is
read from /proc once ready. The baseline is the same process with the 2 fixture guilds; the
ratios are against it.
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

from tests.fakediscord import FakeDiscord

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def measure(extra_guilds: int) -> tuple[int, float, float]:
    """(guilds, seconds to healthy, RSS MB when healthy)."""
    port = _free_port()
    async with FakeDiscord(extra_guilds=extra_guilds) as fake, aiohttp.ClientSession() as http:
        with tempfile.TemporaryDirectory() as tmp:
            env = {
                "PATH": os.environ.get("PATH", ""),
                "PYTHONPATH": str(ROOT),
                "DISCORD_TOKEN": fake.token,
                "DISCORD_API_BASE": fake.api_base,
                "DISCORD_GATEWAY_URL": fake.gateway_url,
                "DISCORD_DEV_GUILD_ID": str(fake.GUILD_ID),
                "HYPEREAL_SANDBOX": "1",
                "DATABASE_PATH": str(Path(tmp) / "bot.sqlite3"),
                "WEB_HOST": "127.0.0.1",
                "WEB_PORT": str(port),
                "LOG_LEVEL": "WARNING",
            }
            started = time.perf_counter()
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", env=env, cwd=tmp,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            try:
                while True:
                    if process.returncode is not None:
                        raise RuntimeError(f"the bot exited with {process.returncode}")
                    try:
                        async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                            if response.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.05)
                elapsed = time.perf_counter() - started
                rss = _rss_mb(process.pid)
            finally:
                process.terminate()
                await process.wait()
            return len(fake.guilds), elapsed, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--guilds", type=int, nargs="+", default=[1000, 10000])
    args = parser.parse_args()
    base_guilds, base_time, base_rss = asyncio.run(measure(0))
    print(f"baseline {base_guilds:>6} guilds: ready in {base_time:5.2f} s, RSS {base_rss:6.1f} MB")
    for count in args.guilds:
        guilds, elapsed, rss = asyncio.run(measure(max(count - base_guilds, 0)))
        print(
            f"         {guilds:>6} guilds: ready in {elapsed:5.2f} s, RSS {rss:6.1f} MB "
            f"(ratio to baseline: time {elapsed / base_time:.2f}, RSS {rss / base_rss:.2f})"
        )


if __name__ == "__main__":
    main()

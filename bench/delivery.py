"""Delivery memory: relaying a 100 MB output keeps the bot's memory flat.

    python bench/delivery.py [--megabytes 100]

A local aiohttp server streams an output of the given size; the bot's safe downloader (the one
job delivery uses) fetches it to a temporary file. Prints the peak Python heap during the relay
(tracemalloc) and the growth of the process's peak RSS, next to the size relayed: the ratio
peak-heap / output size is the figure (flat memory = a tiny ratio that does not grow with size).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import time
import tracemalloc
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._rows import emit, verdict
from bot.download import AllowList, SafeDownloader
from bot.web import WebServer

CHUNK = b"\0" * (256 * 1024)


async def relay(megabytes: int) -> tuple[int, float, int, int]:
    """(bytes relayed, seconds, peak traced heap bytes, peak RSS growth in KiB)."""
    size = megabytes * 1024 * 1024

    async def output(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "video/mp4", "Content-Length": str(size)})
        await response.prepare(request)
        sent = 0
        while sent < size:
            piece = CHUNK[: min(len(CHUNK), size - sent)]
            await response.write(piece)
            sent += len(piece)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/out.mp4", output)
    server = WebServer(app, "127.0.0.1", 0)
    await server.start()
    origin = f"http://127.0.0.1:{server.port}"
    downloader = SafeDownloader(AllowList.parse([origin]), max_bytes=size + 1)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    started = time.perf_counter()
    try:
        file = await downloader.download(f"{origin}/out.mp4", filename="bench")
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        assert file.size == size, (file.size, size)
        file.remove()
    finally:
        tracemalloc.stop()
        await downloader.close()
        await server.close()
    rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    return size, elapsed, peak, rss_growth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megabytes", type=int, default=100)
    args = parser.parse_args()
    size, elapsed, peak, rss_growth = asyncio.run(relay(args.megabytes))
    print(f"relayed {size / 2**20:.0f} MB to a temp file in {elapsed:.2f} s ({size / 2**20 / elapsed:.0f} MB/s)")
    print(f"peak Python heap during the relay: {peak / 2**20:.2f} MB (tracemalloc)")
    print(f"peak RSS growth of the process: {rss_growth / 1024:.1f} MB")
    print(f"ratio peak heap / output size: {peak / size:.4f}")
    emit(
        f"Delivery: peak Python heap relaying a {size / 2**20:.0f} MB output",
        f"{peak / 2**20:.2f} MB (RSS growth {rss_growth / 1024:.1f} MB, {size / 2**20 / elapsed:.0f} MB/s)",
        f"buffering it whole: {size / 2**20:.0f} MB",
        f"{peak / size:.4f}",
        verdict(peak < 8 * 2**20, "flat: peak heap < 8 MB at any size"),
    )


if __name__ == "__main__":
    main()

"""Webhook endpoint: requests/s, p50 and p99 latency at fixed offered loads, against a bare aiohttp handler.

    python bench/webhook.py [--rates 100 500 1500] [--seconds 5]

Both servers run on 127.0.0.1 in this process and get the same open-loop load: one request every
1/rate seconds, whatever the previous ones are doing (so slow answers show up as latency, not as a
lower offered load). Ours is the real endpoint (``bot.jobs.install_webhook_route``) with the real
job service and SQLite: each request looks the token's hash up, checks the payload, stores it, and
queues the confirming status poll (against the sandbox, where the job stays "processing"). The
baseline is an aiohttp handler that returns 200 at once. The ratios are ours / baseline.
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
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._rows import emit, ratio
from bot.app import build_services
from bot.catalog import Catalog
from bot.db import SQLiteDatabase
from bot.download import AllowList, SafeDownloader
from bot.hypereal import HyperealClient
from bot.jobs import install_webhook_route
from bot.jobs.store import NewJob, new_job_id, new_webhook_token
from bot.sandbox import SandboxProvider
from bot.settings import Settings
from bot.web import WebServer

KEY = "ck_bench_0123456789"


async def _serve(app: web.Application) -> tuple[WebServer, str]:
    server = WebServer(app, "127.0.0.1", 0)
    await server.start()
    return server, f"http://127.0.0.1:{server.port}"


async def _load(url: str, body: dict[str, object], rate: float, seconds: float) -> tuple[float, list[float], int]:
    """Fire requests at ``rate``/s for ``seconds``; returns (achieved req/s, latencies, non-200 count)."""
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> None:
            nonlocal errors
            started = time.perf_counter()
            async with session.post(url, json=body) as response:
                await response.read()
                if response.status != 200:
                    errors += 1
            latencies.append(time.perf_counter() - started)

        total = int(rate * seconds)
        tasks = []
        began = time.perf_counter()
        for n in range(total):
            delay = began + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - began
    return total / elapsed, latencies, errors


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def _p50(values: list[float]) -> float:
    return statistics.median(values)


async def ours(rate: float, seconds: float) -> tuple[float, list[float], int]:
    """The real endpoint, with a pending job whose secret URL receives every request."""
    with tempfile.TemporaryDirectory() as tmp:
        async with (
            SandboxProvider(api_key=KEY, job_delay=3600) as sandbox,
            aiohttp.ClientSession() as http,
            await SQLiteDatabase.open(Path(tmp) / "bench.sqlite3") as db,
        ):
            await db.migrate()
            settings = Settings(  # type: ignore[call-arg]
                _env_file=None, discord_token="bench", hypereal_api_key=KEY, public_url="http://127.0.0.1:1"
            )
            hypereal = HyperealClient(http, sandbox.base_url, settings.hypereal_api_key)  # type: ignore[arg-type]
            downloader = SafeDownloader(AllowList.parse([sandbox.base_url]), max_bytes=1024 * 1024)
            services = build_services(settings, db, http, hypereal, Catalog.load(), downloader, time.time)
            jobs = services.jobs
            submission = await hypereal.generate_video("kling-3-0-std-t2v", {"prompt": "bench"})
            token = new_webhook_token()
            job = await jobs.store.create(
                NewJob(new_job_id(), 1, 2, 3, "video", "kling-3-0-std-t2v", "video", {}, "bench-key", 42),
                webhook_token=token,
                deadline_at=int(time.time()) + 3600,
                recheck_at=time.time() + 3600,
            )
            await jobs.store.mark_pending(job.id, submission.job_id, None, 40, time.time() + 3600)
            app = web.Application()
            install_webhook_route(jobs)(app)
            server, base = await _serve(app)
            try:
                body = {"jobId": submission.job_id, "status": "completed", "outputUrl": f"{sandbox.base_url}/x"}
                return await _load(f"{base}/hypereal/webhook/{token}", body, rate, seconds)
            finally:
                await server.close()
                await jobs.stop()
                await downloader.close()


async def bare(rate: float, seconds: float) -> tuple[float, list[float], int]:
    """The baseline: an aiohttp handler that answers 200 and nothing else."""

    async def ok(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post("/hook/{token}", ok)
    server, base = await _serve(app)
    try:
        return await _load(f"{base}/hook/abc", {"jobId": "x", "status": "completed"}, rate, seconds)
    finally:
        await server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", type=float, nargs="+", default=[100.0, 500.0, 1500.0], help="offered req/s")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    for rate in args.rates:
        our_rps, our_lat, our_errors = asyncio.run(ours(rate, args.seconds))
        bare_rps, bare_lat, bare_errors = asyncio.run(bare(rate, args.seconds))
        print(f"offered load: {rate:.0f} requests/s for {args.seconds:.0f} s (open loop, loopback)")
        print(
            f"webhook endpoint: {our_rps:,.0f} req/s, p50 {_p50(our_lat) * 1000:.2f} ms, "
            f"p99 {_p99(our_lat) * 1000:.2f} ms, non-200: {our_errors}"
        )
        print(
            f"bare aiohttp 200: {bare_rps:,.0f} req/s, p50 {_p50(bare_lat) * 1000:.2f} ms, "
            f"p99 {_p99(bare_lat) * 1000:.2f} ms, non-200: {bare_errors}"
        )
        print(
            f"ratio ours/baseline: throughput {our_rps / bare_rps:.2f}, "
            f"p99 latency {_p99(our_lat) / _p99(bare_lat):.1f}x"
        )
        emit(
            f"Webhook at {rate:,.0f} req/s offered: achieved req/s, p50 / p99",
            f"{our_rps:,.0f} req/s, {_p50(our_lat) * 1000:.1f} / {_p99(our_lat) * 1000:.1f} ms, non-200 {our_errors}",
            f"bare aiohttp handler (200): {bare_rps:,.0f} req/s, "
            f"{_p50(bare_lat) * 1000:.1f} / {_p99(bare_lat) * 1000:.1f} ms",
            f"throughput {ratio(our_rps, bare_rps)}, p99 {ratio(_p99(our_lat), _p99(bare_lat), 1)}×",
            "non-200: 0",
        )


if __name__ == "__main__":
    main()

"""Restart safety: `python -m bot` killed with SIGKILL at random moments while 20 videos are in flight.

The sandbox Hypereal and the fake Discord live in the test process, so they outlive every bot
process. Each round asks for four videos, waits until their status messages are up, then kills
the bot at a random moment (often between our database write and Hypereal's answer, or while a
result is being posted) and starts it again. At the end every job must be delivered exactly once,
nothing submitted twice, and the ledger must balance.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import sys
from pathlib import Path

import pytest

from bot.credits import CreditLedger
from bot.db import Database
from bot.sandbox import SandboxProvider
from tests.conftest import HYPEREAL_KEY
from tests.fakediscord import FakeDiscord

ROOT = Path(__file__).resolve().parent.parent.parent
ROUNDS = 5
VIDEOS_PER_ROUND = 4


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _start(fake: FakeDiscord, sandbox: SandboxProvider, tmp_path: Path, port: int) -> asyncio.subprocess.Process:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "DISCORD_TOKEN": fake.token,
        "DISCORD_API_BASE": fake.api_base,
        "DISCORD_GATEWAY_URL": fake.gateway_url,
        "DISCORD_DEV_GUILD_ID": str(fake.GUILD_ID),
        "HYPEREAL_API_KEY": HYPEREAL_KEY,
        "HYPEREAL_BASE_URL": sandbox.base_url,
        "OUTPUT_HOSTS": sandbox.base_url,
        "DATABASE_PATH": str(tmp_path / "bot.sqlite3"),
        "WEB_HOST": "127.0.0.1",
        "WEB_PORT": str(port),
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
        "DEFAULT_ALLOWANCE": "10000",
        "JOB_POLL_FIRST_SECONDS": "0.5",
        "JOB_POLL_MAX_SECONDS": "1",
        "JOB_SUBMIT_GRACE_SECONDS": "4",
    }
    before = fake.identify_count
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await fake.wait_for(lambda: fake.identify_count > before, timeout=30)
    await fake.wait_for(lambda: fake.connected_sessions == 1, timeout=10)
    return process


def _results(fake: FakeDiscord) -> dict[str, int]:
    """Posted results per prompt (the result message quotes the prompt)."""
    counts: dict[str, int] = {}
    for message in fake.messages():
        if "is ready" in message.content and message.latest_files:
            prompt = message.content.split("\n> ", 1)[1]
            counts[prompt] = counts.get(prompt, 0) + 1
    return counts


@pytest.mark.timeout(240)
async def test_jobs_survive_kill_9_and_are_delivered_exactly_once(sandbox: SandboxProvider, tmp_path: Path) -> None:
    rng = random.Random(7)
    sandbox.job_delay = 2.5  # long enough that most jobs finish after the next restart
    port = _free_port()
    prompts: list[str] = []
    async with FakeDiscord() as fake:
        process = await _start(fake, sandbox, tmp_path, port)
        try:
            for round_number in range(ROUNDS):
                handles = []
                for n in range(VIDEOS_PER_ROUND):
                    prompt = f"clip {round_number}-{n}"
                    prompts.append(prompt)
                    handles.append(await fake.invoke("video", prompt=prompt))
                for handle in handles:
                    await fake.response(handle, timeout=20)
                await asyncio.sleep(rng.uniform(0.0, 3.0))
                process.kill()  # SIGKILL: no clean-up at all
                await process.wait()
                process = await _start(fake, sandbox, tmp_path, port)

            def settled() -> bool:
                results = _results(fake)
                return len(results) + len(_refunded_unsent(fake)) >= len(prompts)

            await fake.wait_for(settled, timeout=90)
            await asyncio.sleep(1.5)  # anything posted twice would show up now
        finally:
            process.terminate()
            await process.wait()

    submissions: dict[str, int] = {}
    for request in sandbox.requests:
        if request.path == "/v1/videos/generate":
            prompt = request.json["input"]["prompt"]
            submissions[prompt] = submissions.get(prompt, 0) + 1
    assert all(count == 1 for count in submissions.values()), submissions  # nothing submitted twice

    results = _results(fake)
    assert all(count == 1 for count in results.values()), results  # nothing posted twice
    unsent = _refunded_unsent(fake)
    # A job is either delivered once, or it never reached Hypereal and its credits came back.
    assert set(results) | unsent == set(prompts)
    assert not (unsent & set(submissions)), "a job Hypereal ran was refunded instead of delivered"

    async with await Database.open(tmp_path / "bot.sqlite3") as db:
        ledger = CreditLedger(db, lambda: 0.0, default_allowance=10000, default_period="month")
        assert await ledger.check_invariants() == []
        held = await db.fetch_value("SELECT COUNT(*) FROM reservations WHERE state = 'held'")
        assert held == 0
        states = await db.fetch_all("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")
        assert {row["state"] for row in states} <= {"delivered", "failed"}


def _refunded_unsent(fake: FakeDiscord) -> set[str]:
    """Prompts whose job was refunded because Hypereal never confirmed it (announced in the channel)."""
    prompts = set()
    for message in fake.messages():
        if "never confirmed" in message.content:
            prompts.add(message.content.split("\n> ", 1)[1])
    return prompts

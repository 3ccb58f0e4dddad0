"""Kill storm: `python -m bot` killed with SIGKILL at random moments of a mixed video + image workload.

The sandbox Hypereal and the fake Discord live in the test process, so they outlive every bot
process. Each round asks for videos and images with Hypereal answering slowly (0.5–1.5 s), kills
the bot at a random moment — before a command is handled, while a submit is in flight, between our
database writes, while a result is posted — and starts it again. At the end every request is
accounted for: a video whose submit answer was stored is delivered exactly once; one whose answer
was lost with the process is adopted by its webhook or refunded and announced ("refunded
unconfirmed"); an image is posted once (and charged, or refunded if the crash came between post and
charge) or refunded; nothing is posted or submitted twice; the ledger balances; nothing stays held.
After the last restart one video and one image are asked with nobody killing the bot: both must
come back (a storm on a loaded machine can kill every round's work before Hypereal answers, so
"something was delivered" is asked of the calm requests, not of the storm's timing).
`make test` runs 5 rounds, `make soak` 50.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.credits import CreditLedger
from bot.db import SQLiteDatabase
from bot.sandbox import SandboxProvider
from tests.conftest import HYPEREAL_KEY, free_port
from tests.fakediscord import FakeDiscord

ROOT = Path(__file__).resolve().parent.parent.parent
ROUNDS = 5
VIDEOS_PER_ROUND = 3
IMAGES_PER_ROUND = 2


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
        "DEFAULT_ALLOWANCE": "100000",
        # The storm asks for several jobs at once as one member: the abuse limit is not what it tests.
        "MAX_INFLIGHT_PER_MEMBER": "20",
        "JOB_POLL_FIRST_SECONDS": "0.5",
        "JOB_POLL_MAX_SECONDS": "1",
        # An unconfirmed submit waits this long for its webhook (in production: the job deadline).
        "JOB_SUBMIT_GRACE_SECONDS": "4",
    }
    before = fake.identify_count
    # Each process logs to its own file (the child keeps the descriptor): a failing storm can be read back.
    with (tmp_path / f"bot-{before}.log").open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", env=env, cwd=tmp_path,
            stdout=asyncio.subprocess.DEVNULL, stderr=log_file,
        )  # fmt: skip
    await fake.wait_for(lambda: fake.identify_count > before, timeout=30)
    await fake.wait_for(lambda: fake.connected_sessions == 1, timeout=10)
    return process


@dataclass
class StormReport:
    """What became of every request of the storm."""

    rounds: int
    requests: int = 0
    delivered: int = 0
    refunded_unconfirmed: int = 0
    refunded: int = 0  # images that never came back, or whose post failed: nothing charged
    not_started: int = 0  # the bot died before it handled the command at all
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    submitted_twice: list[str] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)
    held: int = 0
    calm_delivered: int = 0  # of the requests asked after the storm, with the bot left running (all must be)
    calm: int = 0

    def table(self) -> str:
        """One line for the test log."""
        return (
            f"kill storm: rounds={self.rounds} requests={self.requests} delivered={self.delivered} "
            f"refunded_unconfirmed={self.refunded_unconfirmed} refunded={self.refunded} "
            f"not_started={self.not_started} lost={len(self.lost)} duplicated={len(self.duplicated)} "
            f"submitted_twice={len(self.submitted_twice)} drift={len(self.drift)} held={self.held} "
            f"after the storm: {self.calm_delivered}/{self.calm} delivered"
        )


def posted_per_prompt(fake: FakeDiscord) -> dict[str, int]:
    """Results posted per prompt: video replies quote the prompt, image embeds carry it as the title."""
    counts: dict[str, int] = {}
    for message in fake.messages():
        if message.ephemeral or not message.latest_files:
            continue
        prompt = None
        if "is ready" in message.content and "\n> " in message.content:
            prompt = message.content.split("\n> ", 1)[1]
        elif message.embeds and str(message.embeds[0].get("title", "")).startswith("🎨 "):
            prompt = message.embeds[0]["title"][2:]
        if prompt:
            counts[prompt] = counts.get(prompt, 0) + 1
    return counts


async def _settled(db_path: Path) -> bool:
    async with await SQLiteDatabase.open(db_path) as db:
        open_jobs = await db.fetch_value(
            "SELECT COUNT(*) FROM jobs WHERE state IN ('submitting', 'pending', 'completed')"
        )
        held = await db.fetch_value("SELECT COUNT(*) FROM reservations WHERE state = 'held'")
    return open_jobs == 0 and held == 0


async def kill_storm(sandbox: SandboxProvider, tmp_path: Path, rounds: int, seed: int = 7) -> StormReport:
    """Run the storm and account for every request."""
    rng = random.Random(seed)
    sandbox.job_delay = 2.5  # long enough that many jobs finish after the next restart
    port = free_port()
    db_path = tmp_path / "bot.sqlite3"
    videos: list[str] = []
    images: dict[str, str] = {}  # interaction id → prompt
    async with FakeDiscord() as fake:
        process = await _start(fake, sandbox, tmp_path, port)
        try:
            for number in range(rounds):
                sandbox.faults.delay_seconds = rng.uniform(0.5, 1.5)
                work = [("video", f"clip {number}-{n}") for n in range(VIDEOS_PER_ROUND)]
                work += [("image", f"picture {number}-{n}") for n in range(IMAGES_PER_ROUND)]
                rng.shuffle(work)
                for command, prompt in work:
                    handle = await fake.invoke(command, prompt=prompt)
                    if command == "video":
                        videos.append(prompt)
                    else:
                        images[str(handle.id)] = prompt
                await asyncio.sleep(rng.uniform(0.2, 4.0))
                process.kill()  # SIGKILL: no clean-up at all
                await process.wait()
                process = await _start(fake, sandbox, tmp_path, port)
            sandbox.faults.delay_seconds = 0.0
            for command, prompt in (("video", "calm clip"), ("image", "calm picture")):
                handle = await fake.invoke(command, prompt=prompt)
                if command == "video":
                    videos.append(prompt)
                else:
                    images[str(handle.id)] = prompt
            for _ in range(600):
                if await _settled(db_path):
                    break
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.5)  # anything posted twice would show up now
        finally:
            process.terminate()
            await process.wait()
        return await _account(fake, sandbox, db_path, rounds, videos, images)


async def _account(
    fake: FakeDiscord, sandbox: SandboxProvider, db_path: Path, rounds: int, videos: list[str], images: dict[str, str]
) -> StormReport:
    report = StormReport(rounds=rounds, requests=len(videos) + len(images))
    posted = posted_per_prompt(fake)
    calm = [prompt for prompt in [*videos, *images.values()] if prompt.startswith("calm ")]
    report.calm = len(calm)
    report.calm_delivered = sum(1 for prompt in calm if posted.get(prompt) == 1)
    report.duplicated = sorted(prompt for prompt, count in posted.items() if count > 1)
    submissions: dict[str, int] = {}
    for request in sandbox.requests:
        if request.path == "/v1/videos/generate" and isinstance(request.json, dict):
            prompt = request.json["input"]["prompt"]
            submissions[prompt] = submissions.get(prompt, 0) + 1
    report.submitted_twice = sorted(prompt for prompt, count in submissions.items() if count > 1)
    async with await SQLiteDatabase.open(db_path) as db:
        ledger = CreditLedger(db, lambda: 0.0, default_allowance=100000, default_period="month")
        report.drift = await ledger.check_invariants()
        report.held = int(await db.fetch_value("SELECT COUNT(*) FROM reservations WHERE state = 'held'"))
        jobs = {
            json.loads(row["request_json"])["input"]["prompt"]: row
            for row in await db.fetch_all("SELECT request_json, state, hypereal_job_id, error FROM jobs")
        }
        reservations = {row["key"]: row["state"] for row in await db.fetch_all("SELECT key, state FROM reservations")}
    for prompt in videos:
        job = jobs.get(prompt)
        if job is None:
            report.not_started += 1
        elif posted.get(prompt, 0) == 1 and job["state"] == "delivered":
            report.delivered += 1
        elif job["hypereal_job_id"] is None and job["state"] == "failed" and prompt not in submissions:
            report.refunded += 1  # killed before the submit left: refunded, never at Hypereal
        elif job["hypereal_job_id"] is None and job["state"] == "failed" and "never confirmed" in (job["error"] or ""):
            report.refunded_unconfirmed += 1  # ran at Hypereal, its answer died with the process: refunded
        else:
            report.lost.append(prompt)
    for interaction_id, prompt in images.items():
        state = reservations.get(f"image:{interaction_id}")
        count = posted.get(prompt, 0)
        if state is None:
            report.not_started += 1
        elif count == 1:
            report.delivered += 1  # settled, or refunded when the crash fell between post and charge
        elif count == 0 and state == "refunded":
            report.refunded += 1
        else:
            report.lost.append(prompt)
    return report


@pytest.mark.timeout(240)
async def test_kill_storm_loses_nothing_and_posts_nothing_twice(
    sandbox: SandboxProvider, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = await kill_storm(sandbox, tmp_path, ROUNDS)
    with capsys.disabled():
        print("\n" + report.table())
    assert report.lost == []
    assert report.duplicated == []
    assert report.submitted_twice == []
    assert report.drift == []
    assert report.held == 0
    assert report.calm_delivered == report.calm == 2

"""Two `python -m bot` processes, one shard each, on one PostgreSQL — killed with SIGKILL and restarted.

The fake Discord and the sandbox Hypereal live in the test process, so they outlive every bot process.
Process 0 runs shard 0 of 2, process 1 shard 1 (``SHARD_COUNT=2``, ``SHARD_IDS``), each with its own
web port and ``PUBLIC_URL``. Commands are answered in guilds of both shards; 20 video jobs go to guilds of
both shards while one process or the other is killed at a random moment, 5 times, and restarted with
the same shards. Both processes sit behind one ``PUBLIC_URL``, a balancer that skips a dead backend
(tests/balancer.py), as README's "Scaling out" says to deploy them. At the end: every job that reached
Hypereal is delivered exactly once — also those whose submit answer died with the killed process, since
their webhook reaches the live process, which adopts them (the window one process cannot close) —
nothing was submitted twice, the ledger balances and nothing stays held. ``TWO_PROCESSES_SEED`` picks
other kill moments (default 13). A webhook for a job of process 0 posted straight to process 1's web
port is accepted there and the job delivered once.

A restarted process has its predecessor's slot (host + shards, :func:`bot.processes.process_slot`), so it
takes over the killed one's leases and reservations at once instead of after the 20 s heartbeat TTL.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.credits import CreditLedger
from bot.db import Database, open_postgres
from bot.processes import HEARTBEAT_TTL_SECONDS, ProcessRegistry, process_slot
from bot.sandbox import SandboxProvider
from tests.balancer import Balancer
from tests.conftest import HYPEREAL_KEY, free_port
from tests.fakediscord import FakeDiscord, InteractionHandle
from tests.jobs.test_restart_safety import posted_per_prompt

ROOT = Path(__file__).resolve().parent.parent
SHARDS = 2
KILLS = 5
VIDEOS_PER_SHARD_PER_ROUND = 2  # 5 rounds x 2 shards x 2 = 20 videos
GUILD = 100_000_000_000_000_001


@dataclass
class Shard:
    """One bot process slot: its shard, its web port, the guild channel it serves, its current process."""

    shard_id: int
    port: int
    channel_id: int
    process: asyncio.subprocess.Process | None = None
    starts: int = 0


@dataclass
class Cluster:
    """Two bot processes against the fakes and one database."""

    fake: FakeDiscord
    sandbox: SandboxProvider
    database_url: str
    tmp_path: Path
    shards: list[Shard]
    public_url: str  # the balancer in front of both web ports

    def env(self, shard: Shard) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(ROOT),
            "DISCORD_TOKEN": self.fake.token,
            "DISCORD_API_BASE": self.fake.api_base,
            "DISCORD_GATEWAY_URL": self.fake.gateway_url,
            "HYPEREAL_API_KEY": HYPEREAL_KEY,
            "HYPEREAL_BASE_URL": self.sandbox.base_url,
            "OUTPUT_HOSTS": self.sandbox.base_url,
            "DATABASE_URL": self.database_url,
            "SHARD_COUNT": str(SHARDS),
            "SHARD_IDS": str(shard.shard_id),
            "WEB_HOST": "127.0.0.1",
            "WEB_PORT": str(shard.port),
            "PUBLIC_URL": self.public_url,
            "DEFAULT_ALLOWANCE": "100000",
            # One member asks for all 20 videos: the in-flight limit (3) would refuse most of them.
            "MAX_INFLIGHT_PER_MEMBER": "20",
            "JOB_POLL_FIRST_SECONDS": "0.5",
            "JOB_POLL_MAX_SECONDS": "1",
            # An unconfirmed submit waits this long for its webhook (in production: the job deadline);
            # jobs take 2.5 s, so a loaded machine still has seconds to spare.
            "JOB_SUBMIT_GRACE_SECONDS": "8",
        }

    def _identified(self, shard_id: int) -> int:
        return sum(1 for s in self.fake.identified if s.shard_id == shard_id)

    async def start(self, shard: Shard) -> None:
        """Start the shard's process and wait until its shard is identified (and no dead session lingers)."""
        before = self._identified(shard.shard_id)
        shard.starts += 1
        log = (self.tmp_path / f"shard{shard.shard_id}-{shard.starts}.log").open("wb")
        shard.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", env=self.env(shard), cwd=self.tmp_path,
            stdout=asyncio.subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
        log.close()
        await self.fake.wait_for(lambda: self._identified(shard.shard_id) > before, timeout=40)

    async def wait_all_connected(self) -> None:
        wanted = [(n, SHARDS) for n in range(SHARDS)]
        await self.fake.wait_for(lambda: self.fake.shards_connected == wanted, timeout=20)

    async def kill(self, shard: Shard) -> None:
        """SIGKILL: no clean-up at all (the heartbeat row, leases and reservations stay behind)."""
        assert shard.process is not None
        shard.process.kill()
        await shard.process.wait()

    async def stop_all(self) -> None:
        for shard in self.shards:
            if shard.process is not None and shard.process.returncode is None:
                shard.process.terminate()
        for shard in self.shards:
            if shard.process is not None:
                await shard.process.wait()


@dataclass
class Report:
    """What became of every video of the storm."""

    videos: int = 0
    delivered: int = 0
    refunded_unconfirmed: int = 0
    refunded: int = 0  # killed before the submit left: never at Hypereal, nothing charged
    not_started: int = 0  # the process died before it answered the command at all
    answered_without_job: list[str] = field(default_factory=list)  # refused (in-flight limit…): none expected
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    submitted_twice: list[str] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)
    held: int = 0
    per_shard: dict[int, int] = field(default_factory=dict)  # delivered per shard

    def line(self, kills: int, seconds: float, webhook: str) -> str:
        """One line for the test log."""
        shards = " ".join(f"shard{n}={count}" for n, count in sorted(self.per_shard.items()))
        return (
            f"two processes: kills={kills} videos={self.videos} delivered={self.delivered} ({shards}) "
            f"refunded_unconfirmed={self.refunded_unconfirmed} refunded={self.refunded} "
            f"not_started={self.not_started} answered_without_job={len(self.answered_without_job)} "
            f"lost={len(self.lost)} duplicated={len(self.duplicated)} "
            f"submitted_twice={len(self.submitted_twice)} drift={len(self.drift)} held={self.held} "
            f"cross_port_webhook={webhook} seconds={seconds:.0f}"
        )


def _submissions(sandbox: SandboxProvider) -> dict[str, int]:
    counts: dict[str, int] = {}
    for request in sandbox.requests:
        if request.path == "/v1/videos/generate" and isinstance(request.json, dict):
            prompt = request.json["input"]["prompt"]
            counts[prompt] = counts.get(prompt, 0) + 1
    return counts


async def _settled(db: Database) -> bool:
    open_jobs = await db.fetch_value("SELECT COUNT(*) FROM jobs WHERE state IN ('submitting', 'pending', 'completed')")
    held = await db.fetch_value("SELECT COUNT(*) FROM reservations WHERE state = 'held'")
    return open_jobs == 0 and held == 0


async def _wait_settled(db: Database, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await _settled(db):
            return
        await asyncio.sleep(0.2)


async def _jobs_by_prompt(db: Database) -> dict[str, Any]:
    rows = await db.fetch_all("SELECT id, request_json, state, hypereal_job_id, error, guild_id FROM jobs")
    return {json.loads(row["request_json"])["input"]["prompt"]: row for row in rows}


async def _ask_credits(fake: FakeDiscord, shards: list[Shard]) -> None:
    """/credits is answered in a guild of every shard (each by its own process)."""
    for shard in shards:
        answer = await fake.response(await fake.invoke("credits", channel_id=shard.channel_id), timeout=20)
        assert answer.ephemeral
        assert "credits left" in answer.embeds[0]["fields"][0]["value"], answer.embeds


async def _cross_port_webhook(cluster: Cluster, db: Database) -> str:
    """A job of process 0 whose webhook Hypereal posts to process 1's web port: accepted there, delivered once."""
    fake, sandbox = cluster.fake, cluster.sandbox
    a, b = cluster.shards
    sandbox.faults.job_delay = 3600.0  # the job finishes only when the test says so
    prompt = "crossed webhook"
    try:
        await fake.invoke("video", prompt=prompt, channel_id=a.channel_id)
        for _ in range(200):
            job = (await _jobs_by_prompt(db)).get(prompt)
            if job is not None and job["hypereal_job_id"]:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the job of process 0 never got its Hypereal id")
    finally:
        sandbox.faults.job_delay = None
    remote = sandbox.jobs[job["hypereal_job_id"]]
    assert remote.webhook_url is not None
    assert remote.webhook_url.startswith(cluster.public_url + "/")
    # Straight to the other process's port, past the balancer:
    remote.webhook_url = remote.webhook_url.replace(cluster.public_url, f"http://127.0.0.1:{b.port}")
    await sandbox.finish_job(remote.id)
    url, payload, status = sandbox.webhooks_sent[-1]
    assert f":{b.port}/" in url, url
    assert status == 200, status
    await fake.wait_for(lambda: posted_per_prompt(fake).get(prompt, 0) >= 1, timeout=20)
    stored = await db.fetch_one("SELECT state, webhook_payload FROM jobs WHERE id = ?", (job["id"],))
    assert stored is not None
    assert json.loads(stored["webhook_payload"])["jobId"] == remote.id
    # The same webhook again, at either port: already finished, nothing posted twice.
    async with aiohttp.ClientSession() as http:
        for port in (b.port, a.port):
            again = url.replace(f":{b.port}/", f":{port}/")
            async with http.post(again, json=payload) as response:
                assert response.status == 200, await response.text()
    await asyncio.sleep(1.5)
    assert posted_per_prompt(fake).get(prompt) == 1
    state = await db.fetch_value("SELECT state FROM jobs WHERE id = ?", (job["id"],))
    assert state == "delivered"
    return "ok"


async def _account(
    cluster: Cluster, db: Database, videos: dict[str, int], asked: dict[str, InteractionHandle]
) -> Report:
    report = Report(videos=len(videos))
    posted = posted_per_prompt(cluster.fake)
    submissions = _submissions(cluster.sandbox)
    report.duplicated = sorted(prompt for prompt, count in posted.items() if count > 1)
    report.submitted_twice = sorted(prompt for prompt, count in submissions.items() if count > 1)
    ledger = CreditLedger(db, time.time, default_allowance=100000, default_period="month")
    report.drift = await ledger.check_invariants()
    report.held = int(await db.fetch_value("SELECT COUNT(*) FROM reservations WHERE state = 'held'"))
    jobs = await _jobs_by_prompt(db)
    for prompt, shard_id in videos.items():
        job = jobs.get(prompt)
        if job is None:
            if asked[prompt].callbacks:  # answered, yet no job: refused, so the storm tested less than it says
                report.answered_without_job.append(prompt)
            else:
                report.not_started += 1  # killed before it stored the job: nothing reserved (the ledger says)
        elif posted.get(prompt, 0) == 1 and job["state"] == "delivered":
            report.delivered += 1
            report.per_shard[shard_id] = report.per_shard.get(shard_id, 0) + 1
        elif job["hypereal_job_id"] is None and job["state"] == "failed" and prompt not in submissions:
            report.refunded += 1  # killed before the submit left: never at Hypereal, refunded
        elif job["hypereal_job_id"] is None and job["state"] == "failed" and "never confirmed" in (job["error"] or ""):
            report.refunded_unconfirmed += 1  # ran at Hypereal, its answer died with the process: refunded
        else:
            report.lost.append(prompt)  # includes a stored submit answer that was not delivered exactly once
    return report


@pytest.mark.timeout(180)
async def test_two_shard_processes_survive_kill_9_and_deliver_every_job_once(
    sandbox: SandboxProvider, fresh_postgres_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = int(os.environ.get("TWO_PROCESSES_SEED", "13"))
    rng = random.Random(seed)
    started = time.monotonic()
    sandbox.job_delay = 2.5  # long enough that jobs outlive the process that submitted them
    videos: dict[str, int] = {}  # prompt → shard
    asked: dict[str, InteractionHandle] = {}
    takeovers = 0
    async with FakeDiscord() as fake:
        shards = []
        for shard_id in range(SHARDS):
            guild = fake.guild_on_shard(shard_id, SHARDS)
            shards.append(Shard(shard_id, free_port(), guild.channels[0].id))
        async with Balancer([shard.port for shard in shards]) as balancer:
            cluster = Cluster(fake, sandbox, fresh_postgres_url, tmp_path, shards, balancer.url)
            db = await open_postgres(fresh_postgres_url)
            try:
                # Both at once: they take turns at migrating (advisory lock), then each identifies its shard.
                await asyncio.gather(*(cluster.start(shard) for shard in shards))
                await cluster.wait_all_connected()
                await fake.wait_for_commands(timeout=20)
                await _ask_credits(fake, shards)
                for number in range(KILLS):
                    sandbox.faults.delay_seconds = rng.uniform(0.5, 1.5)  # slow submit answers: kills land mid-submit
                    work = [(shard, f"clip {number}-{shard.shard_id}-{n}") for shard in shards
                            for n in range(VIDEOS_PER_SHARD_PER_ROUND)]  # fmt: skip
                    rng.shuffle(work)
                    for shard, prompt in work:
                        asked[prompt] = await fake.invoke("video", prompt=prompt, channel_id=shard.channel_id)
                        videos[prompt] = shard.shard_id
                    await asyncio.sleep(rng.uniform(0.1, 2.5))
                    victim = rng.choice(shards)
                    assert victim.process is not None
                    killed = f"shards={victim.shard_id}/{SHARDS}:{victim.process.pid}:"
                    await cluster.kill(victim)
                    await cluster.start(victim)
                    await cluster.wait_all_connected()
                    # The restarted process replaced its predecessor's row at start-up: what the killed one
                    # leased or held is free now, not after the 20 s heartbeat TTL.
                    owners = [row["owner"] for row in await db.fetch_all("SELECT owner FROM processes")]
                    assert not [o for o in owners if killed in o], owners
                    assert len(owners) == SHARDS, owners
                    takeovers += 1
                sandbox.faults.delay_seconds = 0.0
                await _wait_settled(db, timeout=60)
                await asyncio.sleep(1.5)  # anything posted twice would show up now
                await _ask_credits(fake, shards)  # the restarted processes answer commands too
                webhook = await _cross_port_webhook(cluster, db)
                report = await _account(cluster, db, videos, asked)
            finally:
                await cluster.stop_all()
                await db.close()
    with capsys.disabled():
        print("\n" + report.line(takeovers, time.monotonic() - started, webhook) + f" seed={seed}")
    assert report.videos == 20
    assert report.answered_without_job == []
    # The submits whose answer died with a process: their webhook came through the balancer to a live one.
    unanswered = [(payload.get("jobId"), status) for _, payload, status in sandbox.webhooks_sent if status != 200]
    assert report.refunded_unconfirmed == 0, (report.refunded_unconfirmed, balancer.unanswered, unanswered)
    assert balancer.unanswered == 0
    assert report.lost == []
    assert report.duplicated == []
    assert report.submitted_twice == []
    assert report.drift == []
    assert report.held == 0
    assert all(report.per_shard.get(n, 0) > 0 for n in range(SHARDS)), report.per_shard  # both shards delivered


async def test_a_restarted_process_takes_over_its_killed_predecessor_at_once(fresh_postgres_url: str) -> None:
    """Same host and shards: the newcomer drops its predecessor's row, so its leases and reservations are free
    now, not after the heartbeat TTL; a live neighbour on other shards keeps its own."""
    first = await open_postgres(fresh_postgres_url)
    await first.migrate()
    second = await open_postgres(fresh_postgres_url)
    try:
        clock = [time.time()]
        slot0, slot1 = process_slot([0], 2), process_slot([1], 2)
        assert slot0 != slot1
        assert slot0.endswith(":shards=0/2:")
        killed = ProcessRegistry(first, lambda: clock[0], slot=slot0)
        neighbour = ProcessRegistry(second, lambda: clock[0], slot=slot1)
        assert killed.owner.startswith(slot0)
        await killed.register()
        await neighbour.register()
        killed_ledger = CreditLedger(
            first, time.time, default_allowance=100, default_period="month", owner=killed.owner
        )
        neighbour_ledger = CreditLedger(
            second, time.time, default_allowance=100, default_period="month", owner=neighbour.owner
        )
        await killed_ledger.reserve(GUILD, 1, (), "chat", 5, "killed-chat")
        await neighbour_ledger.reserve(GUILD, 2, (), "chat", 5, "neighbour-chat")
        # (killed by SIGKILL: no stop(), its row stays with a fresh heartbeat)
        clock[0] += 1.0  # well inside the TTL
        restarted = ProcessRegistry(first, lambda: clock[0], slot=slot0)
        assert restarted.owner != killed.owner
        assert await restarted.register() == [killed.owner]
        live = await restarted.live_owners()
        assert live == {restarted.owner, neighbour.owner}
        assert await killed_ledger.held_keys(except_owners=live) == ["killed-chat"]  # the neighbour's is spared
        # Shard 1 started twice on one host (a configuration mistake) replaces the live one for a moment;
        # that one comes back with its next beat instead of staying robbed.
        twin = ProcessRegistry(second, lambda: clock[0], slot=slot1)
        assert await twin.register() == [neighbour.owner]
        assert neighbour.owner not in await restarted.live_owners()
        await neighbour.beat()
        assert neighbour.owner in await restarted.live_owners()
        # The others go silent: after the TTL only the beating process is alive (the rule without slots).
        clock[0] += HEARTBEAT_TTL_SECONDS + 1
        await restarted.beat()
        assert await restarted.live_owners() == {restarted.owner}
    finally:
        await first.close()
        await second.close()

"""Several processes on one PostgreSQL: money exact, jobs claimed once, recovery spares live neighbours.

The reservation race runs in two real OS processes, each with its own connection pool, as two bot
processes would; the lease and recovery tests use two owners on two pools in this process.
"""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.credits import CreditLedger
from bot.db import Database, open_postgres
from bot.hypereal.limiter import RequestLimiter
from bot.hypereal.shared_budget import SharedRequestLog
from bot.jobs.store import JobStore, NewJob, new_job_id
from bot.processes import HEARTBEAT_TTL_SECONDS, ProcessRegistry

ROOT = Path(__file__).resolve().parent.parent
GUILD = 100_000_000_000_000_001

RESERVER = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from bot.credits import CreditLedger, InsufficientCredits
    from bot.db import open_postgres

    async def main(url: str, name: str, count: int) -> None:
        db = await open_postgres(url)
        ledger = CreditLedger(db, time.time, default_allowance=500, default_period="month", owner=name)

        async def one(n: int) -> bool:
            try:
                await ledger.reserve({guild}, n, (), "chat", 1, f"{{name}}-{{n}}")
            except InsufficientCredits:
                return False
            return True

        results = await asyncio.gather(*(one(n) for n in range(count)))
        print(json.dumps({{"granted": sum(results)}}))
        await db.close()

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
    """
).format(guild=GUILD)


@pytest.fixture
async def two_pools(fresh_postgres_url: str) -> AsyncIterator[tuple[Database, Database]]:
    first = await open_postgres(fresh_postgres_url)
    await first.migrate()
    second = await open_postgres(fresh_postgres_url)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def test_1000_reservations_from_two_processes_against_500_credits_grant_exactly_500(
    two_pools: tuple[Database, Database], fresh_postgres_url: str
) -> None:
    db, _ = two_pools
    pipe = asyncio.subprocess.PIPE
    command = (sys.executable, "-c", RESERVER, fresh_postgres_url)
    processes = [
        await asyncio.create_subprocess_exec(*command, name, "500", cwd=ROOT, stdout=pipe, stderr=pipe)
        for name in ("a", "b")
    ]
    outputs = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in processes)), timeout=120)
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err.decode()
    granted = [json.loads(out)["granted"] for out, _ in outputs]
    assert sum(granted) == 500, granted
    assert all(n > 0 for n in granted), granted  # both processes really competed
    ledger = CreditLedger(db, time.time, default_allowance=500, default_period="month")
    assert (await ledger.budget(GUILD)).balance == 0
    assert await db.fetch_value("SELECT COUNT(*) FROM reservations WHERE state = 'held'") == 500
    assert await ledger.check_invariants() == []


def _job(n: int) -> NewJob:
    return NewJob(
        id=new_job_id(), guild_id=GUILD, channel_id=1, user_id=n, category="video", model="m", poll_type="video",
        request={"input": {"prompt": "p"}}, reservation_key=f"r{n}", estimate=1,
    )  # fmt: skip


async def test_two_pollers_claim_disjoint_jobs_and_a_dead_ones_jobs_are_taken_over(
    two_pools: tuple[Database, Database],
) -> None:
    a_db, b_db = two_pools
    a, b = JobStore(a_db, time.time, owner="a"), JobStore(b_db, time.time, owner="b")
    now = time.time()
    created = {(await a.create(_job(n), webhook_token=None, deadline_at=int(now) + 3600, recheck_at=now)).id
               for n in range(20)}  # fmt: skip
    # a created them and holds their leases: b, seeing a alive, takes none.
    assert await b.due(time.time(), live_owners={"a", "b"}) == []
    await a_db.execute("UPDATE jobs SET lease_owner = NULL, lease_until = NULL")  # released
    claimed_a, claimed_b = await asyncio.gather(
        a.due(time.time(), limit=15, live_owners={"a", "b"}), b.due(time.time(), limit=15, live_owners={"a", "b"})
    )
    ids_a, ids_b = {j.id for j in claimed_a}, {j.id for j in claimed_b}
    assert not ids_a & ids_b  # never one job in two processes
    assert ids_a | ids_b <= created
    again = await b.due(time.time(), limit=50, live_owners={"a", "b"})
    assert {j.id for j in again} == created - ids_a  # b re-claims its own, never a's while a lives
    # a dies (its owner is no longer live): b takes over everything at once, leases or not.
    taken = await b.due(time.time(), limit=50, live_owners={"b"})
    assert {j.id for j in taken} == created


async def test_recovery_refunds_only_what_dead_processes_left(two_pools: tuple[Database, Database]) -> None:
    a_db, b_db = two_pools
    clock = [time.time()]
    a_registry = ProcessRegistry(a_db, lambda: clock[0], owner="a")
    b_registry = ProcessRegistry(b_db, lambda: clock[0], owner="b")
    await a_registry.register()
    a_ledger = CreditLedger(a_db, time.time, default_allowance=100, default_period="month", owner="a")
    await a_ledger.reserve(GUILD, 1, (), "chat", 5, "a-chat")
    await b_registry.register()
    assert await a_ledger.held_keys(except_owners=await b_registry.live_owners()) == []  # a is alive
    clock[0] += HEARTBEAT_TTL_SECONDS + 1
    await b_registry.beat()
    assert await a_ledger.held_keys(except_owners=await b_registry.live_owners()) == ["a-chat"]  # a went silent


async def test_the_hourly_budget_is_shared_by_two_processes(two_pools: tuple[Database, Database]) -> None:
    limiters = [
        RequestLimiter(max_requests=10, window=2.0, shared=SharedRequestLog(db), clock=time.monotonic)
        for db in two_pools
    ]
    started = time.monotonic()
    stamps: list[float] = []

    async def one(limiter: RequestLimiter) -> None:
        await limiter.acquire()
        stamps.append(time.monotonic() - started)

    await asyncio.wait_for(asyncio.gather(*(one(limiters[n % 2]) for n in range(24))), timeout=30)
    first_window = [t for t in stamps if t < 1.9]
    assert len(first_window) == 10, sorted(stamps)  # 10 for both together, not 10 each
    assert len(stamps) == 24

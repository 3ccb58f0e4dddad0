"""The job lifecycle without Discord: real SQLite, the sandbox over loopback, a recording delivery side."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.app import build_services
from bot.catalog import Catalog
from bot.db import Database, SQLiteDatabase
from bot.download import AllowList, DownloadedFile, SafeDownloader
from bot.hypereal import HyperealClient
from bot.jobs import JobService, JobTiming, JobUnconfirmed, Receipt
from bot.jobs.store import Job, JobStore, NewJob, new_job_id, new_webhook_token
from bot.paid import Charge, PaidRequests, Quote, Requester
from bot.sandbox import SandboxProvider
from bot.settings import Settings
from tests.conftest import HYPEREAL_KEY, open_backend

GUILD = 1
REQUESTER = Requester(guild_id=GUILD, user_id=2, channel_id=3)


@dataclass
class RecordingDelivery:
    """The Discord side, reduced to what the service hands it."""

    delivered: list[tuple[str, bytes, Charge]] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)

    async def deliver(self, job: Job, file: DownloadedFile | None, charge: Charge, problem: str | None) -> Receipt:
        assert file is not None, problem
        self.delivered.append((job.id, file.path.read_bytes(), charge))
        return Receipt(message_id=len(self.delivered), channel_id=job.channel_id)

    async def announce_failure(self, job: Job, reason: str, charge: Charge | None) -> None:
        self.failures.append((job.id, reason))


@dataclass
class Harness:
    jobs: JobService
    paid: PaidRequests
    sandbox: SandboxProvider
    delivery: RecordingDelivery
    db: Database

    async def state(self, job_id: str) -> str:
        job = await self.jobs.store.get(job_id)
        assert job is not None
        return job.state

    async def reservation(self, job_id: str) -> str:
        return str(await self.db.fetch_value("SELECT state FROM reservations WHERE key = ?", (f"job:{job_id}",)))

    async def until(self, predicate: Callable[[], Any], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = predicate()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return
            await asyncio.sleep(0.02)
        raise AssertionError("condition not met in time")


MakeHarness = Callable[..., Any]


@pytest.fixture
async def make_harness(
    sandbox: SandboxProvider, tmp_path: Path, backend: tuple[str, str], request: pytest.FixtureRequest
) -> AsyncIterator[MakeHarness]:
    """Build a job service over a fresh database (each backend); options change timing, public URL and timeout."""
    opened: list[tuple[Database, JobService, SafeDownloader, aiohttp.ClientSession]] = []

    async def make(*, public_url: str | None = None, timeout: float = 10.0, **timing: float) -> Harness:
        if backend[0] == "sqlite":
            db = await SQLiteDatabase.open(tmp_path / f"jobs{len(opened)}.sqlite3")
        else:
            url = backend[1] if not opened else await request.getfixturevalue("postgres_server").create_database()
            db = await open_backend(("postgresql", url))
        await db.migrate()
        http = aiohttp.ClientSession()
        settings = Settings(_env_file=None, discord_token="x", hypereal_api_key=HYPEREAL_KEY)  # type: ignore[call-arg]
        hypereal = HyperealClient(http, sandbox.base_url, settings.hypereal_api_key, timeout=timeout)  # type: ignore[arg-type]
        downloader = SafeDownloader(AllowList.parse([sandbox.base_url]), max_bytes=10_000_000)
        services = build_services(settings, db, http, hypereal, Catalog.load(), downloader, time.time)
        jobs = JobService(
            store=JobStore(db, time.time),
            hypereal=hypereal,
            paid=services.paid,
            catalog=services.catalog,
            downloader=downloader,
            clock=time.time,
            public_url=public_url,
            timing=JobTiming(**{"first_poll": 0.1, "max_poll": 0.2, **timing}),
        )
        delivery = RecordingDelivery()
        jobs.attach(delivery)
        opened.append((db, jobs, downloader, http))
        return Harness(jobs, services.paid, sandbox, delivery, db)

    yield make
    for db, jobs, downloader, http in opened:
        await jobs.stop()
        await downloader.close()
        await http.close()
        await db.close()


class SilentMember:
    """The member side of a job, reduced to nothing: no status message, every price confirmed."""

    async def confirm(self, what: str, quote: Quote) -> bool:
        return True

    async def queued(self, position: int, eta: float, quote: Quote) -> None:
        return None

    async def working(self, model: str, quote: Quote, since: int) -> None:
        return None

    async def show_status(self, job: Job) -> int | None:
        return None


SILENT = SilentMember()


async def test_a_video_is_submitted_once_polled_settled_and_delivered(make_harness: MakeHarness) -> None:
    h = await make_harness()
    h.sandbox.faults.credits_used = 40  # Hypereal reports less than the catalog's 42
    h.jobs.start()
    job = await h.jobs.submit(REQUESTER, h.jobs.plan_video("a wave"), SILENT, upload_limit=None)
    assert job.state == "pending"
    assert await h.reservation(job.id) == "held"
    await h.until(lambda: h.delivery.delivered)
    (delivered_id, data, charge) = h.delivery.delivered[0]
    assert delivered_id == job.id
    assert data[4:8] == b"ftyp"  # an MP4
    assert charge.credits == 40  # what Hypereal reported, not the 42 estimated
    await h.until(lambda: _eq(h.state(job.id), "delivered"))
    assert await h.reservation(job.id) == "settled"
    assert len([r for r in h.sandbox.requests if r.path == "/v1/videos/generate"]) == 1
    assert await h.paid.ledger.check_invariants() == []


async def _eq(value: Any, expected: Any) -> bool:
    return (await value) == expected


async def _stored_job(store: JobStore, webhook_token: str | None = None) -> Job:
    """A bare video job row, submitting, due in a minute (no Hypereal behind it)."""
    return await store.create(
        NewJob(new_job_id(), GUILD, 3, 2, "video", "m", "video", {}, "k", 1),
        webhook_token=webhook_token,
        deadline_at=int(time.time()) + 60,
        recheck_at=time.time() + 60,
    )


async def test_transitions_have_exactly_one_winner(make_harness: MakeHarness) -> None:
    h = await make_harness()
    store = h.jobs.store
    job = await _stored_job(store)
    assert await store.mark_pending(job.id, "hj", None, 1, time.time())
    assert not await store.mark_pending(job.id, "other", None, 1, time.time())
    wins = await asyncio.gather(*(store.mark_completed(job.id, f"https://x/{n}", 1) for n in range(10)))
    assert wins.count(True) == 1
    assert not await store.mark_failed(job.id, "late failure")
    assert await store.mark_delivered(job.id, 1, 3, None)
    assert not await store.mark_delivered(job.id, 2, 3, None)


async def test_a_job_fails_or_is_cancelled_only_from_the_state_it_was_read_in(make_harness: MakeHarness) -> None:
    """Failing and cancelling are decided on a read; an adoption in between must win over both."""
    h = await make_harness()
    store = h.jobs.store
    job = await _stored_job(store)
    assert await store.adopt(job.id, "hj", time.time())  # its webhook named it: pending now
    assert not await store.mark_failed(job.id, "never confirmed", from_states=("submitting",))
    assert not await store.mark_cancelled(job.id, from_state="submitting")
    assert not await store.mark_cancelled(job.id, from_state="completed")  # never from a closed state
    assert await store.mark_cancelled(job.id, from_state="pending")


async def test_webhook_tokens_are_stored_hashed(make_harness: MakeHarness) -> None:
    h = await make_harness()
    token = new_webhook_token()
    assert len(token) >= 32  # 192 random bits, URL-safe
    job = await _stored_job(h.jobs.store, token)
    stored = await h.db.fetch_value("SELECT webhook_token_hash FROM jobs WHERE id = ?", (job.id,))
    assert token not in stored
    found = await h.jobs.job_for_token(token)
    assert found is not None
    assert found.id == job.id
    assert await h.jobs.job_for_token(token[:-1] + ("A" if token[-1] != "A" else "B")) is None


async def test_an_unanswered_submit_without_webhooks_is_refunded_at_once_and_never_resent(
    make_harness: MakeHarness,
) -> None:
    """No PUBLIC_URL: nothing can ever name the job, so waiting would only keep the credits held."""
    h = await make_harness(timeout=0.3)
    h.sandbox.faults.delay_seconds = 1.0  # Hypereal answers after our client gave up
    h.jobs.start()
    with pytest.raises(JobUnconfirmed, match="were refunded"):
        await h.jobs.submit(REQUESTER, h.jobs.plan_video("slow"), SILENT, upload_limit=None)
    (job,) = await h.jobs.store.for_user(GUILD, REQUESTER.user_id)
    assert job.state == "failed"
    assert await h.reservation(job.id) == "refunded"
    assert h.jobs.metrics.jobs_unconfirmed_refunded._value.get() == 1
    await asyncio.sleep(1.2)
    assert len([r for r in h.sandbox.requests if r.path == "/v1/videos/generate"]) == 1
    assert h.jobs.price_label(job) == "refunded"


async def test_an_unanswered_submit_waits_for_its_webhook_then_is_refunded_and_counted(
    make_harness: MakeHarness,
) -> None:
    h = await make_harness(public_url="https://bot.example", timeout=0.3, submit_grace=0.8)
    h.sandbox.faults.delay_seconds = 1.0
    h.sandbox.faults.drop_webhooks = True
    h.jobs.start()
    with pytest.raises(JobUnconfirmed, match="will still be posted here"):
        await h.jobs.submit(REQUESTER, h.jobs.plan_video("slow"), SILENT, upload_limit=None)
    (job,) = await h.jobs.store.unfinished()
    assert job.state == "submitting"
    assert await h.reservation(job.id) == "held"
    await h.until(lambda: h.delivery.failures)
    ((failed_id, reason),) = h.delivery.failures
    assert failed_id == job.id
    assert "never confirmed" in reason
    assert await h.state(job.id) == "failed"
    assert await h.reservation(job.id) == "refunded"
    assert len([r for r in h.sandbox.requests if r.path == "/v1/videos/generate"]) == 1
    assert h.jobs.metrics.jobs_unconfirmed_refunded._value.get() == 1


def test_an_unconfirmed_submit_stays_adoptable_until_the_deadline_by_default() -> None:
    assert JobTiming(deadline=45 * 60.0).adoptable_for == 45 * 60.0
    assert JobTiming(deadline=45 * 60.0, submit_grace=60).adoptable_for == 60


async def test_an_unanswered_submit_is_adopted_when_its_webhook_arrives(make_harness: MakeHarness) -> None:
    h = await make_harness(public_url="https://bot.example", timeout=0.3, submit_grace=30)
    h.sandbox.faults.delay_seconds = 0.6
    h.sandbox.faults.drop_webhooks = True  # the test plays Hypereal's webhook itself
    h.jobs.start()
    with pytest.raises(JobUnconfirmed):
        await h.jobs.submit(REQUESTER, h.jobs.plan_video("adopt me"), SILENT, upload_limit=None)
    await h.until(lambda: h.sandbox.jobs)
    h.sandbox.faults.delay_seconds = 0  # Hypereal is fast again for the polls
    (sandbox_job,) = h.sandbox.jobs.values()
    (job,) = await h.jobs.store.unfinished()
    token_url = next(r.json["webhook_url"] for r in h.sandbox.requests if r.path == "/v1/videos/generate")
    token = token_url.rsplit("/", 1)[1]
    found = await h.jobs.job_for_token(token)
    assert found is not None
    assert await h.jobs.accept_webhook(found, {"jobId": sandbox_job.id, "status": "processing"}, sandbox_job.id) == (
        200,
        "ok",
    )
    await h.until(lambda: h.delivery.delivered)
    assert h.delivery.delivered[0][0] == job.id
    assert await h.reservation(job.id) == "settled"


async def test_a_webhook_adopting_a_submit_wins_over_its_refund_decided_a_moment_before(
    make_harness: MakeHarness,
) -> None:
    """Seen with two processes and kill -9: the poller read the job as ``submitting`` past its grace, the
    webhook adopted it, then the poller's refund failed the now-pending job — run at Hypereal, never
    delivered. The refund decided on the stale read must lose, and the adopted job be delivered."""
    h = await make_harness(public_url="https://bot.example", timeout=0.3, submit_grace=0.2)
    h.sandbox.faults.delay_seconds = 0.6
    h.sandbox.faults.drop_webhooks = True  # the test plays Hypereal's webhook itself
    with pytest.raises(JobUnconfirmed):
        await h.jobs.submit(REQUESTER, h.jobs.plan_video("adopted at the last moment"), SILENT, upload_limit=None)
    await h.until(lambda: h.sandbox.jobs)
    h.sandbox.faults.delay_seconds = 0
    (sandbox_job,) = h.sandbox.jobs.values()
    (stale,) = await h.jobs.store.unfinished()  # what the poller read: submitting, its grace over
    assert stale.state == "submitting"
    await asyncio.sleep(0.3)
    token_url = next(r.json["webhook_url"] for r in h.sandbox.requests if r.path == "/v1/videos/generate")
    found = await h.jobs.job_for_token(token_url.rsplit("/", 1)[1])
    assert found is not None
    assert await h.jobs.accept_webhook(found, {"jobId": sandbox_job.id, "status": "processing"}, sandbox_job.id) == (
        200,
        "ok",
    )
    await h.jobs._check_unconfirmed(stale)  # the poller acts on what it read before the webhook
    assert await h.state(stale.id) == "pending"
    assert await h.reservation(stale.id) == "held"
    assert h.jobs.metrics.jobs_unconfirmed_refunded._value.get() == 0
    h.jobs.start()
    await h.until(lambda: h.delivery.delivered)
    assert h.delivery.delivered[0][0] == stale.id
    assert h.delivery.failures == []
    assert await h.reservation(stale.id) == "settled"
    assert await h.paid.ledger.check_invariants() == []


async def test_a_job_past_its_deadline_is_failed_and_refunded(make_harness: MakeHarness) -> None:
    h = await make_harness(deadline=0.5)
    h.sandbox.faults.job_delay = 60
    h.jobs.start()
    job = await h.jobs.submit(REQUESTER, h.jobs.plan_video("never ends"), SILENT, upload_limit=None)
    await h.until(lambda: h.delivery.failures)
    assert h.delivery.failures == [(job.id, "it did not finish within the 1-minute deadline")]
    assert await h.reservation(job.id) == "refunded"


async def test_the_early_status_quirk_is_not_terminal_but_a_real_failure_is(make_harness: MakeHarness) -> None:
    h = await make_harness()
    h.sandbox.faults.early_status_failures = 3
    h.jobs.start()
    ok = await h.jobs.submit(REQUESTER, h.jobs.plan_video("quirky"), SILENT, upload_limit=None)
    await h.until(lambda: h.delivery.delivered)
    assert h.delivery.delivered[0][0] == ok.id
    h.sandbox.faults.early_status_failures = 0
    h.sandbox.faults.fail_jobs = True
    bad = await h.jobs.submit(REQUESTER, h.jobs.plan_video("doomed"), SILENT, upload_limit=None)
    await h.until(lambda: h.delivery.failures)
    assert h.delivery.failures == [(bad.id, "Generation failed (sandbox)")]
    assert await h.reservation(bad.id) == "refunded"


async def test_recover_refunds_reservations_a_crash_orphaned(make_harness: MakeHarness) -> None:
    h = await make_harness()
    h.sandbox.faults.job_delay = 60
    job = await h.jobs.submit(REQUESTER, h.jobs.plan_video("keep"), SILENT, upload_limit=None)
    await h.paid.reserve(REQUESTER, "image", "nano-banana-t2i", 4, "image:lost")
    assert await h.jobs.recover() == 1
    assert await h.db.fetch_value("SELECT state FROM reservations WHERE key = 'image:lost'") == "refunded"
    assert await h.reservation(job.id) == "held"  # the unfinished job keeps its reservation


async def test_cancel_keeps_credits_hypereal_charged_and_refunds_unconfirmed_ones(make_harness: MakeHarness) -> None:
    h = await make_harness()
    h.sandbox.faults.job_delay = 60
    h.sandbox.faults.credits_used = 40  # Hypereal reports less than the catalog's 42
    job = await h.jobs.submit(REQUESTER, h.jobs.plan_video("stop me"), SILENT, upload_limit=None)
    with pytest.raises(Exception, match="Only the member who started"):
        await h.jobs.cancel(job.id, user_id=999)
    assert h.jobs.price_label(job) == "40 credits"  # Hypereal's reported price, not the ~42 estimate
    text = await h.jobs.cancel(job.id, REQUESTER.user_id)
    assert "it charged 40 credits for it, which stay spent" in text
    cancelled = await h.jobs.store.get(job.id)
    assert cancelled is not None
    assert h.jobs.price_label(cancelled) == "40 credits"  # Hypereal ran it: the credits stay spent
    assert await h.reservation(job.id) == "settled"
    with pytest.raises(Exception, match="already cancelled"):
        await h.jobs.cancel(job.id, REQUESTER.user_id)


async def test_an_output_off_the_allow_list_is_not_fetched_and_the_job_is_refunded(make_harness: MakeHarness) -> None:
    h = await make_harness()
    h.sandbox.faults.job_delay = 60
    job = await h.jobs.submit(REQUESTER, h.jobs.plan_video("evil"), SILENT, upload_limit=None)
    assert await h.jobs.store.mark_completed(job.id, "https://169.254.169.254/latest/meta-data", 40)
    h.jobs.start()
    await h.until(lambda: h.delivery.failures)
    ((failed_id, reason),) = h.delivery.failures
    assert failed_id == job.id
    assert reason.startswith("its output link was refused (")
    assert h.delivery.delivered == []
    assert await h.state(job.id) == "failed"
    assert await h.reservation(job.id) == "refunded"


async def _webhook(h: Harness, job: Job, status: str) -> tuple[int, str]:
    fresh = await h.jobs.store.get(job.id)
    assert fresh is not None
    assert fresh.hypereal_job_id is not None
    return await h.jobs.accept_webhook(fresh, {"jobId": fresh.hypereal_job_id, "status": status}, fresh.hypereal_job_id)


def _status_polls(h: Harness) -> int:
    return len([r for r in h.sandbox.requests if r.path.startswith("/api/v1/jobs/")])


async def test_a_flood_of_webhooks_costs_one_confirmation_poll(make_harness: MakeHarness) -> None:
    """300 webhooks used to mean 300 polls of the shared hourly budget; now one per job at a time."""
    # Spacing far above the test's length: a slow machine must not let a second poll through on time alone.
    h = await make_harness(public_url="https://bot.example", first_poll=30, max_poll=30, confirm_spacing=60)
    h.sandbox.faults.job_delay = 60
    h.sandbox.faults.drop_webhooks = True
    h.jobs.start()
    job = await h.jobs.submit(REQUESTER, h.jobs.plan_video("popular"), SILENT, upload_limit=None)
    for _ in range(30):  # one after another, each after the previous one's poll had time to run
        assert (await _webhook(h, job, "completed"))[0] == 200
        await asyncio.sleep(0.03)
    await h.until(lambda: _status_polls(h) >= 1)
    await asyncio.sleep(0.3)
    assert _status_polls(h) == 1
    assert await h.state(job.id) == "pending"  # the poll said "processing": a claim alone settles nothing


async def test_webhooks_for_a_job_whose_confirmation_is_due_write_nothing(make_harness: MakeHarness) -> None:
    """A flood at one job's secret URL costs a read per webhook: the first asks for the confirmation poll and
    is kept; the rest, while that poll is due, change no row."""
    h = await make_harness(public_url="https://bot.example", first_poll=30, max_poll=30, confirm_spacing=60)
    h.sandbox.faults.job_delay = 60
    h.sandbox.faults.drop_webhooks = True
    job = await h.jobs.submit(REQUESTER, h.jobs.plan_video("flooded"), SILENT, upload_limit=None)  # not started:
    assert await _webhook(h, job, "completed") == (200, "ok")  # nothing polls, so the request stays due
    first = await h.db.fetch_one(
        "SELECT webhook_payload, next_poll_at, confirm_requested FROM jobs WHERE id = ?", (job.id,)
    )
    assert first is not None
    assert first["confirm_requested"] == 1
    for status in ("failed", "processing"):
        assert await _webhook(h, job, status) == (200, "ok")
    again = await h.db.fetch_one(
        "SELECT webhook_payload, next_poll_at, confirm_requested FROM jobs WHERE id = ?", (job.id,)
    )
    assert again is not None
    assert dict(again) == dict(first)
    assert json.loads(again["webhook_payload"])["status"] == "completed"


async def test_webhooks_never_make_a_job_fail(make_harness: MakeHarness) -> None:
    """Confirmation polls meeting Hypereal's early "Failed to check status" (or any failure) leave the job alone."""
    h = await make_harness(public_url="https://bot.example", first_poll=30, max_poll=30, confirm_spacing=0.05)
    h.sandbox.faults.job_delay = 60
    h.sandbox.faults.drop_webhooks = True
    h.sandbox.faults.early_status_failures = 1000
    h.jobs.start()
    job = await h.jobs.submit(REQUESTER, h.jobs.plan_video("busy"), SILENT, upload_limit=None)
    for polls in range(1, 10):
        assert await _webhook(h, job, "failed") == (200, "ok")
        await h.until(lambda polls=polls: _status_polls(h) >= polls)
        await asyncio.sleep(0.06)
    assert await h.state(job.id) == "pending"
    assert await h.reservation(job.id) == "held"
    stored = await h.jobs.store.get(job.id)
    assert stored is not None
    assert stored.poll_count == 0
    assert h.delivery.failures == []


async def _completed_job(h: Harness, output_url: str, credits: int | None) -> Job:
    """A job Hypereal finished with this output and report, as the poller would store it."""
    job_id = new_job_id()
    await h.paid.reserve(REQUESTER, "video", "kling-3-0-std-t2v", 42, f"job:{job_id}")
    job = await h.jobs.store.create(
        NewJob(job_id, GUILD, 3, 2, "video", "kling-3-0-std-t2v", "video", {}, f"job:{job_id}", 42),
        webhook_token=None,
        deadline_at=int(time.time()) + 600,
        recheck_at=time.time(),
    )
    await h.jobs.store.mark_pending(job.id, f"hj-{job_id}", None, None, time.time() + 600)
    assert await h.jobs.store.mark_completed(job.id, output_url, credits)
    return job


@pytest.mark.parametrize(
    "output_url",
    [
        "https://evil.example\\@cdn.hypereal.tech/x",
        "https://xn--zz-bogus.example/x.mp4",
        "https://[::1/x.mp4",
    ],
)
async def test_an_output_the_bot_cannot_process_fails_and_refunds_after_a_few_tries(
    make_harness: MakeHarness, output_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The job used to stay "completed" with its credits held and a "job step failed" line every minute."""
    h = await make_harness()
    job = await _completed_job(h, output_url, 42)
    h.jobs.start()
    await h.until(lambda: h.delivery.failures)
    assert await h.state(job.id) == "failed"
    assert await h.reservation(job.id) == "refunded"
    assert [job_id for job_id, _ in h.delivery.failures] == [job.id]
    await asyncio.sleep(0.5)
    failed_steps = [r for r in caplog.records if r.getMessage().startswith("job step failed")]
    assert len(failed_steps) <= 5


async def test_a_negative_reported_cost_settles_to_the_estimate(make_harness: MakeHarness) -> None:
    h = await make_harness()
    h.jobs.start()
    job = await h.jobs.submit(REQUESTER, h.jobs.plan_video("fine"), SILENT, upload_limit=None)
    await h.until(lambda: h.delivery.delivered)
    # The same with a report that is not a cost at all.
    url = h.sandbox.output_urls()[0]
    odd = await _completed_job(h, url, -5)
    await h.until(lambda: len(h.delivery.delivered) == 2)
    assert h.delivery.delivered[1][0] == odd.id
    actual = await h.db.fetch_value("SELECT actual FROM reservations WHERE key = ?", (f"job:{odd.id}",))
    assert actual == 42
    assert job.id != odd.id


async def test_a_submit_whose_connection_dropped_is_unconfirmed_not_refused(make_harness: MakeHarness) -> None:
    """The job was created and charged at Hypereal: treating the dropped answer as a refusal lost the result."""
    h = await make_harness(public_url="https://bot.example", submit_grace=30)
    h.sandbox.faults.lose_post_answers = 1
    h.jobs.start()
    with pytest.raises(JobUnconfirmed):
        await h.jobs.submit(REQUESTER, h.jobs.plan_video("dropped"), SILENT, upload_limit=None)
    (job,) = await h.jobs.store.unfinished()
    assert job.state == "submitting"
    assert await h.reservation(job.id) == "held"
    # Hypereal's webhook names it later: it is adopted and delivered, not lost.
    (sandbox_job,) = h.sandbox.jobs.values()
    token = next(r.json["webhook_url"] for r in h.sandbox.requests if r.path == "/v1/videos/generate").rsplit("/", 1)[1]
    found = await h.jobs.job_for_token(token)
    assert found is not None
    await h.until(lambda: sandbox_job.status == "completed")
    assert (await h.jobs.accept_webhook(found, {"jobId": sandbox_job.id, "status": "completed"}, sandbox_job.id))[
        0
    ] == 200
    await h.until(lambda: h.delivery.delivered)
    assert await h.reservation(job.id) == "settled"

"""Async jobs (video, audio, 3D): submit, follow by webhook or polling, settle, deliver exactly once.

The lifecycle lives in :mod:`bot.jobs.store`; this module decides what happens at each step.

* **Submit**: reserve credits, store the job (``submitting``), post the status message, send the
  request (never retried), store Hypereal's ``jobId`` (``pending``). A request Hypereal refused is
  failed and refunded at once; one whose answer was lost (timeout, crash) stays ``submitting``
  until its webhook names its ``jobId`` or the submit grace passes — then it is refunded.
* **Follow**: a webhook for the job's secret URL triggers one status poll (nothing signs
  webhooks: the poll decides); the poller polls every open job with backoff anyway, so a lost
  webhook — or no ``PUBLIC_URL`` at all — only delays the result.
* **Finish**: ``completed`` settles to Hypereal's ``creditsUsed`` and delivers; ``failed``,
  deadline passed or ``404`` refunds and tells the requester.
* **Deliver**: download (safe downloader), hand the file to the Discord side, mark ``delivered``.
  Discord's message nonce makes a post repeated after a crash land once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from bot.catalog import Catalog, ModelSpec
from bot.consent import NoticePort, VoiceCloneConsent
from bot.download import DownloadedFile, DownloadFailed, DownloadRefused, DownloadTooLarge, SafeDownloader
from bot.errors import BotError, InvalidInput, JobNotFound
from bot.hypereal import HyperealClient, HyperealError, JobStatus, NotFound, ProviderTimeout
from bot.hypereal import InsufficientCredits as HyperealInsufficientCredits
from bot.hypereal.quirks import failure_may_be_early
from bot.jobs.store import Job, JobStore, NewJob, new_job_id, new_webhook_token
from bot.logs import PromptLog
from bot.metrics import Metrics
from bot.paid import Bill, Charge, MemberPort, PaidRequest, PaidRequests, Quote, Requester
from bot.processes import ProcessRegistry
from bot.wording import credits_text, result_noun

log = logging.getLogger(__name__)

#: How often a process on a shared database looks for reservations a dead neighbour left held.
RECOVERY_SWEEP_SECONDS = 30.0

MAX_DELIVERY_ATTEMPTS = 5
# A job step (poll, download, settle, delivery) that raises is retried with backoff this many times, then the job
# is failed and refunded: an answer the bot cannot process must not keep a reservation held for ever.
MAX_STEP_FAILURES = 5
MAX_SPEECH_CHARS = 5000
POLL_KIND = {"video": "video", "audio_clone": "audio", "audio_tts": "audio", "model3d": "3d"}
WHAT = {"video": "A video", "audio_tts": "Speech", "audio_clone": "A cloned voice", "model3d": "A 3D model"}


@dataclass(frozen=True)
class JobTiming:
    """How the poller paces itself (settings; tests shrink them)."""

    first_poll: float = 15.0
    max_poll: float = 60.0
    deadline: float = 45 * 60.0
    # A submit whose answer was lost stays adoptable by its webhook this long (None: until the deadline).
    submit_grace: float | None = None
    confirm_spacing: float = 5.0  # webhook confirmation polls of one job are at least this far apart

    @property
    def adoptable_for(self) -> float:
        """How long an unconfirmed submit waits for its webhook before it is refunded."""
        return self.deadline if self.submit_grace is None else min(self.submit_grace, self.deadline)


TEXT_INPUTS = frozenset({"prompt", "negative_prompt", "text"})


@dataclass(frozen=True)
class JobPlan:
    """A validated async request, priced, not yet paid for."""

    category: str  # catalog category: video, audio_clone, model3d…
    spec: ModelSpec
    input: dict[str, Any]
    estimate: int

    @property
    def noun(self) -> str:
        """What the result is called: "video", "speech", "cloned voice", "3D model"."""
        return result_noun(self.category)

    @property
    def quote(self) -> Quote:
        """The price shown before the charge (an estimate when the catalog's price is one)."""
        return Quote(self.estimate, exact=not self.spec.price.estimated)

    @property
    def what(self) -> str:
        """What is being bought, for the confirmation: "A video with kling-3-0-std-t2v"."""
        return f"{WHAT.get(self.category, 'A job')} with {self.spec.id}"


class JobMember(MemberPort, NoticePort, Protocol):
    """The member starting a job: the paid flow's port, the voice-clone notice, and the public status message."""

    async def show_status(self, job: Job) -> int | None:
        """Post the "⏳ Generating" status message (the job's results reply to it); returns its id."""
        ...


@dataclass(frozen=True)
class Receipt:
    """Where a result ended up: a message, or nowhere (``note`` says why; it stays listed in /jobs)."""

    message_id: int | None
    channel_id: int | None
    note: str | None = None


class DeliveryRetry(Exception):
    """Discord failed for a reason that may pass (5xx, 429, network): try the delivery again later."""


class Deliverer(Protocol):
    """The Discord side of delivery (implemented in ``cogs``; ``bot/`` never imports discord)."""

    async def deliver(self, job: Job, file: DownloadedFile | None, charge: Charge, problem: str | None) -> Receipt:
        """Post the result (attached when it fits, else a link) replying to the status message."""

    async def announce_failure(self, job: Job, reason: str, charge: Charge | None) -> None:
        """Tell the requester the job failed and what happened to the credits."""


class JobService:
    """Everything about async jobs except Discord."""

    def __init__(
        self,
        *,
        store: JobStore,
        hypereal: HyperealClient,
        paid: PaidRequests,
        catalog: Catalog,
        downloader: SafeDownloader,
        clock: Callable[[], float],
        public_url: str | None,
        timing: JobTiming | None = None,
        concurrency: int = 4,
        metrics: Metrics | None = None,
        processes: ProcessRegistry | None = None,
        prompt_log: PromptLog | None = None,
        voice_clone_consent: VoiceCloneConsent | None = None,
    ) -> None:
        self.store = store
        self.voice_clone_consent = voice_clone_consent  # None: voice clones ask for no consent (tests of jobs)
        self.processes = processes  # who else is alive (several processes on PostgreSQL)
        self.hypereal = hypereal
        self.paid = paid
        self.catalog = catalog
        self.downloader = downloader
        self.clock = clock
        self.public_url = public_url.rstrip("/") if public_url else None
        self.timing = timing or JobTiming()
        self.metrics = metrics or Metrics()
        self.prompt_log = prompt_log or PromptLog()
        self._deliverer: Deliverer | None = None
        self._submitting: set[str] = set()  # jobs whose submit request is in flight in this process
        self._limit = asyncio.Semaphore(concurrency)
        self._inflight: set[str] = set()  # jobs a task is working on now
        self._typical: dict[str, int] = {}  # model → median seconds of its last jobs (status messages)
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._stopping = False  # set by stop(): the poller loop ends even if a cancellation is swallowed

    # ── plans ────────────────────────────────────────────────────────────────

    def plan_video(
        self,
        prompt: str,
        *,
        image_url: str | None = None,
        model: str | None = None,
        duration: int | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
    ) -> JobPlan:
        """Validate a /video request against the catalog: t2v or i2v, allowed durations and sizes."""
        catalog = self.catalog
        spec = catalog.require(model, "video") if model else catalog.default("video_i2v" if image_url else "video_t2v")
        if image_url and not spec.takes_image:
            raise InvalidInput(
                f"`{spec.id}` makes videos from text only. Leave the image out, or pick an image-to-video model "
                f"such as `{catalog.default('video_i2v').id}`."
            )
        if "image" in spec.requires and not image_url:
            raise InvalidInput(f"`{spec.id}` animates an image: attach one with the `image` option.")
        unsupported = [name for name in spec.requires if name not in ("prompt", "image")]
        if unsupported:
            raise InvalidInput(
                f"`{spec.id}` needs {', '.join(unsupported)}, which /video does not take. Pick another model."
            )
        checked_prompt = catalog.check_prompt(spec, prompt)
        # A duration the catalog lists no values for is held to a documented range: -5 or 10**9 never
        # reaches the price or Hypereal (see bot.inputs).
        duration = catalog.check_duration(spec, duration)
        options = catalog.validate_options(
            spec, {"duration": duration, "aspect_ratio": aspect_ratio, "resolution": resolution}
        )
        estimate = catalog.quote(spec.id, duration=options.get("duration"), resolution=options.get("resolution"))
        request = {"prompt": checked_prompt, **({"image": image_url} if image_url else {}), **options}
        return JobPlan(category="video", spec=spec, input=request, estimate=estimate)

    def plan_animate(self, image_url: str, prompt: str) -> JobPlan:
        """Image → video with the default image-to-video model (the Animate button).

        The image's prompt may be longer than a video model takes (image prompts allow more): it is cut to fit.
        """
        limit = self.catalog.prompt_limit(self.catalog.default("video_i2v"))
        motion = prompt.strip()[:limit] or "Bring this image to life with gentle, natural motion."
        return self.plan_video(motion, image_url=image_url)

    def plan_model3d(self, image_url: str, model: str | None = None) -> JobPlan:
        """Image → 3D model (``/3d`` and the To 3D button)."""
        spec = self.catalog.require(model, "model3d") if model else self.catalog.default("model3d")
        if tuple(spec.requires) != ("image",):
            raise InvalidInput(
                f"`{spec.id}` does not make a model from one image. Use /3d-multiview for multi-view models, "
                f"or pick an image model such as `{self.catalog.default('model3d').id}`."
            )
        return JobPlan(category="model3d", spec=spec, input={"image": image_url}, estimate=self.catalog.quote(spec.id))

    def plan_multiview(self, views: dict[str, str], model: str | None = None) -> JobPlan:
        """Several views of one object → 3D model. ``views`` maps front/back/left/right to image URLs."""
        spec = self.catalog.require(model, "model3d") if model else self.catalog.default("model3d_multiview")
        keys = {f"{side}_image_url": url for side, url in views.items()}
        needed = [name for name in spec.requires if name.endswith("_image_url")]
        if not needed:
            raise InvalidInput(f"`{spec.id}` is not a multi-view model. Use /3d for one image.")
        missing = [name.removesuffix("_image_url") for name in needed if name not in keys]
        if missing:
            raise InvalidInput(f"`{spec.id}` needs the {', '.join(missing)} view(s) too. Attach them and try again.")
        request = {name: keys[name] for name in needed}
        return JobPlan(category="model3d", spec=spec, input=request, estimate=self.catalog.quote(spec.id))

    def plan_tts(self, text: str, *, model: str | None = None, format: str | None = None) -> JobPlan:
        """Text → speech. Emotion tags such as ``(happy)`` at the start pass through untouched."""
        spec = self.catalog.require(model, "audio_tts") if model else self.catalog.default("audio_tts")
        spoken = self._check_text(spec, text)
        options = self.catalog.validate_options(spec, {"format": format})
        return JobPlan(
            category="audio_tts", spec=spec, input={"text": spoken, **options}, estimate=self.catalog.quote(spec.id)
        )

    def plan_voice_clone(self, text: str, sample_url: str) -> JobPlan:
        """Speak ``text`` in the voice of the audio sample at ``sample_url``."""
        spec = self.catalog.default("audio_clone")
        spoken = self._check_text(spec, text)
        request = {"text": spoken, "audio": sample_url}
        return JobPlan(category="audio_clone", spec=spec, input=request, estimate=self.catalog.quote(spec.id))

    def _check_text(self, spec: ModelSpec, text: str) -> str:
        """The text to speak, cleaned and held to ``spec``'s limit (see :meth:`Catalog.check_prompt`)."""
        return self.catalog.check_prompt(spec, text)

    # ── submit ───────────────────────────────────────────────────────────────

    async def submit(self, requester: Requester, plan: JobPlan, member: JobMember, *, upload_limit: int | None) -> Job:
        """The paid request: policy, a voice clone's consent notice, confirmation, reservation, then store, status
        message and submit.

        The reservation is handed over to the stored job: the job's end settles or refunds it.
        Raises ``BotError`` when nothing was started (the reservation is refunded first).
        """
        job_id = new_job_id()
        key = f"job:{job_id}"
        # Every text the model reads (prompt, negative prompt, words to speak) meets the content rules.
        texts = tuple(v for k, v in plan.input.items() if isinstance(v, str) and k in TEXT_INPUTS)
        request = PaidRequest(
            requester,
            plan.category,
            plan.spec.id,
            plan.quote,
            key,
            plan.what,
            texts=texts,
            consent=self._consent_step(requester, plan, member),
        )

        async def work(bill: Bill) -> Job:
            bill.hand_over()
            return await self._submit(requester, plan, job_id, key, member, upload_limit)

        return await self.paid.run(request, member, work)

    def _consent_step(
        self, requester: Requester, plan: JobPlan, member: JobMember
    ) -> Callable[[], Awaitable[bool]] | None:
        """The paid flow's consent step of a voice clone on a server (the notice, when the member has not accepted)."""
        consent = self.voice_clone_consent
        if plan.category != "audio_clone" or consent is None or not requester.guild_id:
            return None

        async def step() -> bool:
            return await consent.obtain(requester.guild_id, requester.user_id, member)

        return step

    async def _submit(
        self, requester: Requester, plan: JobPlan, job_id: str, key: str, member: JobMember, upload_limit: int | None
    ) -> Job:
        token = new_webhook_token() if self.public_url else None
        now = self.clock()
        given = plan.input.get("prompt") or plan.input.get("text")
        if given:
            self.prompt_log.debug(log, "job prompt", str(given), job=job_id, model=plan.spec.id)
        try:
            job = await self.store.create(
                NewJob(
                    id=job_id,
                    guild_id=requester.guild_id or None,
                    channel_id=requester.channel_id,
                    user_id=requester.user_id,
                    category=plan.category,
                    model=plan.spec.id,
                    poll_type=POLL_KIND.get(plan.category, "video"),
                    request={"model": plan.spec.id, "input": plan.input},
                    reservation_key=key,
                    estimate=plan.estimate,
                    upload_limit=upload_limit,
                ),
                webhook_token=token,
                deadline_at=int(now + self.timing.deadline),
                recheck_at=now + self.timing.adoptable_for,
            )
        except BaseException:
            await self.paid.refund(key, "could not store the job")
            raise
        await self.learn_typical_duration(job.model)
        try:
            message_id = await member.show_status(job)
            if message_id is not None:
                await self.store.set_status_message(job.id, message_id)
        except BaseException:
            await self._fail(job, "could not post the status message", announce=False)
            raise
        webhook_url = f"{self.public_url}/hypereal/webhook/{token}" if token else None
        self._submitting.add(job.id)
        try:
            hypereal_id, poll_url, credits, output = await self._send(plan, webhook_url)
        except HyperealInsufficientCredits as exc:
            await self._fail(job, "the operator's Hypereal account is out of credits", announce=False)
            raise self.paid.operator_out_of_credits(exc, requester.guild_id) from exc
        except (TimeoutError, ProviderTimeout, OSError):
            # The request may have reached Hypereal: never resend it. Only its webhook can still adopt it.
            log.warning("job submit unconfirmed job=%s model=%s", job.id, job.model)
            if not self.public_url:
                await self._refund_unconfirmed(job, announce=False)
                raise JobUnconfirmed(
                    "Hypereal did not confirm the job in time, and without a webhook the bot cannot find out "
                    f"whether it started, so its {credits_text(plan.estimate)} were refunded. Try again in a minute."
                ) from None
            minutes = max(1, round(self.timing.adoptable_for / 60))
            raise JobUnconfirmed(
                "Hypereal did not confirm the job in time. If it started, the result will still be posted here; "
                f"if not, its {credits_text(plan.estimate)} come back within {minutes} minutes."
            ) from None
        except HyperealError:
            await self._fail(job, "Hypereal refused the request", announce=False)
            raise
        finally:
            self._submitting.discard(job.id)
        # Stored the moment the answer arrived: from here on a crash loses nothing.
        if output:
            # Some media models answer at once: nothing to wait for.
            await self.store.mark_completed(job.id, output, credits)
            self.wake()
        elif hypereal_id:
            await self.store.mark_pending(job.id, hypereal_id, poll_url, credits, self.clock() + self.timing.first_poll)
            self.wake()
        refreshed = await self.store.get(job.id)
        assert refreshed is not None
        return refreshed

    async def _send(
        self, plan: JobPlan, webhook_url: str | None
    ) -> tuple[str | None, str | None, int | None, str | None]:
        """POST the job once: (Hypereal's job id, poll URL, credits reported, output URL if finished at once)."""
        if plan.category == "video":
            submission = await self.hypereal.generate_video(plan.spec.id, plan.input, webhook_url=webhook_url)
            return submission.job_id, submission.poll_url, submission.credits_used, None
        media = await self.hypereal.generate_media(plan.spec.id, plan.input, webhook_url=webhook_url)
        return media.job_id, media.poll_url, media.credits_used, media.output_url

    # ── webhook ──────────────────────────────────────────────────────────────

    async def job_for_token(self, token: str) -> Job | None:
        """The job a webhook token was handed out for (looked up by the token's hash)."""
        return await self.store.by_token(token)

    async def accept_webhook(self, job: Job, payload: dict[str, Any], hypereal_job_id: str) -> tuple[int, str]:
        """A parsed webhook for ``job``: (HTTP status, short reason). Work happens in the background."""
        if job.hypereal_job_id is not None and job.hypereal_job_id != hypereal_job_id:
            log.warning("webhook jobId does not match job=%s", job.id)
            return 409, "jobId does not match this webhook"
        if not job.is_open:
            return 200, "already finished"
        if job.confirm_requested:
            # Its confirmation poll is already due and this webhook adds nothing to it: a flood of webhooks
            # for one job costs one read each, not two writes each (the first one's payload stays stored).
            return 200, "ok"
        await self.store.store_webhook(job.id, payload)
        now = self.clock()
        if job.hypereal_job_id is None:
            # Its submit answer was lost (timeout or crash): the webhook tells us which job it is.
            if not await self.store.adopt(job.id, hypereal_job_id, now):
                return 200, "already finished"
            log.info("adopted unconfirmed job=%s from its webhook", job.id)
        else:
            # Nothing signs webhooks, so a status poll decides — one at a time per job, spaced from the
            # last one, however many webhooks arrive (they share the hourly Hypereal budget).
            spacing = min(self.timing.confirm_spacing, self.timing.first_poll)
            last = job.last_polled_at
            at = now if last is None or now - last >= spacing else last + spacing
            await self.store.request_confirmation(job.id, at)
        self.wake()
        return 200, "ok"

    # ── following jobs ───────────────────────────────────────────────────────

    def attach(self, deliverer: Deliverer) -> None:
        """The Discord side that posts results (the jobs cog attaches itself when it loads)."""
        self._deliverer = deliverer

    async def recover(self) -> int:
        """Before the bot takes commands: refund reservations a crash left without their request.

        Chat and image requests run inside one command handler, so a reservation still held at
        start-up lost its request with the old process. Jobs keep theirs while unfinished.
        """
        in_use = {job.reservation_key for job in await self.store.unfinished() if job.reservation_key}
        live = await self._live_owners()
        orphans = [key for key in await self.paid.ledger.held_keys(except_owners=live) if key not in in_use]
        for key in orphans:
            job = await self.store.by_reservation(key)
            if job is not None and job.state in ("delivered", "cancelled") and job.hypereal_job_id:
                await self._settle(job)  # Hypereal ran it and charged: the crash came between two of our writes
            else:
                await self.paid.refund(key, "the bot restarted before the request finished")
        if orphans:
            log.warning("refunded %s reservation(s) left open by a crash", len(orphans))
        return len(orphans)

    def start(self) -> None:
        """Resume every unfinished job and start the poller (idempotent)."""
        if self._runner is None or self._runner.done():
            self._stopping = False
            self._runner = asyncio.create_task(self._run(), name="job-poller")

    async def stop(self) -> None:
        """Stop polling and wait for work in progress (it is resumed at the next start)."""
        if self._runner is not None:
            self._stopping = True
            self._wake.set()
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
            self._runner = None
        tasks = list(self._tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=3.0)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def wake(self) -> None:
        """Something became due sooner than the poller planned."""
        self._wake.set()

    async def _live_owners(self) -> set[str]:
        return await self.processes.live_owners() if self.processes is not None else set()

    async def _run(self) -> None:
        await self._resume()
        swept_at = self.clock()
        while not self._stopping:
            self._wake.clear()
            for job in await self.store.due(self.clock(), live_owners=await self._live_owners()):
                self._spawn(job.id)
            if self.store.db.shared and self.clock() - swept_at >= RECOVERY_SWEEP_SECONDS:
                # A neighbour that died left reservations behind: refund them once its heartbeat is stale.
                swept_at = self.clock()
                try:
                    await self.recover()
                except Exception:  # the next sweep tries again; polling goes on meanwhile
                    log.exception("recovery sweep failed")
            next_at = await self.store.next_due_at()
            wait = 1.0 if next_at is None else min(max(next_at - self.clock(), 0.05), 1.0)
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that lands as its
            # timeout fires, and the loop would then run on and hang stop() (seen at shutdown).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    async def _resume(self) -> None:
        """After a start: every open job is polled now, every finished one delivered now."""
        now = self.clock()
        count = 0
        for job in await self.store.unfinished():
            count += 1
            if job.state == "submitting" and self.public_url:
                continue  # its webhook may still come; it is refunded when its wait is over
            # A submit left by the previous process cannot be in flight any more; without webhooks
            # nothing can ever name it, so it is refunded now rather than at the deadline.
            await self.store.due_now(job.id, now)
        if count:
            log.info("resuming %s unfinished job(s)", count)

    def _spawn(self, job_id: str) -> None:
        if job_id in self._inflight:
            return
        self._inflight.add(job_id)
        task = asyncio.create_task(self._advance(job_id), name=f"job-{job_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _advance(self, job_id: str) -> None:
        try:
            async with self._limit:
                job = await self.store.get(job_id)
                if job is None:
                    return
                if job.state == "submitting":
                    await self._check_unconfirmed(job)
                elif job.state == "pending":
                    await self._poll(job)
                elif job.state == "completed":
                    await self._deliver(job)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("job step failed job=%s", job_id)
            self.metrics.job_step_failures.inc()
            with contextlib.suppress(Exception):
                await self._step_failed(job_id)
        finally:
            self._inflight.discard(job_id)

    async def _step_failed(self, job_id: str) -> None:
        """Count a failed step; retry with backoff, and after ``MAX_STEP_FAILURES`` fail and refund the job."""
        job = await self.store.get(job_id)
        if job is None:
            return
        failures = await self.store.count_step_failure(job_id, self.clock() + self._backoff(job.step_failures))
        if failures < MAX_STEP_FAILURES:
            return
        self.metrics.jobs_given_up.inc()
        reason = "the bot could not process Hypereal's answer for it"
        log.warning("giving up job=%s after %s failed steps", job_id, failures)
        if job.state == "completed":
            await self._fail_finished(job, reason, "the bot could not process Hypereal's answer")
        else:
            await self._fail(job, reason, announce=True)

    async def _check_unconfirmed(self, job: Job) -> None:
        """A ``submitting`` job: still in flight here, waiting for its webhook, or given up and refunded."""
        if job.id in self._submitting:
            return  # this process is still waiting for Hypereal's answer
        if self.public_url and self.clock() < job.created_at + self.timing.adoptable_for:
            return  # its webhook may still name it
        await self._refund_unconfirmed(job, announce=True)

    async def _refund_unconfirmed(self, job: Job, *, announce: bool) -> None:
        """Hypereal never confirmed this submit and cannot be asked about it: refund, count, tell the requester."""
        if await self._fail(job, UNCONFIRMED_REASON, announce=announce):
            self.metrics.jobs_unconfirmed_refunded.inc()
            log.warning("refunded unconfirmed job=%s model=%s", job.id, job.model)

    def _backoff(self, polls: int) -> float:
        base = min(self.timing.first_poll * 2 ** max(polls, 0), self.timing.max_poll)
        return base * random.uniform(0.8, 1.2)

    async def _poll(self, job: Job) -> None:
        if self.clock() >= job.deadline_at:
            minutes = max(1, round((job.deadline_at - job.created_at) / 60))
            await self._fail(job, f"it did not finish within the {minutes}-minute deadline", announce=True)
            return
        assert job.hypereal_job_id is not None
        try:
            status = await self.hypereal.job_status(
                job.hypereal_job_id, model=job.model, type=job.poll_type, poll_url=job.poll_url
            )
        except NotFound:
            await self._fail(job, "Hypereal no longer knows this job", announce=True)
            return
        except HyperealError as exc:
            log.info("job poll failed job=%s: %s", job.id, exc)
            await self._poll_again(job)
            return
        if status.state == "pending" or (status.state == "failed" and self._failure_may_be_early(job, status)):
            await self._poll_again(job)
            return
        if status.state == "failed" and job.confirm_requested:
            # A webhook's confirmation poll never fails a job: the poller's own polls decide failures.
            await self._poll_again(job)
            return
        if status.state == "failed":
            await self._fail(job, status.error or "Hypereal reported a failure", announce=True)
            return
        if not status.output_url:
            reason = status.output_url_problem or "Hypereal finished without an output"
            await self._fail(job, reason, announce=True)
            return
        credits = status.credits_used if status.credits_used is not None else job.credits_used
        if await self.store.mark_completed(job.id, status.output_url, credits):
            finished = await self.store.get(job.id)
            assert finished is not None
            await self._deliver(finished)

    async def _poll_again(self, job: Job) -> None:
        """Schedule the next poll with backoff (a webhook's confirmation poll does not advance the backoff)."""
        scheduled = not job.confirm_requested
        await self.store.schedule_poll(
            job.id, self.clock() + self._backoff(job.poll_count), polled=True, scheduled=scheduled
        )

    def _failure_may_be_early(self, job: Job, status: JobStatus) -> bool:
        """Hypereal's quirk (``bot.hypereal.quirks``): a fresh job answers "failed" while it still runs."""
        return failure_may_be_early(status, polls=job.poll_count, age=self.clock() - job.created_at)

    async def _fail(self, job: Job, reason: str, *, announce: bool) -> bool:
        """Fail an open job, refund it, and (when asked) tell the requester. Only the winner acts (returns True).

        The job fails only from the state ``job`` was read in: a submit adopted by its webhook in the
        meantime is pending now, and is polled and delivered instead of being refunded as unconfirmed.
        """
        if not await self.store.mark_failed(job.id, reason, from_states=(job.state,)):
            return False
        if job.reservation_key:
            await self.paid.refund(job.reservation_key, f"job failed: {reason}")
        log.info("job failed job=%s model=%s reason=%s", job.id, job.model, reason)
        if announce and self._deliverer is not None:
            charge = await self._refund_charge(job)
            try:
                await self._deliverer.announce_failure(job, reason, charge)
            except Exception:
                log.exception("could not announce a failed job=%s", job.id)
        return True

    async def _refund_charge(self, job: Job) -> Charge:
        return await self.paid.refunded_charge(job.guild_id, job.model)

    async def _settle(self, job: Job) -> Charge:
        # An invalid report (never stored by today's client, but rows may predate it) charges the estimate.
        reported = job.credits_used
        actual = reported if reported is not None and reported >= 0 else job.estimate
        if job.reservation_key is None or job.guild_id is None:
            return Charge(model=job.model, credits=actual, balance_left=0)
        return await self.paid.settle(job.guild_id, job.reservation_key, job.model, actual)

    async def _deliver(self, job: Job) -> None:
        if self._deliverer is None:
            await self.store.delivery_failed(job.id, self.clock() + 1.0)
            return
        file: DownloadedFile | None = None
        problem: str | None = None
        assert job.output_url is not None
        try:
            file = await self.downloader.download(job.output_url, filename=f"{job.category}-{job.id}")
        except DownloadTooLarge as exc:
            problem = f"it is too large for the bot to relay ({exc})"  # posted as a link, and charged
        except DownloadRefused as exc:
            await self._refuse_output(job, exc)
            return
        except DownloadFailed as exc:
            attempts = await self.store.delivery_failed(job.id, self.clock() + self._backoff(job.delivery_attempts))
            if attempts < MAX_DELIVERY_ATTEMPTS:
                return
            problem = f"the result could not be downloaded ({exc})"
        try:
            charge = await self._settle(job)  # idempotent: a delivery retried after a crash charges once
            receipt = await self._deliverer.deliver(job, file, charge, problem)
        except DeliveryRetry as exc:
            attempts = await self.store.delivery_failed(job.id, self.clock() + self._backoff(job.delivery_attempts))
            log.info("delivery will be retried job=%s attempt=%s: %s", job.id, attempts, exc)
            if attempts < MAX_DELIVERY_ATTEMPTS:
                return
            receipt = Receipt(None, None, "Discord kept failing; the result is listed in /jobs")
        finally:
            if file is not None:
                file.remove()
        await self.store.mark_delivered(job.id, receipt.message_id, receipt.channel_id, receipt.note or problem)
        log.info("job delivered job=%s message=%s", job.id, receipt.message_id)

    async def _refuse_output(self, job: Job, refusal: DownloadRefused) -> None:
        """An output the bot must not fetch (not https, off the allow-list, a private address): fail and refund."""
        log.warning("refused to download the output of job=%s: %s", job.id, refusal)
        await self._fail_finished(
            job, f"its output link was refused ({refusal.user_message})", "output refused by the download rules"
        )

    async def _fail_finished(self, job: Job, reason: str, ledger_note: str) -> None:
        """A completed job that cannot be delivered: fail it, refund it, tell the requester (only the winner acts)."""
        if not await self.store.fail_completed(job.id, reason):
            return
        if job.reservation_key:
            await self.paid.refund(job.reservation_key, ledger_note)
        if self._deliverer is not None:
            try:
                await self._deliverer.announce_failure(job, reason, await self._refund_charge(job))
            except Exception:
                log.exception("could not announce a failed job=%s", job.id)

    # ── the requester's view ─────────────────────────────────────────────────

    async def learn_typical_duration(self, model: str) -> None:
        """Refresh how long ``model``'s jobs usually take (read from the last finished ones) for status messages."""
        took = await self.store.typical_duration(model)
        if took is None:
            self._typical.pop(model, None)
        else:
            self._typical[model] = took

    def typical_label(self, job: Job) -> str | None:
        """ "usually ~3 min" for a model whose recent jobs finished in a median of about 3 minutes; None if unknown."""
        took = self._typical.get(job.model)
        if took is None:
            return None
        if took < 90:
            return f"usually ~{max(5, round(took / 5) * 5)} s"
        return f"usually ~{round(took / 60)} min"

    def price_label(self, job: Job) -> str:
        """What a job costs, as its status shows it: the charge once known, else the quote (``~`` if estimated)."""
        if job.state == "failed" or (job.state == "cancelled" and job.hypereal_job_id is None):
            return "refunded"
        if job.credits_used is not None and job.credits_used >= 0:
            return credits_text(job.credits_used)
        spec = self.catalog.get(job.model)
        return Quote(job.estimate, exact=spec is not None and not spec.price.estimated).label

    async def jobs_of(self, guild_id: int | None, user_id: int, limit: int = 10) -> list[Job]:
        """Open jobs first, then the most recent ones."""
        return await self.store.for_user(guild_id, user_id, limit)

    async def cancel(self, job_id: str, user_id: int) -> str:
        """Stop tracking an open job; returns what happened to the credits, for the user."""
        for _attempt in range(3):
            job = await self.store.get(job_id)
            if job is None:
                raise JobNotFound("That job no longer exists.")
            if job.user_id != user_id:
                raise InvalidInput("Only the member who started a job can cancel it.")
            if not job.is_open:
                raise InvalidInput(f"This job is already {job.state}: there is nothing to cancel.")
            # Cancelled only from the state just read: a submit its webhook adopted meantime was charged by
            # Hypereal, so it must not be refunded as unconfirmed — read it again and cancel it as pending.
            if await self.store.mark_cancelled(job.id, from_state=job.state):
                break
        else:
            raise InvalidInput("This job changed while you cancelled it: try again in a moment.")
        if job.state == "submitting" or job.hypereal_job_id is None:
            if job.reservation_key:
                await self.paid.refund(job.reservation_key, "cancelled before Hypereal confirmed it")
            return f"Cancelled. Hypereal never confirmed this job, so its {credits_text(job.estimate)} were refunded."
        # Hypereal has no cancel: the job keeps running there and was charged at submission.
        charge = await self._settle(job)
        return (
            "Cancelled: the bot stopped tracking this job and will not post its result. Hypereal cannot stop a "
            f"job once it started, and it charged {credits_text(charge.credits)} for it, which stay spent "
            f"({charge.balance_left} left)."
        )


UNCONFIRMED_REASON = (
    "Hypereal never confirmed that it started this job (its answer was lost, and Hypereal offers no way to look it up)"
)


class JobUnconfirmed(BotError):
    """The submit got no answer: the job may or may not run; it is resolved later (never resent)."""

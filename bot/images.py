"""Image generation and editing: validate, reserve, call Hypereal, fetch the bytes, remember the result.

Images are synchronous in Hypereal's API (though slow), but an answer can still be a ``jobId``:
then it is polled with ``type=image``. The output CDN blocks hotlinking, so results are always
downloaded (through the safe downloader) and uploaded to Discord as attachments. Every finished
generation is stored, so its result buttons keep working after a restart.

Several images (``count`` > 1) are posted as one grid picture (:mod:`bot.grid`); the originals stay
Hypereal's outputs, which the per-image buttons act on: U<k> posts image k full size
(:meth:`ImageService.original`, free: it is paid for), V<k> is a new paid request for a variation of
it (:meth:`ImageService.variation_plan`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bot.catalog import Catalog, ModelSpec
from bot.db import Database
from bot.download import DownloadedFile, SafeDownloader
from bot.errors import BotError, InvalidInput, ProviderError
from bot.grid import MAX_INPUT_BYTES as GRID_MAX_INPUT_BYTES
from bot.grid import GridError, compose_grid
from bot.hypereal import HyperealClient, ImageResult, MalformedResponse, ProviderTimeout, ServerError
from bot.hypereal.quirks import failure_may_be_early
from bot.inputs import check_int
from bot.logs import PromptLog
from bot.metrics import Metrics
from bot.paid import Bill, Charge, MemberPort, PaidRequest, PaidRequests, Quote, Requester

log = logging.getLogger(__name__)

MAX_COUNT = 4
GRID_MAX_BYTES = 8 * 1024 * 1024  # the grid alone is uploaded: under Discord's default 10 MiB, with room to spare
# Models that take reference images besides the prompt: a variation sends the chosen image as one.
REFERENCE_INPUT = "reference_images"
MAX_INPUT_IMAGE_BYTES = 20 * 1024 * 1024
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")
# OpenAI-style models take a size rather than an aspect ratio: the nearest size for each ratio.
SIZE_FOR_RATIO = {
    "gpt-4o-image": {"1:1": "1024x1024", "9:16": "1024x1792", "16:9": "1792x1024"},
    "gpt-image-2": {"1:1": "1024x1024", "3:2": "1536x1024", "2:3": "1024x1536"},
}


@dataclass(frozen=True)
class InputImage:
    """An image the user gave (a Discord attachment): checked before anything is reserved."""

    url: str
    content_type: str | None
    size: int
    filename: str = "image"


@dataclass(frozen=True)
class ImagePlan:
    """A validated request, priced, not yet paid for."""

    kind: str  # "image" or "image_edit"
    spec: ModelSpec
    prompt: str
    options: dict[str, Any]
    count: int
    estimate: int
    source_urls: tuple[str, ...] = ()  # edits: the images to edit; generations: reference images
    variation_of: int | None = None  # V<k>: the number of the image this varies (shown in the confirmation)

    @property
    def quote(self) -> Quote:
        """The price shown before the charge (an estimate when the catalog's price is one)."""
        return Quote(self.estimate, exact=not self.spec.price.estimated)

    @property
    def what(self) -> str:
        """What is being bought, for the confirmation."""
        if self.kind == "image_edit":
            return f"An edit with {self.spec.id}"
        if self.variation_of is not None:
            return f"A variation of image {self.variation_of} with {self.spec.id}"
        return f"{'An image' if self.count == 1 else f'{self.count} images'} with {self.spec.id}"


@dataclass
class ImageOutcome:
    """Downloaded results (removed once posted), the charge, and the stored generation."""

    files: list[DownloadedFile]
    charge: Charge
    generation_id: str
    failures: list[str] = field(default_factory=list)  # user messages of the parallel calls that failed
    delivered: bool = True  # False: nothing could be posted and the charge was given back
    grid: DownloadedFile | None = None  # several images: the one picture posted instead of ``files``


@dataclass(frozen=True)
class PostedResult:
    """Where a result landed: the message, and the URLs Discord gave its attachments."""

    message_id: int
    attachment_urls: tuple[str, ...] = ()


class ImageMember(MemberPort, Protocol):
    """The member asking for images: the paid flow's port plus acknowledging and delivering the result."""

    async def acknowledge(self) -> None:
        """The credits are held: show "thinking…" (the refusals before this stay ephemeral)."""
        ...

    async def deliver(self, plan: ImagePlan, outcome: ImageOutcome) -> PostedResult | None:
        """Post the result wherever the member can see it; None when nothing could be posted."""
        ...


@dataclass(frozen=True)
class Generation:
    """A stored generation (what the result buttons act on)."""

    id: str
    guild_id: int | None
    channel_id: int
    user_id: int
    kind: str
    model: str
    prompt: str
    options: dict[str, Any]
    source_urls: list[str]
    output_urls: list[str]
    attachment_urls: list[str]
    message_id: int | None

    @property
    def image_url(self) -> str | None:
        """The best URL of the first result image to hand to another model (Discord's copy first)."""
        return self.image_url_at(0)

    @property
    def image_count(self) -> int:
        """How many images the generation made."""
        return len(self.output_urls)

    def image_url_at(self, index: int) -> str | None:
        """The best URL of image ``index`` (0-based): Discord's copy of it if it was posted, else Hypereal's.

        A grid's message carries the grid, not the originals, so it records no attachment URLs and
        its images are Hypereal's outputs.
        """
        if 0 <= index < len(self.attachment_urls):
            return self.attachment_urls[index]
        if 0 <= index < len(self.output_urls):
            return self.output_urls[index]
        return None


class ImageService:
    """Generate and edit images through the paid pipeline."""

    def __init__(
        self,
        *,
        hypereal: HyperealClient,
        catalog: Catalog,
        paid: PaidRequests,
        downloader: SafeDownloader,
        db: Database,
        clock: Callable[[], float],
        poll_interval: float = 2.0,
        poll_timeout: float = 600.0,
        metrics: Metrics | None = None,
        prompt_log: PromptLog | None = None,
    ) -> None:
        self.hypereal = hypereal
        self.catalog = catalog
        self.paid = paid
        self.downloader = downloader
        self.db = db
        self.clock = clock
        self.poll_interval = poll_interval
        self.poll_timeout = poll_timeout
        self.metrics = metrics or Metrics()
        self.prompt_log = prompt_log or PromptLog()

    # ── planning (validation before any reservation) ─────────────────────────

    def plan_generate(
        self,
        prompt: str,
        *,
        model: str | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        count: int = 1,
    ) -> ImagePlan:
        """Check the prompt, model and options; price the request."""
        spec = self.catalog.require(model, "image") if model else self.catalog.default("image")
        prompt = self.catalog.check_prompt(spec, prompt)
        count = check_int(count, 1, MAX_COUNT, name="Count")
        options = self._options(spec, aspect_ratio=aspect_ratio, resolution=resolution)
        estimate = self.catalog.quote(spec.id, resolution=resolution, count=count)
        return ImagePlan("image", spec, prompt, options, count, estimate)

    def plan_edit(
        self,
        prompt: str,
        images: Sequence[InputImage],
        *,
        model: str | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
    ) -> ImagePlan:
        """Check the prompt, the input images (type, size, how many the model takes) and options."""
        spec = self.catalog.require(model, "image_edit") if model else self.catalog.default("image_edit")
        prompt = self.catalog.check_prompt(spec, prompt)
        if not images:
            raise InvalidInput("Attach the image to edit.")
        for image in images:
            check_input_image(image)
        fewest, most = spec.images or (1, 10)
        if not fewest <= len(images) <= most:
            raise InvalidInput(f"`{spec.id}` takes {fewest} to {most} images; you gave {len(images)}.")
        options = self._options(spec, aspect_ratio=aspect_ratio, resolution=resolution)
        estimate = self.catalog.quote(spec.id, resolution=resolution)
        return ImagePlan("image_edit", spec, prompt, options, 1, estimate, tuple(i.url for i in images))

    def _options(self, spec: ModelSpec, *, aspect_ratio: str | None, resolution: str | None) -> dict[str, Any]:
        wanted: dict[str, Any] = {"resolution": resolution}
        sizes = SIZE_FOR_RATIO.get(spec.id)
        if aspect_ratio and sizes is not None:
            if aspect_ratio not in sizes:
                raise InvalidInput(f"`{spec.id}` supports aspect ratios {', '.join(sizes)}.")
            wanted["size"] = sizes[aspect_ratio]
        else:
            wanted["aspect_ratio"] = aspect_ratio
        return self.catalog.validate_options(spec, wanted)

    def aspect_ratios(self, model: str | None) -> list[str]:
        """The aspect ratios a model accepts (for autocomplete; empty = any or not applicable)."""
        spec = self.catalog.get(model) if model else self.catalog.default("image")
        if spec is None:
            return []
        if spec.id in SIZE_FOR_RATIO:
            return list(SIZE_FOR_RATIO[spec.id])
        return [str(v) for v in spec.allowed("aspect_ratio")]

    # ── running ──────────────────────────────────────────────────────────────

    async def generate(self, requester: Requester, plan: ImagePlan, key: str, member: ImageMember) -> ImageOutcome:
        """The whole paid request: policy, confirmation, reservation, Hypereal, delivery, then the charge.

        The charge is written only after the post: an undeliverable result is refunded, and a crash in
        between leaves a held reservation that start-up refunds — a paid result is delivered or
        refunded, never charged and dropped.
        """
        request = PaidRequest(requester, plan.kind, plan.spec.id, plan.quote, key, plan.what, texts=(plan.prompt,))

        async def work(bill: Bill) -> ImageOutcome:
            await member.acknowledge()
            return await self._generate(requester, plan, bill, member)

        return await self.paid.run(request, member, work)

    async def _generate(self, requester: Requester, plan: ImagePlan, bill: Bill, member: ImageMember) -> ImageOutcome:
        results = await asyncio.gather(*(self._one(plan) for _ in range(plan.count)), return_exceptions=True)
        done = [r for r in results if isinstance(r, tuple)]
        errors = [r for r in results if isinstance(r, BaseException)]
        files = [file for file, _url, _credits in done]
        outcome: ImageOutcome | None = None
        try:
            fatal = [e for e in errors if not isinstance(e, Exception)]  # cancellation: stop, refund
            if fatal or not done:
                raise (fatal or errors)[0]
            reported = [credits for _f, _u, credits in done]
            credits: int | None = sum(c for c in reported if c is not None)
            if any(c is None for c in reported):
                # Hypereal did not say: charge the estimate's share of the calls that succeeded.
                credits = plan.estimate // plan.count * len(done) if errors else None
            for error in errors:
                log.warning("one of %s parallel image calls failed: %s", plan.count, error)
            generation_id = await self._store(requester, plan, [url for _f, url, _c in done], credits)
            outcome = ImageOutcome(
                files=files,
                charge=await self.paid.preview_bill(requester, bill, credits),
                generation_id=generation_id,
                failures=[getattr(e, "user_message", "The request failed.") for e in errors],
                grid=await self._grid(files) if len(files) > 1 else None,
            )
            receipt = await self._deliver(member, plan, outcome)
        finally:
            for file in files:
                file.remove()
            if outcome is not None and outcome.grid is not None:
                outcome.grid.remove()
        if receipt is None:
            outcome.charge = await self.paid.refund_bill(bill, "the result could not be posted anywhere")
            self.metrics.results_undeliverable.labels(kind=plan.kind).inc()
            log.warning("image result undeliverable, refunded guild=%s key=%s", requester.guild_id, bill.key)
            outcome.delivered = False
            return outcome
        outcome.charge = await self.paid.settle_bill(requester, bill, credits)
        await self.attach_message(generation_id, receipt.message_id, receipt.attachment_urls)
        return outcome

    async def _grid(self, files: Sequence[DownloadedFile]) -> DownloadedFile | None:
        """The images as one grid PNG in a temporary file; None (post them one by one) when they cannot be."""
        if any(file.size > GRID_MAX_INPUT_BYTES for file in files):
            log.warning("images too large for a grid, posting them one by one")
            return None

        def compose() -> DownloadedFile:
            data = compose_grid([file.path.read_bytes() for file in files], max_bytes=GRID_MAX_BYTES)
            with tempfile.NamedTemporaryFile(
                prefix="hypereal-grid-", suffix=".png", dir=self.downloader.temp_dir, delete=False
            ) as handle:
                handle.write(data)
            return DownloadedFile(Path(handle.name), len(data), "image/png", "grid.png")

        try:
            return await asyncio.to_thread(compose)  # decoding and encoding PNGs: not on the event loop
        except (GridError, OSError) as exc:
            log.warning("could not compose an image grid, posting the images one by one: %s", exc)
            return None

    @staticmethod
    async def _deliver(member: ImageMember, plan: ImagePlan, outcome: ImageOutcome) -> PostedResult | None:
        try:
            return await member.deliver(plan, outcome)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Whether it reached Discord is unknown; refunding is the side to err on.
            log.exception("posting an image result failed")
            return None

    async def _one(self, plan: ImagePlan) -> tuple[DownloadedFile, str, int | None]:
        if plan.kind == "image_edit":
            result = await self.hypereal.edit_image(
                plan.prompt, model=plan.spec.id, images=list(plan.source_urls), **plan.options
            )
        else:
            references = {"reference_images": list(plan.source_urls)} if plan.source_urls else {}
            result = await self.hypereal.generate_image(plan.prompt, model=plan.spec.id, **plan.options, **references)
        url, credits = await self._finished(plan.spec.id, result)
        file = await self.downloader.download(url)
        if not file.content_type.startswith("image/"):
            file.remove()
            raise ServerError(200, f"Hypereal's image output was {file.content_type}, not an image")
        return file, url, credits

    async def _finished(self, model: str, result: ImageResult) -> tuple[str, int | None]:
        """The output URL and reported credits, polling when Hypereal answered with a job id."""
        if result.urls:
            return result.urls[0], result.credits_used
        assert result.job_id is not None
        polls = 0
        started = self.clock()
        async with asyncio.timeout(self.poll_timeout):
            while True:
                await asyncio.sleep(self.poll_interval)
                polls += 1
                status = await self.hypereal.job_status(
                    result.job_id, model=model, type="image", poll_url=result.poll_url
                )
                if status.state == "completed" and status.output_url:
                    credits = status.credits_used if status.credits_used is not None else result.credits_used
                    return status.output_url, credits
                if status.state == "completed":
                    problem = status.output_url_problem or "Hypereal finished the image without an output"
                    raise MalformedResponse(problem)
                if status.state == "failed" and not failure_may_be_early(
                    status, polls=polls - 1, age=self.clock() - started
                ):
                    reason = status.error or "no reason given"
                    raise ProviderError(
                        f"Hypereal could not make this image ({reason}). Nothing was charged; try again or "
                        "change the prompt."
                    )
        raise ProviderTimeout("the image job did not finish in time")  # pragma: no cover - timeout raises first

    async def _store(self, requester: Requester, plan: ImagePlan, output_urls: list[str], credits: int | None) -> str:
        generation_id = secrets.token_hex(8)
        self.prompt_log.debug(log, "image prompt", plan.prompt, generation=generation_id, model=plan.spec.id)
        await self.db.execute(
            "INSERT INTO generations (id, guild_id, channel_id, user_id, kind, model, prompt, options_json,"
            " source_urls, output_urls, credits, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                generation_id,
                requester.guild_id or None,
                requester.channel_id,
                requester.user_id,
                plan.kind,
                plan.spec.id,
                plan.prompt,
                json.dumps({**plan.options, "count": plan.count}),
                json.dumps(list(plan.source_urls)),
                json.dumps(output_urls),
                plan.estimate if credits is None else credits,
                int(self.clock()),
            ),
        )
        return generation_id

    async def attach_message(self, generation_id: str, message_id: int, attachment_urls: Sequence[str]) -> None:
        """Remember the Discord message showing a generation and its attachments' URLs."""
        await self.db.execute(
            "UPDATE generations SET message_id = ?, attachment_urls = ? WHERE id = ?",
            (message_id, json.dumps(list(attachment_urls)), generation_id),
        )

    async def generation(self, generation_id: str) -> Generation | None:
        """A stored generation, or None."""
        row = await self.db.fetch_one("SELECT * FROM generations WHERE id = ?", (generation_id,))
        if row is None:
            return None
        options = json.loads(row["options_json"])
        return Generation(
            id=row["id"],
            guild_id=row["guild_id"],
            channel_id=row["channel_id"],
            user_id=row["user_id"],
            kind=row["kind"],
            model=row["model"],
            prompt=row["prompt"],
            options=options,
            source_urls=json.loads(row["source_urls"]),
            output_urls=json.loads(row["output_urls"]),
            attachment_urls=json.loads(row["attachment_urls"]),
            message_id=row["message_id"],
        )

    def reroll_plan(self, generation: Generation) -> ImagePlan:
        """The same request again (same prompt, model and options)."""
        if not generation.prompt.strip():
            raise InvalidInput(
                "This image's prompt was deleted (by /forget-me or after the retention period), so it cannot be "
                "rerolled. Use /image with a new prompt."
            )
        options = {k: v for k, v in generation.options.items() if k != "count"}
        count = int(generation.options.get("count", 1))
        spec = self.catalog.require(generation.model, generation.kind)
        estimate = self.catalog.quote(spec.id, resolution=options.get("resolution"), count=count)
        return ImagePlan(
            generation.kind, spec, generation.prompt, options, count, estimate, tuple(generation.source_urls)
        )

    def variation_plan(self, generation: Generation, index: int) -> ImagePlan:
        """V<k>: one new image with the same prompt, model and options, seeded from image ``index`` (0-based).

        Only a model that takes reference images can be given the image itself; any other model gets
        the same request again (a variation by its randomness, as a reroll of one image).
        """
        source = self.original_url(generation, index)
        plan = self.reroll_plan(generation)
        references = (source,) if REFERENCE_INPUT in plan.spec.inputs else ()
        estimate = self.catalog.quote(plan.spec.id, resolution=plan.options.get("resolution"))
        return ImagePlan(
            plan.kind, plan.spec, plan.prompt, plan.options, 1, estimate, references, variation_of=index + 1
        )

    @staticmethod
    def original_url(generation: Generation, index: int) -> str:
        """Hypereal's output URL of image ``index`` (0-based), or ``InvalidInput`` when there is no such image."""
        ImageService.check_image_number(generation, index)
        return generation.output_urls[index]

    @staticmethod
    def check_image_number(generation: Generation, index: int) -> None:
        """``InvalidInput`` for an image ``index`` (0-based) the generation does not have (a forged custom_id)."""
        if not 0 <= index < generation.image_count:
            raise InvalidInput(f"This result has no image {index + 1}. Use the buttons of the images it shows.")

    async def original(self, generation: Generation, index: int, *, max_bytes: int | None = None) -> DownloadedFile:
        """U<k>: download image ``index`` (0-based) full size again (free: it was paid for with the grid).

        Raises the downloader's ``BotError``s (refused, too large for ``max_bytes``, failed) with a
        next step added; the caller removes the file once posted.
        """
        url = self.original_url(generation, index)
        try:
            file = await self.downloader.download(url, max_bytes=max_bytes)
        except BotError as exc:
            raise BotError(
                f"{exc.user_message} Image {index + 1} cannot be posted full size; V{index + 1} makes a new "
                "variation of it."
            ) from None
        if not file.content_type.startswith("image/"):
            file.remove()
            raise ProviderError(f"Hypereal no longer serves image {index + 1} as an image. Use V{index + 1} instead.")
        return file


def check_input_image(image: InputImage) -> None:
    """Refuse an input labelled as something other than an image, or too large (before anything is reserved).

    This checks what Discord says about the file; :class:`bot.attachments.AttachmentInspector` then
    reads its first bytes to check what it really is. A file without a label is left to that check.
    """
    content_type = (image.content_type or "").split(";")[0].strip().lower()
    if content_type and content_type not in IMAGE_TYPES:
        raise InvalidInput(
            f"`{image.filename[:60]}` is not an image (PNG, JPEG, WebP or GIF). Attach an image and try again."
        )
    if image.size > MAX_INPUT_IMAGE_BYTES:
        raise InvalidInput(
            f"`{image.filename[:60]}` is {image.size // (1024 * 1024)} MB; images can be up to "
            f"{MAX_INPUT_IMAGE_BYTES // (1024 * 1024)} MB."
        )

"""/video and /jobs, the Cancel button, and the Discord side of delivering async results.

The job service (``bot.jobs``) owns the lifecycle; this cog turns it into messages: the public
"⏳ Generating" status message, the result as a reply to it (attached when it fits the server's
upload limit, else a link), a DM when the channel is gone, and failures with what happened to the
credits. Results carry the job id as the message nonce, so a delivery repeated after a crash is
deduplicated by Discord.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.download import DownloadedFile
from bot.inputs import VIDEO_DURATION_RANGE
from bot.jobs import DeliveryRetry, Job, JobPlan, JobUnconfirmed, Receipt
from bot.paid import Charge
from bot.preview import PreviewFailed, render_glb_preview
from cogs._shared import (
    NO_MENTIONS,
    cleared_to_spend,
    input_image,
    requester_of,
    requester_only,
    require_guild,
    show_error,
)

if TYPE_CHECKING:
    from bot.bot import HyperealBot

log = logging.getLogger(__name__)

DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024  # Discord's limit for servers without boosts
SHORTEST, LONGEST = VIDEO_DURATION_RANGE  # what Discord's client offers; bot/ checks each model's own values
STATE_ICONS = {
    "submitting": "⏳",
    "pending": "⏳",
    "completed": "📦",
    "delivered": "✅",
    "failed": "❌",
    "cancelled": "⏹️",
}
EXTENSIONS = {"video": ".mp4", "audio_clone": ".mp3", "audio_tts": ".mp3", "model3d": ".glb"}
EXTENSION_OF_TYPE = {
    "video/mp4": ".mp4",
    "audio/mpeg": ".mp3",
    "audio/mp3": ".mp3",
    "audio/wav": ".wav",
    "audio/x-wav": ".wav",
    "audio/wave": ".wav",
    "model/gltf-binary": ".glb",
}
NOUNS = {"video": "video", "model3d": "3D model", "audio_tts": "speech", "audio_clone": "cloned voice"}
PREVIEW_NAME = "preview.png"


def _extension(job: Job, file: DownloadedFile) -> str:
    content_type = file.content_type.split(";")[0].strip().lower()
    return EXTENSION_OF_TYPE.get(content_type) or EXTENSIONS.get(job.category, "")


def status_text(job: Job, charge_line: str | None = None) -> str:
    """The status message of a job, for each state."""
    started = f"started <t:{job.created_at}:R>"
    if job.state in ("submitting", "pending"):
        return f"⏳ Generating · {job.model} · {job.estimate} credits · {started}"
    if job.state in ("completed", "delivered"):
        return f"✅ Done · {charge_line or job.model} · {started}"
    if job.state == "cancelled":
        return f"⏹️ Cancelled · {job.model} · {started}"
    return f"❌ Failed · {job.model} · {started}"


async def _edit_quietly(shown: list[discord.Message], text: str, *, keep_view: bool = False) -> None:
    """Edit the status message, if one was posted (a failure to edit is not worth a second error)."""
    if not shown:
        return
    with contextlib.suppress(discord.HTTPException):
        if keep_view:
            await shown[0].edit(content=text)
        else:
            await shown[0].edit(content=text, view=None)


def _reply_target(job: Job) -> discord.MessageReference | None:
    """Results and failure notices reply to the job's status message (if it still exists)."""
    if not job.status_message_id:
        return None
    return discord.MessageReference(
        message_id=job.status_message_id, channel_id=job.channel_id, fail_if_not_exists=False
    )


class CancelJobButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"job:cancel:(?P<job>[0-9a-f]{16})",
):
    """Cancel a pending job (persistent: works after a restart)."""

    def __init__(self, job_id: str, *, label: str = "Cancel") -> None:
        super().__init__(
            discord.ui.Button(label=label, style=discord.ButtonStyle.danger, custom_id=f"job:cancel:{job_id}")
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Button[Any], match: re.Match[str], /
    ) -> CancelJobButton:
        return cls(match["job"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        try:
            await interaction.client.get_cog("Jobs").on_cancel(interaction, self.job_id)
        except Exception as exc:
            await show_error(interaction, exc)


class Jobs(commands.Cog):
    """Video generation, the job list, and delivery of async results."""

    def __init__(self, bot: HyperealBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(CancelJobButton)
        self.bot.services.jobs.attach(self)
        self.bot.services.jobs.start()

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(CancelJobButton)
        await self.bot.services.jobs.stop()

    # ── /video ───────────────────────────────────────────────────────────────

    @app_commands.command(name="video")
    @app_commands.guild_only()
    @app_commands.describe(
        prompt="What should happen in the video",
        image="Start from this image (image-to-video)",
        model="Video model (default: text-to-video, or image-to-video with an image)",
        duration="Seconds (the model's allowed values)",
        aspect_ratio="Shape, e.g. 16:9",
        resolution="e.g. 720p",
    )
    async def video(
        self,
        interaction: discord.Interaction[HyperealBot],
        prompt: str,
        image: discord.Attachment | None = None,
        model: str | None = None,
        duration: app_commands.Range[int, SHORTEST, LONGEST] | None = None,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
    ) -> None:
        """Generate a video from a prompt, or animate an image; the result is posted here when ready."""
        require_guild(interaction)
        services = self.bot.services
        source = input_image(image) if image is not None else None
        plan = services.jobs.plan_video(
            prompt,
            image_url=source.url if source else None,
            model=model,
            duration=duration,
            aspect_ratio=aspect_ratio,
            resolution=resolution,
        )
        if source is not None:
            await services.attachments.image(source)  # contents and Discord URL, before reserving
        await self.start(interaction, plan)

    @video.autocomplete("model")
    async def _video_models(self, interaction: discord.Interaction[HyperealBot], current: str) -> list[Any]:
        catalog = self.bot.services.catalog
        supported = {"prompt", "image"}
        return [
            app_commands.Choice(name=c.label, value=c.value)
            for c in catalog.search(current, "video", where=lambda spec: set(spec.requires) <= supported)
        ]

    @video.autocomplete("duration")
    async def _durations(self, interaction: discord.Interaction[HyperealBot], current: str) -> list[Any]:
        return [app_commands.Choice(name=f"{v} s", value=int(v)) for v in self._allowed(interaction, "duration")]

    @video.autocomplete("aspect_ratio")
    async def _ratios(self, interaction: discord.Interaction[HyperealBot], current: str) -> list[Any]:
        return [app_commands.Choice(name=str(v), value=str(v)) for v in self._allowed(interaction, "aspect_ratio")]

    @video.autocomplete("resolution")
    async def _resolutions(self, interaction: discord.Interaction[HyperealBot], current: str) -> list[Any]:
        return [app_commands.Choice(name=str(v), value=str(v)) for v in self._allowed(interaction, "resolution")]

    def _allowed(self, interaction: discord.Interaction[HyperealBot], option: str) -> list[int | str]:
        """The chosen model's allowed values of ``option`` (the default text-to-video model's when none is chosen)."""
        catalog = self.bot.services.catalog
        model = getattr(interaction.namespace, "model", None)
        spec = catalog.get(model) if model else catalog.default("video_t2v")
        return list(spec.allowed(option))[:25] if spec is not None else []

    # ── starting a job (also used by the image buttons) ──────────────────────

    async def start(self, interaction: discord.Interaction[HyperealBot], plan: JobPlan) -> None:
        """Check the channel, confirm when expensive, then submit and show the status message."""
        services = self.bot.services
        requester = requester_of(interaction)
        answered = await cleared_to_spend(
            interaction, requester, plan.category, f"A {plan.noun} with {plan.spec.id}", plan.estimate
        )
        if answered is None:
            return
        interaction = answered
        guild = interaction.guild
        upload_limit = guild.filesize_limit if guild is not None else DEFAULT_UPLOAD_LIMIT

        shown: list[discord.Message] = []

        async def show_status(job: Job) -> int | None:
            view = discord.ui.View(timeout=None)
            view.add_item(CancelJobButton(job.id))
            text = status_text(job)
            if not interaction.response.is_done():
                await interaction.response.send_message(text, view=view, allowed_mentions=NO_MENTIONS)
                message = await interaction.original_response()
            else:
                message = await interaction.followup.send(text, view=view, wait=True, allowed_mentions=NO_MENTIONS)
            shown.append(message)
            return message.id

        try:
            job = await services.jobs.submit(requester, plan, upload_limit=upload_limit, on_reserved=show_status)
        except JobUnconfirmed as exc:
            # The job may still run: the Cancel button stays, the text says what happens next.
            await _edit_quietly(shown, f"⚠️ {exc.user_message}", keep_view=True)
            return
        except Exception:
            # Nothing started and the credits are back: the status message says so before the error shows.
            await _edit_quietly(shown, f"❌ Not started · {plan.spec.id} · nothing charged")
            raise
        log.info("job submitted job=%s model=%s state=%s", job.id, job.model, job.state)

    async def on_cancel(self, interaction: discord.Interaction[HyperealBot], job_id: str) -> None:
        """The Cancel button: stop tracking the job and say what happens to its credits."""
        jobs = self.bot.services.jobs
        text = await jobs.cancel(job_id, interaction.user.id)
        await interaction.response.send_message(text, ephemeral=True)
        job = await jobs.store.get(job_id)
        if job is not None:
            await self._edit_status(job, status_text(job))

    # ── /jobs ────────────────────────────────────────────────────────────────

    @app_commands.command(name="jobs")
    async def jobs(self, interaction: discord.Interaction[HyperealBot]) -> None:
        """Your pending and recent video, audio and 3D jobs, with Cancel for pending ones."""
        services = self.bot.services
        jobs = await services.jobs.jobs_of(interaction.guild_id, interaction.user.id)
        if not jobs:
            await interaction.response.send_message(
                "You have no video, audio or 3D jobs here yet. Start one with /video.", ephemeral=True
            )
            return
        lines = []
        view = discord.ui.View(timeout=None)
        for job in jobs:
            lines.append(self._job_line(job))
            if job.is_open and len(view.children) < 5:
                view.add_item(CancelJobButton(job.id, label=f"Cancel {job.model}"[:80]))
        embed = discord.Embed(title="Your jobs", description="\n".join(lines)[:4000], colour=discord.Colour.blurple())
        embed.set_footer(
            text="Cancel stops tracking a job. Hypereal cannot stop a job it started, so its credits stay spent."
        )
        await interaction.response.send_message(embed=embed, view=view if view.children else discord.utils.MISSING,
                                                ephemeral=True)  # fmt: skip

    @staticmethod
    def _job_line(job: Job) -> str:
        icon = STATE_ICONS.get(job.state, "•")
        age = f"<t:{job.created_at}:R>"
        where = ""
        if job.result_message_id and job.result_channel_id:
            guild = job.guild_id or "@me"
            where = f" · [result](https://discord.com/channels/{guild}/{job.result_channel_id}/{job.result_message_id})"
        elif job.state == "delivered" and job.output_url:
            where = f" · [download]({job.output_url})"
        note = f" · {job.error}" if job.error and job.state != "delivered" else ""
        prompt = f" — {job.prompt[:60]}" if job.prompt else ""
        return f"{icon} **{job.state}** · {job.model} · {job.credits_label} · {age}{where}{note}{prompt}"

    # ── delivery (the job service calls these) ───────────────────────────────

    async def deliver(self, job: Job, file: DownloadedFile | None, charge: Charge, problem: str | None) -> Receipt:
        """Reply to the status message with the result; DM the requester when the channel is gone."""
        noun = NOUNS.get(job.category, "result")
        content = f"<@{job.user_id}> your {noun} is ready · {charge.cost_line()}"
        if job.prompt:
            content += f"\n> {job.prompt[:300]}"
        limit = job.upload_limit or DEFAULT_UPLOAD_LIMIT
        attach = file is not None and file.size <= limit
        embed = None
        if problem:
            content += f"\n⚠️ The file could not be attached: {problem}. It is listed in /jobs."
        elif not attach:
            embed = discord.Embed(
                title=f"Download the {noun}",
                url=job.output_url,
                description=f"Too large to attach here ({(file.size if file else 0) // (1024 * 1024)} MB).",
            )
        mentions = requester_only(job.user_id)
        filename = f"{job.category}-{job.id}{_extension(job, file) if file else ''}"
        preview = await self._preview(job, file) if attach else None
        if preview is not None:
            embed = discord.Embed(title="Preview (the .glb opens in any 3D viewer)", colour=discord.Colour.blurple())
            embed.set_image(url=f"attachment://{PREVIEW_NAME}")

        def files() -> list[discord.File]:
            if not attach or file is None:
                return []
            attached = [discord.File(Path(file.path), filename=filename)]
            if preview is not None:
                attached.append(discord.File(io.BytesIO(preview), filename=PREVIEW_NAME))
            return attached

        channel = self.bot.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
        reference = _reply_target(job)
        send_args: dict[str, Any] = {"embed": embed} if embed else {}
        try:
            message = await channel.send(
                content, files=files(), reference=reference, nonce=job.id, allowed_mentions=mentions, **send_args
            )
        except (discord.NotFound, discord.Forbidden) as exc:
            log.info("result channel unavailable job=%s status=%s: sending by DM", job.id, exc.status)
            return await self._deliver_by_dm(job, content, files, send_args)
        except discord.HTTPException as exc:
            raise DeliveryRetry(f"Discord answered {exc.status}") from exc
        except OSError as exc:
            raise DeliveryRetry(type(exc).__name__) from exc
        await self._edit_status(job, status_text(job, charge.cost_line()))
        return Receipt(message.id, message.channel.id)

    @staticmethod
    async def _preview(job: Job, file: DownloadedFile | None) -> bytes | None:
        """A PNG of a 3D model (Discord cannot show GLB); None for other results or an unreadable model."""
        if job.category != "model3d" or file is None:
            return None
        try:
            return await asyncio.to_thread(render_glb_preview, file.path)
        except PreviewFailed as exc:
            log.info("no 3D preview for job=%s: %s", job.id, exc)
            return None

    async def _deliver_by_dm(self, job: Job, content: str, files: Any, send_args: dict[str, Any]) -> Receipt:
        try:
            dm = await self.bot.create_dm(discord.Object(job.user_id))  # type: ignore[arg-type]
            message = await dm.send(
                content + "\n(The channel you asked in is gone or closed to the bot, so it comes here.)",
                files=files(),
                nonce=job.id,
                **send_args,
            )
        except discord.HTTPException as exc:
            log.warning("could not DM the result job=%s status=%s", job.id, exc.status)
            return Receipt(None, None, "could not post in the channel or by DM; the result is listed in /jobs")
        return Receipt(message.id, message.channel.id)

    async def announce_failure(self, job: Job, reason: str, charge: Charge | None) -> None:
        """Mark the status message failed and tell the requester, with what happened to the credits."""
        reason = self.bot.services.redactor.for_members(reason, 400)  # may carry Hypereal's own words
        left = f" · {charge.balance_left} left" if charge else ""
        await self._edit_status(job, f"❌ Failed · {job.model} · {reason} · credits refunded")
        channel = self.bot.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
        reference = _reply_target(job)
        text = (
            f"<@{job.user_id}> your {job.model} job failed: {reason}. "
            f"The {job.estimate} credits were refunded{left}. You can try again."
        )
        if job.prompt:
            text += f"\n> {job.prompt[:300]}"
        mentions = requester_only(job.user_id)
        try:
            await channel.send(text, reference=reference, nonce=f"f{job.id}", allowed_mentions=mentions)
        except discord.HTTPException as exc:
            log.info("could not announce failure job=%s status=%s", job.id, exc.status)

    async def _edit_status(self, job: Job, text: str) -> None:
        if not job.status_message_id:
            return
        message = self.bot.get_partial_messageable(job.channel_id).get_partial_message(job.status_message_id)
        try:
            await message.edit(content=text, view=None)
        except discord.HTTPException as exc:
            log.info("could not edit the status message job=%s status=%s", job.id, exc.status)


async def setup(bot: HyperealBot) -> None:
    """Extension entry point."""
    await bot.add_cog(Jobs(bot))

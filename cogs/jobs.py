"""/video and /jobs, with the Cancel button.

The job service (``bot.jobs``) owns the lifecycle, ``cogs._jobs_ui`` starts jobs and shows their
status, and ``cogs._ports`` delivers their results; this cog holds the two commands.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.inputs import VIDEO_DURATION_RANGE
from bot.jobs import Job, JobService
from cogs._jobs_ui import CancelJobButton, start_job
from cogs._shared import input_image, require_guild

if TYPE_CHECKING:
    from bot.bot import HyperealBot

log = logging.getLogger(__name__)

SHORTEST, LONGEST = VIDEO_DURATION_RANGE  # what Discord's client offers; bot/ checks each model's own values
STATE_ICONS = {
    "submitting": "⏳",
    "pending": "⏳",
    "completed": "📦",
    "delivered": "✅",
    "failed": "❌",
    "cancelled": "⏹️",
}


class Jobs(commands.Cog):
    """Video generation, the job list, and delivery of async results."""

    def __init__(self, bot: HyperealBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(CancelJobButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(CancelJobButton)

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
        await start_job(interaction, plan)

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
            lines.append(self._job_line(services.jobs, job))
            if job.is_open and len(view.children) < 5:
                view.add_item(CancelJobButton(job.id, label=f"Cancel {job.model}"[:80]))
        embed = discord.Embed(title="Your jobs", description="\n".join(lines)[:4000], colour=discord.Colour.blurple())
        embed.set_footer(
            text="Cancel stops tracking a job. Hypereal cannot stop a job it started, so its credits stay spent."
        )
        await interaction.response.send_message(embed=embed, view=view if view.children else discord.utils.MISSING,
                                                ephemeral=True)  # fmt: skip

    @staticmethod
    def _job_line(jobs: JobService, job: Job) -> str:
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
        return f"{icon} **{job.state}** · {job.model} · {jobs.price_label(job)} · {age}{where}{note}{prompt}"


async def setup(bot: HyperealBot) -> None:
    """Extension entry point."""
    await bot.add_cog(Jobs(bot))

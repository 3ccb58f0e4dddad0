"""Starting an async job from any command or button, its status message, and its persistent Cancel button.

Used by /video, the audio and 3D commands and the image buttons Animate / To 3D alike, so no cog
has to look another up. The job's lifecycle is ``bot.jobs.JobService``'s; this module is the
Discord side of its start: the public "⏳ Generating" status message the result will reply to.
"""

from __future__ import annotations

import contextlib
import logging
import re
from typing import TYPE_CHECKING, Any

import discord

from bot.jobs import Job, JobPlan, JobService, JobUnconfirmed
from cogs._shared import NO_MENTIONS, InteractionMember, queue_text, requester_of, show_error, working_text

if TYPE_CHECKING:
    from bot.bot import HyperealBot
    from bot.paid import Quote

log = logging.getLogger(__name__)

DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024  # Discord's limit for servers without boosts


def status_text(jobs: JobService, job: Job, charge_line: str | None = None) -> str:
    """The status message of a job, for each state."""
    started = f"started <t:{job.created_at}:R>"
    if job.state in ("submitting", "pending"):
        # The relative times render live in Discord: the line needs no edits to stay current.
        usually = jobs.typical_label(job)
        line = f"⏳ Generating · {job.model} · {jobs.price_label(job)} · {started}"
        return f"{line} · {usually}" if usually else line
    if job.state in ("completed", "delivered"):
        return f"✅ Done · {charge_line or job.model} · {started}"
    if job.state == "cancelled":
        return f"⏹️ Cancelled · {job.model} · {jobs.price_label(job)} · {started}"
    return f"❌ Failed · {job.model} · {started}"


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
            await cancel_job(interaction, self.job_id)
        except Exception as exc:
            await show_error(interaction, exc)


class JobStarter(InteractionMember):
    """The member starting a job: confirmation and queue notices, and the public status message."""

    def __init__(self, interaction: discord.Interaction[HyperealBot]) -> None:
        super().__init__(interaction)
        self.status: discord.Message | None = None
        self.was_queued = False

    async def show_status(self, job: Job) -> int | None:
        """Post "⏳ Generating · model · price · started …" with a Cancel button; results reply to it."""
        interaction = self.interaction
        view = discord.ui.View(timeout=None)
        view.add_item(CancelJobButton(job.id))
        text = status_text(interaction.client.services.jobs, job)
        if not interaction.response.is_done():
            await interaction.response.send_message(text, view=view, allowed_mentions=NO_MENTIONS)
            message = await interaction.original_response()
        else:
            message = await interaction.followup.send(text, view=view, wait=True, allowed_mentions=NO_MENTIONS)
        self.status = message
        return message.id

    async def queued(self, position: int, eta: float, quote: Quote) -> None:
        """The submit waits in the bot's hourly Hypereal queue: say so on the status message."""
        if self.status is None:
            return
        self.was_queued = True
        with contextlib.suppress(discord.HTTPException):
            await self.status.edit(content=queue_text(position, eta, quote))

    async def working(self, model: str, quote: Quote, since: int) -> None:
        """Out of the queue: the submit is on its way (the status message already says "Generating" otherwise)."""
        if self.status is None or not self.was_queued:
            return
        with contextlib.suppress(discord.HTTPException):
            await self.status.edit(content=working_text(model, quote, since))

    async def edit_status(self, text: str, *, keep_view: bool = False) -> None:
        """Rewrite the status message (a failure to edit is not worth a second error)."""
        if self.status is None:
            return
        with contextlib.suppress(discord.HTTPException):
            if keep_view:
                await self.status.edit(content=text)
            else:
                await self.status.edit(content=text, view=None)


async def start_job(interaction: discord.Interaction[HyperealBot], plan: JobPlan) -> None:
    """Channel policy, confirmation when expensive, reservation, status message and submit — through ``bot/``."""
    services = interaction.client.services
    guild = interaction.guild
    upload_limit = guild.filesize_limit if guild is not None else DEFAULT_UPLOAD_LIMIT
    starter = JobStarter(interaction)
    try:
        job = await services.jobs.submit(requester_of(interaction), plan, starter, upload_limit=upload_limit)
    except JobUnconfirmed as exc:
        # The job may still run: the Cancel button stays, the text says what happens next.
        await starter.edit_status(f"⚠️ {exc.user_message}", keep_view=True)
        return
    except Exception:
        # Nothing started and the credits are back: the status message says so before the error shows.
        await starter.edit_status(f"❌ Not started · {plan.spec.id} · nothing charged")
        raise
    if starter.status is not None and job.state in ("pending", "completed"):
        # The status line shows the charge Hypereal reported at submission when it differs from the quote.
        text = status_text(services.jobs, job)
        if starter.status.content != text:
            await starter.edit_status(text, keep_view=True)
    log.info("job submitted job=%s model=%s state=%s", job.id, job.model, job.state)


async def cancel_job(interaction: discord.Interaction[HyperealBot], job_id: str) -> None:
    """The Cancel button: stop tracking the job and say what happened to its credits."""
    jobs = interaction.client.services.jobs
    text = await jobs.cancel(job_id, interaction.user.id)
    await interaction.response.send_message(text, ephemeral=True)
    job = await jobs.store.get(job_id)
    if job is None or not job.status_message_id:
        return
    message = interaction.client.get_partial_messageable(job.channel_id).get_partial_message(job.status_message_id)
    with contextlib.suppress(discord.HTTPException):
        await message.edit(content=status_text(jobs, job), view=None)

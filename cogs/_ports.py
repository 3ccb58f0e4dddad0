"""The Discord side of the services' ports: delivering job results and posting budget alerts.

Built once by the composition root (``bot.app``) and handed to the services that need them
(``JobService.attach``, ``BudgetAlerts.attach``), so no cog is both a command handler and the
deliverer of results, and nothing looks a cog up by name. Results carry the job id as the message
nonce, so a delivery repeated after a crash is deduplicated by Discord.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import discord

from bot.download import DownloadedFile
from bot.jobs import DeliveryRetry, Job, Receipt
from bot.paid import Charge
from bot.preview import ModelPreview, PreviewFailed, preview_in_child
from bot.voice import VoiceEncodingFailed, voice_message
from bot.wording import credits_text, result_noun
from cogs._jobs_ui import DEFAULT_UPLOAD_LIMIT, status_text
from cogs._shared import NO_MENTIONS, requester_only
from cogs._voice import is_refusal, send_voice_message

if TYPE_CHECKING:
    from bot.bot import HyperealBot

log = logging.getLogger(__name__)

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
PREVIEW_NAME = "preview.png"
# Speech is posted as a voice message; where that is refused, as a file with a name a member can keep.
VOICE_CATEGORIES = {"audio_tts": "speech", "audio_clone": "cloned-voice"}
SPOKEN_CHARS = 300
DM_NOTE = "\n(The channel you asked in is gone or closed to the bot, so it comes here.)"


def _extension(job: Job, file: DownloadedFile) -> str:
    content_type = file.content_type.split(";")[0].strip().lower()
    return EXTENSION_OF_TYPE.get(content_type) or EXTENSIONS.get(job.category, "")


def one_line(text: str, limit: int = SPOKEN_CHARS) -> str:
    """``text`` on one line (newlines and runs of spaces collapsed), cut at ``limit`` with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _filename(job: Job, file: DownloadedFile) -> str:
    base = VOICE_CATEGORIES.get(job.category)
    if base is not None:
        return base + (_extension(job, file) or ".mp3")  # speech.mp3, cloned-voice.wav
    return f"{job.category}-{job.id}{_extension(job, file)}"


def _reply_target(job: Job) -> discord.MessageReference | None:
    """Results and failure notices reply to the job's status message (if it still exists)."""
    if not job.status_message_id:
        return None
    return discord.MessageReference(
        message_id=job.status_message_id, channel_id=job.channel_id, fail_if_not_exists=False
    )


class DiscordAlerts:
    """Posts budget alerts in the server's alert channel (``bot.credits.alerts.AlertPort``)."""

    def __init__(self, bot: HyperealBot) -> None:
        self.bot = bot

    async def post_alert(self, guild_id: int, channel_id: int, text: str) -> None:
        """Post ``text``; a missing channel or permission is logged, not raised."""
        channel = self.bot.get_partial_messageable(channel_id, guild_id=guild_id)
        try:
            await channel.send(text, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as exc:
            log.warning("could not post budget alert guild=%s status=%s", guild_id, exc.status)


class DiscordJobDelivery:
    """Posts job results and failures (``bot.jobs.Deliverer``), replying to the job's status message."""

    def __init__(self, bot: HyperealBot) -> None:
        self.bot = bot

    async def deliver(self, job: Job, file: DownloadedFile | None, charge: Charge, problem: str | None) -> Receipt:
        """Reply to the status message with the result; DM the requester when the channel is gone."""
        noun = result_noun(job.category)
        content = f"<@{job.user_id}> your {noun} is ready · {charge.cost_line()}"
        if job.prompt:
            content += f"\n> {one_line(job.prompt)}"
        limit = job.upload_limit or DEFAULT_UPLOAD_LIMIT
        attach = file is not None and file.size <= limit
        # A voice message has no text of its own: without a status message to caption it, the file goes.
        voice = job.category in VOICE_CATEGORIES and job.status_message_id is not None
        if attach and file is not None and not problem and voice:
            receipt = await self._deliver_voice(job, file, charge)
            if receipt is not None:
                return receipt
        embed = None
        if problem:
            content += f"\n⚠️ The file could not be attached: {problem}. It is listed in /jobs."
        elif not attach:
            embed = discord.Embed(
                title=f"Download the {noun}",
                url=job.output_url,
                description=f"Too large to attach here ({(file.size if file else 0) // (1024 * 1024)} MB).",
            )
        filename = _filename(job, file) if file else f"{job.category}-{job.id}"
        preview = await self._preview(job, file) if attach else None
        if preview is not None:
            embed = discord.Embed(
                title="Preview: front · three-quarter · top (the .glb opens in any 3D viewer)"
                if preview.png is not None
                else "The .glb opens in any 3D viewer (the model was too big to draw in time)",
                description=preview.figures.text(),
                colour=discord.Colour.blurple(),
            )
            if preview.png is not None:
                embed.set_image(url=f"attachment://{PREVIEW_NAME}")

        def files() -> list[discord.File]:
            if not attach or file is None:
                return []
            attached = [discord.File(Path(file.path), filename=filename)]
            if preview is not None and preview.png is not None:
                attached.append(discord.File(io.BytesIO(preview.png), filename=PREVIEW_NAME))
            return attached

        channel = self.bot.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
        send_args: dict[str, Any] = {"embed": embed} if embed else {}
        try:
            message = await channel.send(
                content, files=files(), reference=_reply_target(job), nonce=job.id,
                allowed_mentions=requester_only(job.user_id), **send_args,
            )  # fmt: skip
        except (discord.NotFound, discord.Forbidden) as exc:
            log.info("result channel unavailable job=%s status=%s: sending by DM", job.id, exc.status)
            return await self._deliver_by_dm(job, content, files, send_args)
        except discord.HTTPException as exc:
            raise DeliveryRetry(f"Discord answered {exc.status}") from exc
        except OSError as exc:
            raise DeliveryRetry(type(exc).__name__) from exc
        await self._edit_status(job, status_text(self.bot.services.jobs, job, charge.cost_line()))
        return Receipt(message.id, message.channel.id)

    async def _deliver_voice(self, job: Job, file: DownloadedFile, charge: Charge) -> Receipt | None:
        """Post speech as a voice message replying to the status message; None when the file must go instead.

        A voice message carries no text, so the status message becomes the caption: done, the
        charge, and the text spoken on one line.
        """
        try:
            clip = await voice_message(Path(file.path))
        except VoiceEncodingFailed as exc:
            log.info("no voice message for job=%s: %s", job.id, exc)
            return None
        try:
            message = await send_voice_message(
                self.bot.http, job.channel_id, clip, reply_to=job.status_message_id, nonce=job.id
            )
        except discord.HTTPException as exc:
            if not is_refusal(exc):
                raise DeliveryRetry(f"Discord answered {exc.status}") from exc
            log.info("voice message refused job=%s status=%s code=%s: posting the file", job.id, exc.status, exc.code)
            return None
        except OSError as exc:
            raise DeliveryRetry(type(exc).__name__) from exc
        caption = status_text(self.bot.services.jobs, job, charge.cost_line())
        if job.prompt:
            caption += f"\n> 🗣️ {one_line(job.prompt)}"
        await self._edit_status(job, caption)
        return Receipt(int(message["id"]), int(message["channel_id"]))

    @staticmethod
    async def _preview(job: Job, file: DownloadedFile | None) -> ModelPreview | None:
        """The picture and figures of a 3D model (Discord cannot show GLB); None for other results or a bad model."""
        if job.category != "model3d" or file is None:
            return None
        try:
            return await preview_in_child(Path(file.path))
        except PreviewFailed as exc:
            log.info("no 3D preview for job=%s: %s", job.id, exc)
            return None

    async def _deliver_by_dm(self, job: Job, content: str, files: Any, send_args: dict[str, Any]) -> Receipt:
        try:
            dm = await self.bot.create_dm(discord.Object(job.user_id))  # type: ignore[arg-type]
            message = await dm.send(content + DM_NOTE, files=files(), nonce=job.id, **send_args)
        except discord.HTTPException as exc:
            log.warning("could not DM the result job=%s status=%s", job.id, exc.status)
            return Receipt(None, None, "could not post in the channel or by DM; the result is listed in /jobs")
        return Receipt(message.id, message.channel.id)

    async def announce_failure(self, job: Job, reason: str, charge: Charge | None) -> None:
        """Mark the status message failed and tell the requester, with what happened to the credits."""
        reason = self.bot.services.redactor.for_members(reason, 400)  # may carry Hypereal's own words
        left = f" · {charge.balance_left} left" if charge else ""
        await self._edit_status(job, f"❌ Failed · {job.model} · {reason} · nothing charged")
        channel = self.bot.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
        text = (
            f"<@{job.user_id}> your {result_noun(job.category)} failed: {reason}. "
            f"Its {credits_text(job.estimate)} were refunded{left}. You can try again."
        )
        if job.prompt:
            text += f"\n> {one_line(job.prompt)}"
        try:
            await channel.send(
                text, reference=_reply_target(job), nonce=f"f{job.id}", allowed_mentions=requester_only(job.user_id)
            )
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

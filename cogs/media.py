"""Audio and 3D: /tts, /voice-clone, /transcribe (and the message menu Transcribe), /3d and /3d-multiview.

Speech, voice clones and 3D models go through the async job pipeline (status message, result as a
reply, exactly once — see ``cogs.jobs``), even when Hypereal answers at once. Transcription is a
quick synchronous request and answers with the text and an ``.srt`` file.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import InvalidInput
from bot.inputs import check_language
from bot.transcribe import AUDIO_TYPES, AudioInput, Transcript
from cogs._jobs_ui import start_job
from cogs._shared import InteractionMember, checked_image_urls, input_audio, requester_of, require_guild

if TYPE_CHECKING:
    from bot.bot import HyperealBot

TRANSCRIPT_INLINE_CHARS = 1800


class TranscriptPoster(InteractionMember):
    """Posts a transcript (text, plus ``.srt`` and, when long, the full text) where the member can see it."""

    async def deliver(self, transcript: Transcript) -> bool:
        text = transcript.text.strip() or "*(no speech found)*"
        long = len(text) > TRANSCRIPT_INLINE_CHARS
        shown = text[:TRANSCRIPT_INLINE_CHARS] + "… (full text attached)" if long else text

        def files() -> dict[str, Any]:
            attached = [discord.File(io.BytesIO(transcript.srt.encode()), filename="transcript.srt")]
            if long:
                attached.append(discord.File(io.BytesIO(text.encode()), filename="transcript.txt"))
            return {"files": attached}

        return await self.send(f"📝 {shown}\n-# {transcript.charge.cost_line()}", files) is not None


def message_audio(message: discord.Message) -> AudioInput:
    """The first audio or video attachment of ``message`` (a voice message is one); ``InvalidInput`` if none.

    Only Discord's label is looked at here; the contents are checked like /transcribe's before reserving.
    """
    for attachment in message.attachments:
        content_type = (attachment.content_type or "").split(";")[0].strip().lower()
        if content_type.startswith(AUDIO_TYPES):
            return input_audio(attachment)
    raise InvalidInput(
        "That message has no audio or video to transcribe. Use Transcribe on a voice message or a message "
        "with a recording attached, or run /transcribe with the file."
    )


class Media(commands.Cog):
    """Speech, voice cloning, transcription and 3D models."""

    def __init__(self, bot: HyperealBot) -> None:
        self.bot = bot
        self.transcribe_menu = app_commands.ContextMenu(name="Transcribe", callback=self.transcribe_message)
        self.transcribe_menu.guild_only = True

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.transcribe_menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.transcribe_menu.name, type=self.transcribe_menu.type)

    def _models(self, current: str, *categories: str, where: Any = None) -> list[app_commands.Choice[str]]:
        choices = self.bot.services.catalog.search(current, *categories, where=where)
        return [app_commands.Choice(name=c.label, value=c.value) for c in choices]

    # ── speech ───────────────────────────────────────────────────────────────

    @app_commands.command(name="tts")
    @app_commands.guild_only()
    @app_commands.describe(
        text="What to say; start with emotion tags like (happy) or (excited)(laughing)",
        model="Speech model",
        format="Audio file format",
    )
    @app_commands.choices(
        format=[app_commands.Choice(name="mp3", value="mp3"), app_commands.Choice(name="wav", value="wav")]
    )
    async def tts(
        self,
        interaction: discord.Interaction[HyperealBot],
        text: app_commands.Range[str, 1, 4000],
        model: str | None = None,
        format: str | None = None,
    ) -> None:
        """Turn text into speech (emotion tags like (happy) pass through)."""
        guild_id = require_guild(interaction)
        model, format = await self.bot.services.member_settings.tts_options(  # the member's /settings fill gaps
            guild_id, interaction.user.id, model=model, format=format
        )
        await start_job(interaction, self.bot.services.jobs.plan_tts(text, model=model, format=format))

    @tts.autocomplete("model")
    async def _tts_models(self, interaction: discord.Interaction[HyperealBot], current: str) -> list[Any]:
        return self._models(current, "audio_tts")

    @app_commands.command(name="voice-clone")
    @app_commands.guild_only()
    @app_commands.describe(text="What the cloned voice should say", sample="A clear recording of the voice to clone")
    async def voice_clone(
        self,
        interaction: discord.Interaction[HyperealBot],
        text: app_commands.Range[str, 1, 4000],
        sample: discord.Attachment,
    ) -> None:
        """Say a text in the voice of an audio sample."""
        require_guild(interaction)
        services = self.bot.services
        plan = services.jobs.plan_voice_clone(text, sample.url)
        await services.attachments.audio(input_audio(sample))  # contents and Discord URL, before reserving
        # A member's first voice clone on a server shows the consent notice first (bot.consent, in the paid flow).
        await start_job(interaction, plan)

    @app_commands.command(name="transcribe")
    @app_commands.guild_only()
    @app_commands.describe(audio="The recording to transcribe", language="Language code, e.g. en (default: detect)")
    async def transcribe(
        self,
        interaction: discord.Interaction[HyperealBot],
        audio: discord.Attachment,
        language: app_commands.Range[str, 2, 10] | None = None,
    ) -> None:
        """Turn speech into text, with an .srt subtitle file."""
        require_guild(interaction)
        await self._transcribe(interaction, input_audio(audio), check_language(language))

    async def transcribe_message(self, interaction: discord.Interaction[HyperealBot], message: discord.Message) -> None:
        """Message menu ▸ Apps ▸ Transcribe: the message's voice message or first audio/video attachment."""
        require_guild(interaction)
        await self._transcribe(interaction, message_audio(message), None)

    async def _transcribe(
        self, interaction: discord.Interaction[HyperealBot], audio: AudioInput, language: str | None
    ) -> None:
        """The one transcription path: contents checked before reserving, then ``bot.transcribe``'s paid flow."""
        services = self.bot.services
        clip = await services.attachments.audio(audio)
        member = TranscriptPoster(interaction)
        await services.transcription.transcribe(
            requester_of(interaction), clip, f"asr:{interaction.id}", member, language=language
        )

    # ── 3D ───────────────────────────────────────────────────────────────────

    @app_commands.command(name="3d")
    @app_commands.guild_only()
    @app_commands.describe(image="A picture of one object", model="3D model to use")
    async def model3d(
        self, interaction: discord.Interaction[HyperealBot], image: discord.Attachment, model: str | None = None
    ) -> None:
        """Make a 3D model (GLB, with a preview picture) from one image."""
        require_guild(interaction)
        (image_url,) = await checked_image_urls(interaction, image)
        await start_job(interaction, self.bot.services.jobs.plan_model3d(image_url, model))

    @model3d.autocomplete("model")
    async def _image_3d_models(self, interaction: discord.Interaction[HyperealBot], current: str) -> list[Any]:
        return self._models(current, "model3d", where=lambda spec: tuple(spec.requires) == ("image",))

    @app_commands.command(name="3d-multiview")
    @app_commands.guild_only()
    @app_commands.describe(
        front="The object from the front",
        back="From the back",
        left="From the left",
        right="From the right (some models need it)",
        model="Multi-view 3D model",
    )
    async def model3d_multiview(
        self,
        interaction: discord.Interaction[HyperealBot],
        front: discord.Attachment,
        back: discord.Attachment,
        left: discord.Attachment,
        right: discord.Attachment | None = None,
        model: str | None = None,
    ) -> None:
        """Make a 3D model (GLB, with a preview picture) from several views of one object."""
        require_guild(interaction)
        given = {"front": front, "back": back, "left": left, "right": right}
        sides = {side: attachment for side, attachment in given.items() if attachment is not None}
        views = dict(zip(sides, await checked_image_urls(interaction, *sides.values()), strict=True))
        await start_job(interaction, self.bot.services.jobs.plan_multiview(views, model))

    @model3d_multiview.autocomplete("model")
    async def _multiview_models(self, interaction: discord.Interaction[HyperealBot], current: str) -> list[Any]:
        return self._models(current, "model3d", where=lambda spec: any(n.endswith("_image_url") for n in spec.requires))


async def setup(bot: HyperealBot) -> None:
    """Extension entry point."""
    await bot.add_cog(Media(bot))

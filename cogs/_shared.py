"""Discord helpers shared by the cogs (not an extension: the leading underscore keeps it out of the loader)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bot.consent import Notice
from bot.errors import BotError
from bot.images import InputImage
from bot.inputs import shown_value
from bot.paid import Quote, RequestDeclined, Requester
from bot.redact import Redactor
from bot.transcribe import AudioInput

if TYPE_CHECKING:
    from bot.bot import HyperealBot

log = logging.getLogger(__name__)

# Interaction tokens last 15 minutes; stop using them a minute early so a slow request cannot straddle expiry.
TOKEN_FRESH_FOR = dt.timedelta(minutes=14)

NO_MENTIONS = discord.AllowedMentions.none()


def interaction_is_fresh(interaction: discord.Interaction[Any]) -> bool:
    """True while the interaction token can still be used for followups."""
    return discord.utils.utcnow() - interaction.created_at < TOKEN_FRESH_FOR


async def respond(
    interaction: discord.Interaction[HyperealBot],
    content: str | None = None,
    *,
    ephemeral: bool = False,
    **kwargs: Any,
) -> discord.Message | None:
    """Answer an interaction whatever its state: first response, followup, or (token expired) the channel.

    Nothing ever pings: mentions are disabled unless the caller passes ``allowed_mentions``.
    Returns the message when Discord gives one back.
    """
    kwargs.setdefault("allowed_mentions", NO_MENTIONS)
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(content, ephemeral=ephemeral, **kwargs)
            return None
        if interaction_is_fresh(interaction):
            return await interaction.followup.send(content, ephemeral=ephemeral, wait=True, **kwargs)
    except discord.NotFound:
        log.info("interaction token gone, answering in the channel interaction=%s", interaction.id)
    except discord.HTTPException as exc:
        log.warning("could not answer interaction=%s status=%s", interaction.id, exc.status)
        return None
    channel = interaction.channel
    if ephemeral or not isinstance(channel, discord.abc.Messageable):
        return None  # an ephemeral answer cannot be moved into a public channel
    try:
        return await channel.send(content, **kwargs)
    except discord.HTTPException as exc:
        log.warning("could not answer in channel=%s status=%s", interaction.channel_id, exc.status)
        return None


def input_image(attachment: discord.Attachment) -> InputImage:
    """An attachment as an image input (not yet checked): plain values, no discord objects, go to ``bot/``."""
    return InputImage(
        url=attachment.url, content_type=attachment.content_type, size=attachment.size, filename=attachment.filename
    )


def input_audio(attachment: discord.Attachment) -> AudioInput:
    """An attachment as an audio input (not yet checked)."""
    return AudioInput(
        url=attachment.url, content_type=attachment.content_type, size=attachment.size, filename=attachment.filename
    )


async def checked_image_urls(
    interaction: discord.Interaction[HyperealBot], *attachments: discord.Attachment
) -> list[str]:
    """The URLs of attachments that must be images, once label, size, Discord URL and contents are checked.

    Runs before anything is reserved (and within the interaction's 3 s: see ``bot.attachments``).
    """
    checked = await interaction.client.services.attachments.images([input_image(a) for a in attachments])
    return [image.url for image in checked]


def requester_of(interaction: discord.Interaction[Any]) -> Requester:
    """Who asks and where, as the credit checks need it (threads carry their parent channel)."""
    user = interaction.user
    roles = tuple(role.id for role in getattr(user, "roles", []) if role.id != interaction.guild_id)
    channel = interaction.channel
    parent_id = channel.parent_id if isinstance(channel, discord.Thread) else None
    return Requester(
        age_restricted=is_age_restricted(channel, interaction.client),
        guild_id=interaction.guild_id or 0,
        user_id=user.id,
        role_ids=roles,
        channel_id=interaction.channel_id or 0,
        parent_channel_id=parent_id,
        display_name=user.display_name,
        channel_name=getattr(channel, "name", None),
    )


def is_age_restricted(channel: object, client: discord.Client) -> bool:
    """True in a channel marked age-restricted (``nsfw``); a thread follows its parent channel."""
    if isinstance(channel, discord.Thread):
        parent = channel.parent or client.get_channel(channel.parent_id)
        return bool(getattr(parent, "nsfw", False))
    return bool(getattr(channel, "nsfw", False))


def require_guild(interaction: discord.Interaction[Any]) -> int:
    """The guild id, or a clear error when a server-only command is used in a DM."""
    if interaction.guild_id is None:
        raise BotError("This command works in a server, not in direct messages.")
    return interaction.guild_id


def require_manager(interaction: discord.Interaction[Any]) -> int:
    """The guild id, when the caller has Manage Server (checked at run time, not only hidden by default)."""
    guild_id = require_guild(interaction)
    if not interaction.permissions.manage_guild:
        raise BotError("Only members with the Manage Server permission can use this command.")
    return guild_id


def error_message(interaction: discord.Interaction[Any], error: BaseException) -> str:
    """What the user reads for an error: the BotError's message, or a reference to the logged failure."""
    original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
    if isinstance(original, BotError):
        # Hypereal's own words reach members here: never with a secret in them, never endless.
        services = getattr(getattr(interaction, "client", None), "services", None)
        redactor = services.redactor if services is not None else Redactor()
        return redactor.for_members(original.user_message)
    if isinstance(original, app_commands.MissingPermissions):
        perms = ", ".join(p.replace("_", " ").title() for p in original.missing_permissions)
        return f"You need the {perms} permission to use this command. Ask a server admin."
    if isinstance(original, app_commands.CommandOnCooldown):
        return f"Slow down a little: try again in {original.retry_after:.0f} s."
    if isinstance(original, app_commands.NoPrivateMessage):
        return "This command only works in a server channel, not in DMs."
    if isinstance(original, app_commands.CheckFailure):
        return str(original) or "You are not allowed to use this command here."
    if isinstance(original, app_commands.TransformerError):
        # A value Discord's client would not send (not one of the choices, an unknown member…): bad input, not a bug.
        return f"{shown_value(original.value)} is not a value this option takes. Pick one of the offered choices."
    reference = uuid.uuid4().hex[:8]
    command = interaction.command.qualified_name if interaction.command else "component"
    log.error(
        "command failed ref=%s command=%s guild=%s user=%s",
        reference,
        command,
        interaction.guild_id,
        interaction.user.id,
        exc_info=original,
    )
    return (
        f"Something went wrong on our side (reference `{reference}`). Please try again; "
        "if it keeps happening, give the reference to the server admins."
    )


async def show_error(interaction: discord.Interaction[Any], error: BaseException) -> None:
    """Show an error ephemerally, also after a public defer (whose "thinking…" message is removed first)."""
    original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
    if isinstance(original, RequestDeclined):
        return  # the confirmation message already says "Cancelled" / "Timed out"
    message = error_message(interaction, error)
    if interaction.response.is_done():
        with contextlib.suppress(discord.HTTPException):
            original = await interaction.original_response()
            if original.flags.loading and not original.flags.ephemeral:
                await original.delete()
    await respond(interaction, f"❌ {message}", ephemeral=True)


class ConfirmView(discord.ui.View):
    """ "This costs N credits — Confirm / Cancel", answerable only by the requester."""

    def __init__(self, owner_id: int, *, timeout: float = 120) -> None:
        super().__init__(timeout=timeout)
        self.owner_id = owner_id
        self.answer: discord.Interaction[Any] | None = None
        self.confirmed = False

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        if interaction.user.id == self.owner_id:
            return True
        await interaction.response.send_message("This confirmation is not yours.", ephemeral=True)
        return False

    @discord.ui.button(label="Confirm", style=discord.ButtonStyle.success)
    async def confirm(self, interaction: discord.Interaction[Any], button: discord.ui.Button[ConfirmView]) -> None:
        self.confirmed = True
        self.answer = interaction
        self.stop()

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary)
    async def cancel(self, interaction: discord.Interaction[Any], button: discord.ui.Button[ConfirmView]) -> None:
        self.answer = interaction
        self.stop()


def requester_only(user_id: int) -> discord.AllowedMentions:
    """Mentions that ping the requester and nobody else."""
    return discord.AllowedMentions(users=[discord.Object(user_id)], everyone=False, roles=False)


def queue_text(position: int, eta: float, quote: Quote) -> str:
    """What a member reads while their request waits in the bot's hourly Hypereal queue."""
    minutes = max(1, round(eta / 60))
    return (
        f"⏳ Queued (position {position}): the bot keeps under Hypereal's hourly request limit, so this starts in "
        f"about {minutes} min. Your {quote.label} are held and come back if it fails."
    )


def working_text(model: str, quote: Quote, since: int) -> str:
    """The status line of a request that takes a while (Discord renders the relative time live)."""
    return f"⏳ Generating · {model} · {quote.label} · started <t:{since}:R>"


class InteractionMember:
    """The member behind one paid request, on its interaction: the Discord side of ``bot.paid.MemberPort``.

    It asks for confirmation (answering from then on on the Confirm click), shows "thinking…", queue
    notices and the status line of a slow request, and posts the result wherever the member can still
    see it: in place of the "thinking…" or status line while the token lasts; when the token is gone
    (Discord: 15 minutes) a channel message replying to the original response and mentioning the
    requester; when the channel is gone or closed to the bot, a DM.
    """

    def __init__(self, interaction: discord.Interaction[HyperealBot], *, ephemeral: bool = False) -> None:
        self.interaction = interaction
        self.ephemeral = ephemeral
        self.original_id: int | None = None  # the deferred response, once known (late replies point at it)
        # Status edits and the result are written one at a time, and no status line after the result:
        # notices come from background tasks, and a late one must never cover what was posted.
        self._writing = asyncio.Lock()
        self._status_shown = False
        self._result_sent = False

    # ── MemberPort ───────────────────────────────────────────────────────────

    async def confirm(self, what: str, quote: Quote) -> bool:
        """Ask "This costs N credits — Confirm / Cancel" ephemerally; answers continue on the click."""
        view = ConfirmView(self.interaction.user.id)
        return await self._ask(
            f"{what} costs **{quote.label}**. Go ahead?",
            view,
            accepted=f"Confirmed: {what} for {quote.label}.",
            cancelled="Cancelled: nothing was charged.",
            timed_out="Timed out: nothing was charged.",
        )

    async def accept_notice(self, notice: Notice) -> bool:
        """Show a notice with Accept / Cancel ephemerally (only the member can answer); answers go on on the click."""
        view = ConfirmView(self.interaction.user.id, timeout=notice.wait)
        view.confirm.label = "Accept"
        return await self._ask(
            notice.text, view, accepted=notice.accepted, cancelled=notice.cancelled, timed_out=notice.timed_out
        )

    async def _ask(self, question: str, view: ConfirmView, *, accepted: str, cancelled: str, timed_out: str) -> bool:
        """Ask with Confirm / Cancel buttons and wait; the answer replaces the question.

        The first question answers the interaction; a later one (a price after a consent notice, both on
        the click that answered the first) is a followup. From an Accept or Confirm on, the request answers
        on that click, whose token is fresh.
        """
        interaction = self.interaction
        asked: discord.WebhookMessage | None = None
        if interaction.response.is_done():
            asked = await interaction.followup.send(question, view=view, ephemeral=True, wait=True)
        else:
            await interaction.response.send_message(question, view=view, ephemeral=True)
        await view.wait()
        if view.answer is None:
            with contextlib.suppress(discord.HTTPException):
                if asked is not None:
                    await asked.edit(content=timed_out, view=None)
                else:
                    await interaction.edit_original_response(content=timed_out, view=None)
            return False
        if not view.confirmed:
            await view.answer.response.edit_message(content=cancelled, view=None)
            return False
        await view.answer.response.edit_message(content=accepted, view=None)
        self.interaction = view.answer
        return True

    async def queued(self, position: int, eta: float, quote: Quote) -> None:
        """Replace "thinking…" with the queue position."""
        await self._show_line(queue_text(position, eta, quote))

    async def working(self, model: str, quote: Quote, since: int) -> None:
        """Replace "thinking…" (or the queue notice) with "⏳ Generating · model · price · started …"."""
        await self._show_line(working_text(model, quote, since))

    # ── the interaction ──────────────────────────────────────────────────────

    async def acknowledge(self) -> None:
        """Show "thinking…" (the credits are held) and remember the response message."""
        if self.interaction.response.is_done():
            return
        callback = await self.interaction.response.defer(thinking=True, ephemeral=self.ephemeral)
        if callback is not None:
            self.original_id = callback.message_id

    async def _show_line(self, content: str) -> None:
        """Replace the response's content with a status line, while the token lasts (best effort)."""
        async with self._writing:
            if self._result_sent or not self.interaction.response.is_done():
                return
            if not interaction_is_fresh(self.interaction):
                return
            with contextlib.suppress(discord.HTTPException):
                await self.interaction.edit_original_response(content=content, allowed_mentions=NO_MENTIONS)
                self._status_shown = True

    async def send(self, content: str, build: Callable[[], dict[str, Any]]) -> discord.Message | None:
        """Post ``content`` plus ``build()``'s keyword arguments (files are rebuilt for every attempt)."""
        async with self._writing:
            self._result_sent = True
            return await self._send(content, build)

    async def _in_place_of_status(self, content: str, build: Callable[[], dict[str, Any]]) -> discord.Message | None:
        """The result written over the status line (a followup would leave "⏳ Generating" behind)."""
        arguments = build()
        arguments["attachments"] = arguments.pop("files", [])
        try:
            return await self.interaction.edit_original_response(
                content=content, allowed_mentions=NO_MENTIONS, **arguments
            )
        except discord.NotFound:
            log.info("interaction token gone, posting the result in the channel interaction=%s", self.interaction.id)
        except discord.HTTPException as exc:
            log.warning("could not replace the status line interaction=%s status=%s", self.interaction.id,
                        exc.status)  # fmt: skip
        return None

    async def _send(self, content: str, build: Callable[[], dict[str, Any]]) -> discord.Message | None:
        interaction = self.interaction
        user_id = interaction.user.id
        if self._status_shown and interaction_is_fresh(interaction):
            message = await self._in_place_of_status(content, build)
            if message is not None:
                return message
        if interaction.response.is_done() and interaction_is_fresh(interaction):
            try:
                return await interaction.followup.send(
                    content, wait=True, ephemeral=self.ephemeral, allowed_mentions=NO_MENTIONS, **build()
                )
            except discord.NotFound:
                log.info("interaction token gone, posting the result in the channel interaction=%s", interaction.id)
            except discord.HTTPException as exc:
                log.warning("followup failed interaction=%s status=%s: posting in the channel", interaction.id,
                            exc.status)  # fmt: skip
        mention = f"<@{user_id}>"
        # A late result pings its requester first; a small-text first line ("-# <@id> asked: …") stays on its own line.
        if content.startswith(mention):
            late = content
        else:
            late = f"{mention}\n{content}" if content.startswith("-# ") else f"{mention} {content}"
        channel_id = interaction.channel_id
        if channel_id is not None and not self.ephemeral:
            channel = interaction.client.get_partial_messageable(channel_id, guild_id=interaction.guild_id)
            reference = (
                discord.MessageReference(message_id=self.original_id, channel_id=channel_id, fail_if_not_exists=False)
                if self.original_id
                else None
            )
            try:
                return await channel.send(
                    late,
                    reference=reference,
                    allowed_mentions=requester_only(user_id),
                    **build(),  # type: ignore[arg-type]
                )
            except (discord.NotFound, discord.Forbidden) as exc:
                log.info("result channel unavailable channel=%s status=%s: sending by DM", channel_id, exc.status)
            except discord.HTTPException as exc:
                log.warning("could not post a result channel=%s status=%s: sending by DM", channel_id, exc.status)
        try:
            dm = await interaction.client.create_dm(interaction.user)  # type: ignore[arg-type]
            note = "\n(The channel you asked in is gone or closed to the bot, so it comes here.)"
            return await dm.send(content + note, **build())
        except discord.HTTPException as exc:
            log.warning("could not DM a result user=%s status=%s", user_id, exc.status)
        return None

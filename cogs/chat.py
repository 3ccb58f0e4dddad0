"""/chat: streamed answers by message edits; replies and mentions continue conversations.

The streaming itself (layout, pacing, credits, memory) lives in ``bot.chat``; this cog adapts it to
Discord through two surfaces: the interaction (for /chat) and the channel (for replies/mentions).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.chat.layout import CURSOR
from bot.chat.service import ChatRequest
from bot.inputs import check_system_prompt
from bot.paid import Quote, Requester
from cogs._shared import (
    NO_MENTIONS,
    ConfirmView,
    InteractionMember,
    error_message,
    is_age_restricted,
    requester_of,
    require_guild,
    require_manager,
)

if TYPE_CHECKING:
    from bot.bot import HyperealBot

log = logging.getLogger(__name__)


class StopView(discord.ui.View):
    """The Stop button shown while an answer streams; only the asker can press it."""

    def __init__(self, owner_id: int, stop: asyncio.Event) -> None:
        super().__init__(timeout=900)
        self.owner_id = owner_id
        self.stop_event = stop

    async def interaction_check(self, interaction: discord.Interaction[Any]) -> bool:
        if interaction.user.id == self.owner_id:
            return True
        await interaction.response.send_message("Only the person who asked can stop this answer.", ephemeral=True)
        return False

    @discord.ui.button(label="Stop", emoji="⏹️", style=discord.ButtonStyle.danger)
    async def stop_button(self, interaction: discord.Interaction[Any], button: discord.ui.Button[StopView]) -> None:
        self.stop_event.set()
        await interaction.response.defer()  # the answer's own next edit shows that it stopped


def _view_for(content: str, view: discord.ui.View) -> discord.ui.View | None:
    # The Stop button stays while the message is still growing (it ends with the cursor).
    return view if content.endswith(CURSOR) else None


class InteractionSurface(InteractionMember):
    """Shows an answer through the interaction: first part replaces "thinking…", later parts reply to it.

    As the paid flow's member it asks for confirmation over the server's threshold and shows queue notices.
    """

    def __init__(self, interaction: discord.Interaction[HyperealBot], view: discord.ui.View, *, private: bool) -> None:
        super().__init__(interaction, ephemeral=private)
        self.view = view
        self.private = private
        self.followup_ids: set[int] = set()
        self.channel_messages: dict[int, discord.Message] = {}

    async def working(self, model: str, quote: Quote, since: int) -> None:
        """A model slow to start shows the status line until its first words (one write, before any part)."""
        if not self.followup_ids:
            await super().working(model, quote, since)

    async def show_first(self, content: str) -> int:
        view = _view_for(content, self.view) or discord.utils.MISSING
        async with self._writing:
            self._result_sent = True
            if self._status_shown:
                # The status line becomes the answer (a followup would leave "⏳ Generating" behind).
                message: discord.Message = await self.interaction.edit_original_response(
                    content=content, view=view, allowed_mentions=NO_MENTIONS
                )
            else:
                message = await self.interaction.followup.send(
                    content, view=view, wait=True, ephemeral=self.private, allowed_mentions=NO_MENTIONS
                )
        self.followup_ids.add(message.id)
        return message.id

    async def edit(self, message_id: int, content: str) -> None:
        view = _view_for(content, self.view)
        if message_id in self.followup_ids:
            await self.interaction.followup.edit_message(
                message_id, content=content, view=view, allowed_mentions=NO_MENTIONS
            )
        else:
            await self.channel_messages[message_id].edit(content=content, view=view, allowed_mentions=NO_MENTIONS)

    async def continue_in_new_message(self, content: str, reply_to: int) -> int:
        view = _view_for(content, self.view) or discord.utils.MISSING
        channel = self.interaction.channel
        if self.private or not isinstance(channel, discord.abc.Messageable):
            message = await self.interaction.followup.send(
                content, view=view, wait=True, ephemeral=self.private, allowed_mentions=NO_MENTIONS
            )
            self.followup_ids.add(message.id)
            return message.id
        reference = discord.MessageReference(message_id=reply_to, channel_id=channel.id, fail_if_not_exists=False)
        sent = await channel.send(content, view=view, reference=reference, allowed_mentions=NO_MENTIONS)
        self.channel_messages[sent.id] = sent
        return sent.id


class ChannelSurface:
    """Shows an answer as channel messages replying to the user's message (replies and mentions)."""

    def __init__(self, message: discord.Message, view: discord.ui.View) -> None:
        self.source = message
        self.view = view
        self.messages: dict[int, discord.Message] = {}

    async def confirm(self, what: str, quote: Quote) -> bool:
        """Ask in a reply (only the author can answer); the question is removed once answered."""
        view = ConfirmView(self.source.author.id)
        question = await self.source.reply(
            f"{what} costs **{quote.label}**. Go ahead?", view=view, mention_author=False, allowed_mentions=NO_MENTIONS
        )
        await view.wait()
        answer = "Confirmed." if view.confirmed else "Cancelled: nothing was charged."
        if view.answer is not None:
            await view.answer.response.edit_message(content=answer, view=None)
        else:
            with contextlib.suppress(discord.HTTPException):
                await question.edit(content="Timed out: nothing was charged.", view=None)
        return view.confirmed

    async def queued(self, position: int, eta: float, quote: Quote) -> None:
        """Replies have no "thinking…" to replace; the answer appears when the request starts."""

    async def working(self, model: str, quote: Quote, since: int) -> None:
        """Nothing to replace either: the reply appears with the first words."""

    async def acknowledge(self) -> None:
        """Nothing to acknowledge: a message needs no answer within 3 s."""

    async def show_first(self, content: str) -> int:
        return await self.continue_in_new_message(content, self.source.id)

    async def edit(self, message_id: int, content: str) -> None:
        await self.messages[message_id].edit(
            content=content, view=_view_for(content, self.view), allowed_mentions=NO_MENTIONS
        )

    async def continue_in_new_message(self, content: str, reply_to: int) -> int:
        channel = self.source.channel
        reference = discord.MessageReference(message_id=reply_to, channel_id=channel.id, fail_if_not_exists=False)
        sent = await channel.send(
            content, view=_view_for(content, self.view) or discord.utils.MISSING,
            reference=reference, allowed_mentions=NO_MENTIONS,
        )  # fmt: skip
        self.messages[sent.id] = sent
        return sent.id


class Chat(commands.Cog):
    """LLM chat."""

    def __init__(self, bot: HyperealBot) -> None:
        self.bot = bot

    @app_commands.command(name="chat")
    @app_commands.guild_only()
    @app_commands.describe(
        prompt="Your question or message",
        model="Chat model (default: the server's)",
        system="Instructions for the model (a system prompt) for this conversation",
        private="Only you see the answer (default: your /settings, else public)",
    )
    async def chat(
        self,
        interaction: discord.Interaction[HyperealBot],
        prompt: str,
        model: str | None = None,
        system: str | None = None,
        private: bool | None = None,
    ) -> None:
        """Ask a chat model; the answer streams in. Reply to it to continue the conversation."""
        guild_id = require_guild(interaction)
        # Left-out options take the member's /settings (option > member > server > global).
        model, private = await self.bot.services.member_settings.chat_options(
            guild_id, interaction.user.id, model=model, private=private
        )
        requester = requester_of(interaction)
        stop = asyncio.Event()
        view = StopView(requester.user_id, stop)
        surface = InteractionSurface(interaction, view, private=private)
        request = ChatRequest(
            requester, prompt, key=f"chat:{interaction.id}", model=model, system=system, show_question=not private
        )

        await self.bot.services.chat.answer(request, surface, stop=stop)
        view.stop()

    @chat.autocomplete("model")
    async def _models(self, interaction: discord.Interaction[HyperealBot], current: str) -> list[Any]:
        choices = self.bot.services.catalog.search(current, "chat")
        return [app_commands.Choice(name=c.label, value=c.value) for c in choices]

    @app_commands.command(name="chat-defaults")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    @app_commands.describe(
        model="The chat model members get by default (empty = keep)",
        system_prompt="Instructions every conversation starts with (empty = keep; 'none' = remove)",
    )
    async def chat_defaults(
        self,
        interaction: discord.Interaction[HyperealBot],
        model: str | None = None,
        system_prompt: str | None = None,
    ) -> None:
        """Set the server's default chat model and system prompt (Manage Server)."""
        guild_id = require_manager(interaction)
        services = self.bot.services
        changes: dict[str, Any] = {}
        if model is not None:
            changes["default_chat_model"] = services.catalog.require(model, "chat").id
        if system_prompt is not None:
            removed = system_prompt.strip().lower() == "none"
            changes["system_prompt"] = None if removed else check_system_prompt(system_prompt)
        settings = await services.guild_settings.update(guild_id, by=interaction.user.id, **changes)
        model_name = settings.default_chat_model or services.settings.default_chat_model
        system_text = settings.system_prompt or "(none)"
        await interaction.response.send_message(
            f"Default chat model: `{model_name}`\nSystem prompt: {system_text[:1500]}",
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )

    @chat_defaults.autocomplete("model")
    async def _default_models(self, interaction: discord.Interaction[HyperealBot], current: str) -> list[Any]:
        return await self._models(interaction, current)

    # ── replies and mentions (need MESSAGE_CONTENT_INTENT=1) ──────────────────

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """A reply to one of our answers continues that conversation; a mention starts one."""
        if message.author.bot or message.guild is None or not self.bot.services.settings.message_content_intent:
            return
        services = self.bot.services
        parent_turn = None
        if message.reference is not None and message.reference.message_id is not None:
            parent_turn = await services.conversations.turn_for_message(message.reference.message_id)
        mentioned = self.bot.user is not None and self.bot.user in message.mentions
        if parent_turn is None and not mentioned:
            return
        prompt = message.content
        if self.bot.user is not None:
            prompt = prompt.replace(f"<@{self.bot.user.id}>", "").replace(f"<@!{self.bot.user.id}>", "").strip()
        channel = message.channel
        roles = tuple(r.id for r in getattr(message.author, "roles", []) if r.id != message.guild.id)
        requester = Requester(
            guild_id=message.guild.id,
            user_id=message.author.id,
            role_ids=roles,
            channel_id=channel.id,
            parent_channel_id=channel.parent_id if isinstance(channel, discord.Thread) else None,
            display_name=message.author.display_name,
            channel_name=getattr(channel, "name", None),
            age_restricted=is_age_restricted(channel, self.bot),
        )
        stop = asyncio.Event()
        view = StopView(message.author.id, stop)
        # A reply goes on in its conversation's model; a new conversation takes the member's /settings choice.
        model = None
        if parent_turn is None:
            model, _private = await services.member_settings.chat_options(
                message.guild.id, message.author.id, model=None, private=None
            )
        request = ChatRequest(requester, prompt, key=f"chat-message:{message.id}", model=model, parent_turn=parent_turn)
        try:
            await services.chat.answer(request, ChannelSurface(message, view), stop=stop)
        except Exception as exc:
            await self._reply_error(message, exc)
        finally:
            view.stop()

    async def _reply_error(self, message: discord.Message, error: Exception) -> None:
        text = error_message(_MessageContext(message, self.bot), error)  # type: ignore[arg-type]
        try:
            await message.reply(f"❌ {text}", allowed_mentions=NO_MENTIONS, mention_author=False)
        except discord.HTTPException as exc:
            log.warning("could not reply with an error channel=%s status=%s", message.channel.id, exc.status)


class _MessageContext:
    """Enough of an interaction's shape for ``error_message`` when the request came as a message."""

    def __init__(self, message: discord.Message, client: HyperealBot) -> None:
        self.client = client
        self.command = None
        self.guild_id = message.guild.id if message.guild else None
        self.user = message.author


async def setup(bot: HyperealBot) -> None:
    """Extension entry point."""
    await bot.add_cog(Chat(bot))

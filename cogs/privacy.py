"""Privacy: /forget-me for members, /privacy purge for admins, and the server join/leave events retention needs."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import BotError
from bot.privacy import PurgeReport, parse_user_id, purge_summary
from cogs._shared import ConfirmView, require_manager

if TYPE_CHECKING:
    from bot.bot import HyperealBot

MANAGERS = discord.Permissions(manage_guild=True)
SCOPE_CHOICES = [
    app_commands.Choice(name="This server", value="server"),
    app_commands.Choice(name="All servers (and DMs)", value="all"),
]
# Said before anything is deleted: the books stay, and why.
LEDGER_STAYS = (
    "Your credit ledger entries stay: they are the server's financial record, and what you already spent keeps "
    "counting toward your caps this period. This cannot be undone."
)


def _forget_question(scope: str) -> str:
    where = "in **every server and in DMs**" if scope == "all" else "in **this server**"
    return (
        f"This deletes, {where}: your conversations with the bot, the prompts of your images, videos, audio and "
        f"3D requests, and the name stored with your requests.\n{LEDGER_STAYS}"
    )


async def _confirmed(
    interaction: discord.Interaction[HyperealBot], question: str
) -> discord.Interaction[HyperealBot] | None:
    """Ask ``question`` with Confirm / Cancel (ephemeral); the click's interaction, or None if declined."""
    view = ConfirmView(interaction.user.id)
    await interaction.response.send_message(question, view=view, ephemeral=True)
    await view.wait()
    if view.answer is None:
        with contextlib.suppress(discord.HTTPException):
            await interaction.edit_original_response(content="Timed out: nothing was deleted.", view=None)
        return None
    if not view.confirmed:
        await view.answer.response.edit_message(content="Cancelled: nothing was deleted.", view=None)
        return None
    return view.answer


async def _report(answer: discord.Interaction[HyperealBot], report: PurgeReport, whose: str) -> None:
    await answer.response.edit_message(content=f"🗑️ {whose}: {purge_summary(report)}", view=None)


class Privacy(commands.Cog):
    """Deleting personal data on request, and telling retention which servers the bot left."""

    privacy = app_commands.Group(
        name="privacy",
        description="Members' personal data (Manage Server)",
        default_permissions=MANAGERS,
        guild_only=True,
    )

    def __init__(self, bot: HyperealBot) -> None:
        self.bot = bot

    @app_commands.command(name="forget-me")
    @app_commands.describe(scope="Delete your data in this server only, or in every server and DM")
    @app_commands.choices(scope=SCOPE_CHOICES)
    async def forget_me(self, interaction: discord.Interaction[HyperealBot], scope: str | None = None) -> None:
        """Delete your conversations, prompts and stored name (ledger amounts stay)."""
        scope = scope or ("server" if interaction.guild_id else "all")
        if scope == "server" and interaction.guild_id is None:
            raise BotError("In DMs there is no server to choose: use `/forget-me scope:All servers`.")
        answer = await _confirmed(interaction, _forget_question(scope))
        if answer is None:
            return
        guild_id = interaction.guild_id if scope == "server" else None
        report = await self.bot.services.privacy.purge(user_id=interaction.user.id, guild_id=guild_id)
        await _report(answer, report, "Your data")

    @privacy.command(name="purge")
    @app_commands.describe(member="The member's user id (or mention), also of someone who left the server")
    async def purge(self, interaction: discord.Interaction[HyperealBot], member: str) -> None:
        """Delete a member's conversations, prompts and stored name in this server (ledger amounts stay)."""
        guild_id = require_manager(interaction)
        user_id = parse_user_id(member)
        if user_id is None:
            raise BotError(
                "That is not a user id. Give the member's id (Developer Mode, right-click, Copy User ID) or a mention."
            )
        question = (
            f"This deletes, in this server, the conversations, prompts and stored name of <@{user_id}> (`{user_id}`). "
            "Their ledger entries stay: they are the server's financial record, and their caps keep counting this "
            "period. This cannot be undone."
        )
        answer = await _confirmed(interaction, question)
        if answer is None:
            return
        report = await self.bot.services.privacy.purge(user_id=user_id, guild_id=guild_id)
        await _report(answer, report, f"<@{user_id}>")

    # ── servers joined and left (retention) ──────────────────────────────────

    @commands.Cog.listener()
    async def on_guild_remove(self, guild: discord.Guild) -> None:
        """The bot was removed (discord.py sends outages as ``on_guild_unavailable``, never here)."""
        await self.bot.services.retention.guild_removed(guild.id)

    @commands.Cog.listener()
    async def on_guild_join(self, guild: discord.Guild) -> None:
        """Re-added: the server's data is no longer scheduled for deletion."""
        await self.bot.services.retention.guild_present(guild.id)

    @commands.Cog.listener()
    async def on_guild_available(self, guild: discord.Guild) -> None:
        """Seen at start-up: it may have re-added the bot while it was offline."""
        await self.bot.services.retention.guild_present(guild.id)


async def setup(bot: HyperealBot) -> None:
    await bot.add_cog(Privacy(bot))

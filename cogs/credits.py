"""/credits: the server's balance, your caps and spend per category, and your pending requests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.wording import CATEGORY_LABELS, balance_text, credits_text
from cogs._shared import requester_of, require_guild

if TYPE_CHECKING:
    from bot.bot import HyperealBot


class Credits(commands.Cog):
    """The member's view of credits."""

    def __init__(self, bot: HyperealBot) -> None:
        self.bot = bot

    @app_commands.command(name="credits")
    @app_commands.guild_only()
    async def credits(self, interaction: discord.Interaction[HyperealBot]) -> None:
        """Server balance, your caps and spend this period, and your pending requests."""
        guild_id = require_guild(interaction)
        requester = requester_of(interaction)
        services = self.bot.services
        budget = await services.ledger.budget(guild_id)
        statuses = await services.ledger.user_status(guild_id, requester.user_id, requester.role_ids)
        pending = await services.ledger.open_reservations(guild_id, requester.user_id)
        resets = f"<t:{budget.resets_at}:R>" if budget.resets_at else "never (a one-off pool)"
        embed = discord.Embed(title="Credits", colour=discord.Colour.green())
        embed.add_field(
            name="Server",
            value=(
                balance_text(budget.balance, budget.allowance)
                + (f" ({credits_text(budget.reserved)} held for requests in progress)" if budget.reserved else "")
                + f"\nResets {resets}"
                + ("\n❄️ Frozen by the bot operator" if budget.frozen else "")
            ),
            inline=False,
        )
        lines = []
        for status in statuses:
            cap = "no cap" if status.cap is None else f"{status.used}/{status.cap}"
            if status.cap is None and status.used == 0:
                continue
            used = f"{status.used} used · " if status.cap is None else ""
            lines.append(f"{CATEGORY_LABELS[status.category]}: {used}{cap}")
        embed.add_field(
            name="You this period",
            value="\n".join(lines) or "Nothing spent yet, and no caps: only the server balance limits you.",
            inline=False,
        )
        if pending:
            embed.add_field(
                name="Your requests in progress",
                value="\n".join(f"{r.model or r.category} · {credits_text(r.estimate)} held" for r in pending[:10]),
                inline=False,
            )
        embed.set_footer(text="1 credit = $0.01 · admins set caps with /quota")
        await interaction.response.send_message(embed=embed, ephemeral=True)


async def setup(bot: HyperealBot) -> None:
    """Extension entry point."""
    await bot.add_cog(Credits(bot))

"""Operator commands (OWNER_IDS only): /budget set, grant, freeze — for any server the bot is in."""

from __future__ import annotations

from typing import TYPE_CHECKING, get_args

import discord
from discord import app_commands
from discord.ext import commands

from bot.credits.periods import Period
from bot.errors import BotError, InvalidInput
from bot.inputs import ALLOWANCE_RANGE, GRANT_RANGE, check_choice, check_int, parse_snowflake
from bot.wording import balance_text, credits_text

if TYPE_CHECKING:
    from bot.bot import HyperealBot


class Operator(commands.Cog):
    """The bot operator's controls over server budgets."""

    budget = app_commands.Group(
        name="budget",
        description="Server budgets (bot operator only)",
        default_permissions=discord.Permissions(manage_guild=True),
    )

    def __init__(self, bot: HyperealBot) -> None:
        self.bot = bot

    def _target(self, interaction: discord.Interaction[HyperealBot], server_id: str | None) -> int:
        if interaction.user.id not in self.bot.services.settings.owner_ids:
            raise BotError("Only the bot operator (OWNER_IDS) can change server budgets.")
        if server_id is None:
            if interaction.guild_id is None:
                raise InvalidInput("Give a server_id, or use this command inside the server.")
            return interaction.guild_id
        return parse_snowflake(server_id)

    @budget.command(name="set")
    @app_commands.describe(
        allowance="Credits per period",
        period="How often the balance goes back to the allowance (none = a one-off pool)",
        server_id="Which server (default: this one)",
    )
    async def set(
        self,
        interaction: discord.Interaction[HyperealBot],
        allowance: app_commands.Range[int, ALLOWANCE_RANGE[0], ALLOWANCE_RANGE[1]],
        period: Period,
        server_id: str | None = None,
    ) -> None:
        """Give a server its allowance and period (starts a fresh period at the full allowance)."""
        guild_id = self._target(interaction, server_id)
        allowance = check_int(allowance, *ALLOWANCE_RANGE, name="The allowance", unit="credits")
        period = check_choice(period, get_args(Period), name="The period")
        budget = await self.bot.services.ledger.set_allowance(guild_id, allowance, period, by=interaction.user.id)
        await interaction.response.send_message(
            f"Server {guild_id}: {credits_text(budget.allowance)} per {budget.period}; "
            f"{balance_text(budget.balance, budget.allowance)}.",
            ephemeral=True,
        )

    @budget.command(name="grant")
    @app_commands.describe(
        amount="Credits to add (negative to take back)",
        server_id="Which server (default: this one)",
        allow_negative="Allow taking back more than the balance (the server is then blocked until it is paid back)",
    )
    async def grant(
        self,
        interaction: discord.Interaction[HyperealBot],
        amount: app_commands.Range[int, GRANT_RANGE[0], GRANT_RANGE[1]],
        server_id: str | None = None,
        allow_negative: bool = False,
    ) -> None:
        """Add credits to a server's balance for this period (or take them back)."""
        guild_id = self._target(interaction, server_id)
        amount = check_int(amount, *GRANT_RANGE, name="The amount", unit="credits")
        ledger = self.bot.services.ledger
        balance = await ledger.grant(guild_id, amount, by=interaction.user.id, allow_negative=bool(allow_negative))
        budget = await ledger.budget(guild_id)
        change = ("+" if amount >= 0 else "") + credits_text(amount)
        text = f"Server {guild_id}: {change}; {balance_text(balance, budget.allowance)}."
        if balance < 0:
            text += " The balance is below zero: every request is refused until it is topped up or the period resets."
        await interaction.response.send_message(text, ephemeral=True)

    @budget.command(name="freeze")
    @app_commands.describe(frozen="True stops all new paid requests on the server", server_id="Which server")
    async def freeze(
        self, interaction: discord.Interaction[HyperealBot], frozen: bool, server_id: str | None = None
    ) -> None:
        """Freeze or unfreeze a server's budget."""
        guild_id = self._target(interaction, server_id)
        await self.bot.services.ledger.set_frozen(guild_id, frozen, by=interaction.user.id)
        state = "frozen: no new paid requests" if frozen else "unfrozen"
        await interaction.response.send_message(f"Server {guild_id} is {state}.", ephemeral=True)


async def setup(bot: HyperealBot) -> None:
    """Extension entry point."""
    await bot.add_cog(Operator(bot))

"""Server content rules and abuse limits (Manage Server): /moderation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.credits import BUDGET_CATEGORIES
from bot.inputs import COOLDOWN_RANGE, INFLIGHT_RANGE, check_choice
from bot.moderation import SCOPES
from bot.wording import CATEGORY_LABELS
from cogs._shared import require_manager

if TYPE_CHECKING:
    from bot.bot import HyperealBot

MANAGERS = discord.Permissions(manage_guild=True)
CATEGORY_CHOICES = [app_commands.Choice(name=CATEGORY_LABELS[c], value=c) for c in BUDGET_CATEGORIES]
SCOPE_LABELS = {"everywhere": "everywhere", "outside_age_restricted": "outside age-restricted channels"}
ADULT_LABELS = {"off": "off (refused everywhere)", "age_restricted": "age-restricted channels only"}


class Moderation(commands.Cog):
    """Prompt blocklist, adult content, in-flight limit and cooldowns for server admins."""

    moderation = app_commands.Group(
        name="moderation",
        description="Content rules and abuse limits (Manage Server)",
        default_permissions=MANAGERS,
        guild_only=True,
    )
    blocklist = app_commands.Group(name="blocklist", description="Words prompts may not contain", parent=moderation)

    def __init__(self, bot: HyperealBot) -> None:
        self.bot = bot

    @blocklist.command(name="add")
    @app_commands.describe(
        rule="A word or phrase; * is a wildcard (nsfw* matches nsfw, nsfwart…); case and accents are ignored",
        where="Where the rule applies (default: everywhere)",
    )
    @app_commands.choices(where=[app_commands.Choice(name=SCOPE_LABELS[s], value=s) for s in SCOPES])
    async def blocklist_add(
        self,
        interaction: discord.Interaction[HyperealBot],
        rule: app_commands.Range[str, 1, 60],
        where: app_commands.Choice[str] | None = None,
    ) -> None:
        """Refuse prompts containing a word (before anything is charged)."""
        guild_id = require_manager(interaction)
        scope = check_choice(where.value if where else "everywhere", SCOPES, name="Where")
        added = await self.bot.services.moderation.add_rule(guild_id, rule, scope=scope, by=interaction.user.id)
        await interaction.response.send_message(
            f"Prompts containing `{added.pattern}` are now refused {SCOPE_LABELS[added.scope]}.", ephemeral=True
        )

    @blocklist.command(name="remove")
    @app_commands.describe(rule="The rule as /moderation blocklist list shows it")
    async def blocklist_remove(
        self, interaction: discord.Interaction[HyperealBot], rule: app_commands.Range[str, 1, 60]
    ) -> None:
        """Stop refusing prompts with this rule."""
        guild_id = require_manager(interaction)
        removed = await self.bot.services.moderation.remove_rule(guild_id, rule, by=interaction.user.id)
        text = "Removed that rule." if removed else "There is no such rule; /moderation blocklist list shows them."
        await interaction.response.send_message(text, ephemeral=True)

    @blocklist.command(name="list")
    async def blocklist_list(self, interaction: discord.Interaction[HyperealBot]) -> None:
        """The server's blocked words (shown only to you)."""
        guild_id = require_manager(interaction)
        rules = await self.bot.services.moderation.rules(guild_id)
        lines = [f"`{r.pattern}` — {SCOPE_LABELS[r.scope]}" for r in rules]
        embed = discord.Embed(
            title="Prompt blocklist",
            description="\n".join(lines)[:4000] if lines else "No rules: only the adult content setting applies.",
            colour=discord.Colour.blurple(),
        )
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @moderation.command(name="adult-content")
    @app_commands.describe(state="off: explicit prompts refused everywhere; age-restricted: allowed only there")
    async def adult_content(
        self, interaction: discord.Interaction[HyperealBot], state: Literal["off", "age_restricted"]
    ) -> None:
        """Where explicit prompts (the bot's starter list of terms) are allowed."""
        guild_id = require_manager(interaction)
        value = check_choice(state, ("off", "age_restricted"), name="The state")
        await self.bot.services.moderation.set_adult_content(guild_id, value, by=interaction.user.id)
        await interaction.response.send_message(f"Adult content: {ADULT_LABELS[value]}.", ephemeral=True)

    @moderation.command(name="limits")
    @app_commands.describe(
        max_in_flight="Requests one member may have in progress at once (empty: the bot's default)",
        category="Which kind of generation the cooldown is for",
        cooldown="Seconds between two requests of that category per member (0: none)",
    )
    @app_commands.choices(category=CATEGORY_CHOICES)
    async def limits(
        self,
        interaction: discord.Interaction[HyperealBot],
        max_in_flight: app_commands.Range[int, INFLIGHT_RANGE[0], INFLIGHT_RANGE[1]] | None = None,
        category: app_commands.Choice[str] | None = None,
        cooldown: app_commands.Range[int, 0, COOLDOWN_RANGE[1]] | None = None,
    ) -> None:
        """Set the per-member in-flight limit and per-category cooldowns."""
        guild_id = require_manager(interaction)
        moderation = self.bot.services.moderation
        said: list[str] = []
        if max_in_flight is not None:
            limit = await moderation.set_max_inflight(guild_id, max_in_flight, by=interaction.user.id)
            said.append(f"A member may have {limit} request(s) in progress at once.")
        if cooldown is not None:
            if category is None:
                await interaction.response.send_message("Pick the category the cooldown is for.", ephemeral=True)
                return
            await moderation.set_cooldown(guild_id, category.value, cooldown or None, by=interaction.user.id)
            said.append(
                f"{category.name}: {cooldown} s between two requests per member." if cooldown else
                f"{category.name}: no cooldown."
            )  # fmt: skip
        if not said:
            said.append("Nothing changed: give max_in_flight, or a category and a cooldown.")
        await interaction.response.send_message(" ".join(said), ephemeral=True)

    @moderation.command(name="show")
    async def show(self, interaction: discord.Interaction[HyperealBot]) -> None:
        """The server's content rules and abuse limits."""
        guild_id = require_manager(interaction)
        shown = await self.bot.services.moderation.show(guild_id)
        embed = discord.Embed(title="Moderation", colour=discord.Colour.blurple())
        embed.add_field(name="Adult content", value=ADULT_LABELS[shown.adult_content], inline=False)
        embed.add_field(
            name="Blocklist",
            value=f"{len(shown.rules)} rule(s) — /moderation blocklist list shows them" if shown.rules else "none",
            inline=False,
        )
        embed.add_field(name="In progress per member", value=f"at most {shown.max_inflight}", inline=False)
        cooldowns = ", ".join(f"{CATEGORY_LABELS[c]} {s} s" for c, s in shown.cooldowns.items())
        embed.add_field(name="Cooldowns", value=cooldowns or "none", inline=False)
        blocked = ", ".join(f"<@{user_id}>" for user_id in shown.blocked[:30])
        embed.add_field(name="Blocked members", value=blocked or "none", inline=False)
        await interaction.response.send_message(
            embed=embed, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )


async def setup(bot: HyperealBot) -> None:
    """Extension entry point."""
    await bot.add_cog(Moderation(bot))

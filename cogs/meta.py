"""/models and /help: what the bot offers and what it costs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.about import VERSION, format_uptime
from bot.help import CommandInfo, help_sections, render_help_pages
from bot.model_list import CATEGORY_TITLES, ModelListPage, model_list_pages

if TYPE_CHECKING:
    from bot.bot import HyperealBot

EMBED_COLOUR = discord.Colour.blurple()


def _page_embed(page: ModelListPage) -> discord.Embed:
    embed = discord.Embed(title=page.title, description="\n".join(page.lines), colour=EMBED_COLOUR)
    embed.set_footer(text=f"Page {page.number}/{page.total} · prices in credits (1 credit = $0.01)")
    return embed


class ModelPager(discord.ui.View):
    """◀ / ▶ buttons over the pages of /models (only the person who asked can turn them)."""

    def __init__(self, pages: list[ModelListPage], owner_id: int) -> None:
        super().__init__(timeout=300)
        self.pages = pages
        self.owner_id = owner_id
        self.index = 0
        self._sync_buttons()

    def _sync_buttons(self) -> None:
        self.previous.disabled = self.index == 0
        self.next.disabled = self.index >= len(self.pages) - 1

    async def interaction_check(self, interaction: discord.Interaction[HyperealBot]) -> bool:
        if interaction.user.id == self.owner_id:
            return True
        await interaction.response.send_message("Use /models yourself to browse the catalog.", ephemeral=True)
        return False

    async def _show(self, interaction: discord.Interaction[HyperealBot]) -> None:
        self._sync_buttons()
        await interaction.response.edit_message(embed=_page_embed(self.pages[self.index]), view=self)

    @discord.ui.button(label="◀ Previous", style=discord.ButtonStyle.secondary)
    async def previous(
        self, interaction: discord.Interaction[HyperealBot], button: discord.ui.Button[ModelPager]
    ) -> None:
        self.index = max(0, self.index - 1)
        await self._show(interaction)

    @discord.ui.button(label="Next ▶", style=discord.ButtonStyle.secondary)
    async def next(self, interaction: discord.Interaction[HyperealBot], button: discord.ui.Button[ModelPager]) -> None:
        self.index = min(len(self.pages) - 1, self.index + 1)
        await self._show(interaction)


class Meta(commands.Cog):
    """Catalog browsing and help."""

    def __init__(self, bot: HyperealBot) -> None:
        self.bot = bot

    @app_commands.command(name="models")
    @app_commands.describe(category="Only this kind of model (leave empty for all)")
    async def models(self, interaction: discord.Interaction[HyperealBot], category: str | None = None) -> None:
        """List the available models and what they cost."""
        pages = model_list_pages(self.bot.services.catalog, category)
        view = ModelPager(pages, interaction.user.id) if len(pages) > 1 else discord.utils.MISSING
        await interaction.response.send_message(embed=_page_embed(pages[0]), view=view, ephemeral=True)

    @models.autocomplete("category")
    async def _category_autocomplete(
        self, interaction: discord.Interaction[HyperealBot], current: str
    ) -> list[app_commands.Choice[str]]:
        text = current.lower()
        return [
            app_commands.Choice(name=title, value=key)
            for key, title in CATEGORY_TITLES.items()
            if text in key or text in title.lower()
        ][:25]

    @app_commands.command(name="help")
    async def help(self, interaction: discord.Interaction[HyperealBot]) -> None:
        """The commands you can use, grouped by what they do, with their prices."""
        user = interaction.user
        is_admin = isinstance(user, discord.Member) and user.guild_permissions.manage_guild
        is_operator = user.id in self.bot.services.settings.owner_ids
        sections = help_sections(
            tree_commands(self.bot.tree), self.bot.services.catalog, is_admin=is_admin, is_operator=is_operator
        )
        pages = render_help_pages(sections)
        embeds = [discord.Embed(description=page, colour=EMBED_COLOUR) for page in pages]
        embeds[0].title = "Hypereal bot — commands"
        embeds[-1].set_footer(text="Prices in credits (1 credit = $0.01; ~ = estimate). /models lists every model.")
        await interaction.response.send_message(embeds=embeds, ephemeral=True)

    @app_commands.command(name="about")
    async def about(self, interaction: discord.Interaction[HyperealBot]) -> None:
        """The bot's version, uptime, servers, and the link to add it to another server."""
        bot = self.bot
        link = bot.invite_link()
        embed = discord.Embed(title="Hypereal bot", colour=EMBED_COLOUR)
        embed.add_field(name="Version", value=VERSION)
        embed.add_field(name="Uptime", value=format_uptime(bot.uptime))
        embed.add_field(name="Servers", value=str(len(bot.guilds)))
        invite = f"[Invite link]({link})" if link else "not known yet"
        embed.add_field(name="Add it to a server", value=invite, inline=False)
        await interaction.response.send_message(embed=embed, ephemeral=True)


def tree_commands(tree: app_commands.CommandTree[Any]) -> list[CommandInfo]:
    """Every slash command (subcommands by their full name) and message menu, with whether it needs Manage Server."""
    rows: list[CommandInfo] = []
    for command in tree.get_commands():
        if isinstance(command, app_commands.ContextMenu):
            rows.append(CommandInfo(command.name, "", menu=True))
            continue
        admin = command.default_permissions is not None and command.default_permissions.value != 0
        if isinstance(command, app_commands.Group):
            rows.extend(
                CommandInfo(sub.qualified_name, sub.description, admin=admin)
                for sub in command.walk_commands()
                if isinstance(sub, app_commands.Command)
            )
        else:
            rows.append(CommandInfo(command.name, command.description, admin=admin))
    return rows


async def setup(bot: HyperealBot) -> None:
    """Extension entry point."""
    await bot.add_cog(Meta(bot))

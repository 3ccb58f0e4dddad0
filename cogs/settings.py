"""/settings: a member's own defaults in this server (ephemeral, with selects), and /settings reset.

The settings themselves, their checks and how they apply live in ``bot.member_settings``; this cog only
shows the panel and passes each choice on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.member_settings import TTS_FORMATS, MemberSettings, describe
from cogs._shared import NO_MENTIONS, require_guild

if TYPE_CHECKING:
    from bot.bot import HyperealBot

EMBED_COLOUR = discord.Colour.teal()
CLEAR = "__default__"  # the select value that removes a setting (Discord options need a non-empty value)
MAX_OPTIONS = 25  # Discord's limit on a select's options


class SettingsPanel(discord.ui.View):
    """Four selects (image model, aspect ratio, chat model, speech) and the private/reset buttons: 5 rows."""

    def __init__(self, bot: HyperealBot, guild_id: int, user_id: int, current: MemberSettings) -> None:
        super().__init__(timeout=600)
        self.bot = bot
        self.guild_id = guild_id
        self.user_id = user_id
        catalog = bot.services.catalog
        repo = bot.services.member_settings
        self._select("image_model", "Image model", [s.id for s in catalog.by_category("image")], current.image_model, 0)
        self._select("aspect_ratio", "Aspect ratio", repo.aspect_ratios(), current.aspect_ratio, 1)
        self._select("chat_model", "Chat model", [s.id for s in catalog.by_category("chat")], current.chat_model, 2)
        speech = [f"{s.id} · {f}" for s in catalog.by_category("audio_tts") for f in TTS_FORMATS]
        chosen_speech = (
            f"{current.tts_model} · {current.tts_format}" if current.tts_model and current.tts_format else None
        )
        self._select("speech", "Speech model and format", speech, chosen_speech, 3)
        private = discord.ui.Button(
            label="Answers: private" if current.private_answers else "Answers: public",
            emoji="🔒" if current.private_answers else "📢",
            style=discord.ButtonStyle.secondary,
            custom_id="settings:private",
            row=4,
        )
        private.callback = self._toggle_private  # type: ignore[method-assign]
        self.add_item(private)
        reset = discord.ui.Button(
            label="Reset all", style=discord.ButtonStyle.danger, custom_id="settings:reset", row=4
        )
        reset.callback = self._reset  # type: ignore[method-assign]
        self.add_item(reset)
        self.current = current

    def _select(self, name: str, label: str, values: list[str], chosen: str | None, row: int) -> None:
        options = [discord.SelectOption(label=f"{label}: default", value=CLEAR, default=chosen is None)]
        options += [discord.SelectOption(label=v[:100], value=v[:100], default=v == chosen) for v in values]
        select: discord.ui.Select[SettingsPanel] = discord.ui.Select(
            custom_id=f"settings:{name}", placeholder=label, options=options[:MAX_OPTIONS], row=row
        )

        async def picked(interaction: discord.Interaction[HyperealBot]) -> None:
            value = select.values[0]
            await self._save(interaction, name, None if value == CLEAR else value)

        select.callback = picked  # type: ignore[method-assign]
        self.add_item(select)

    async def _save(self, interaction: discord.Interaction[HyperealBot], name: str, value: str | None) -> None:
        repo = self.bot.services.member_settings
        if name == "speech":
            model, _, fmt = (value or "").partition(" · ")
            settings = await repo.update(self.guild_id, self.user_id, tts_model=model or None, tts_format=fmt or None)
        else:
            settings = await repo.update(self.guild_id, self.user_id, **{name: value})
        await self._show(interaction, settings)

    async def _toggle_private(self, interaction: discord.Interaction[HyperealBot]) -> None:
        repo = self.bot.services.member_settings
        settings = await repo.update(self.guild_id, self.user_id, private_answers=not self.current.private_answers)
        await self._show(interaction, settings)

    async def _reset(self, interaction: discord.Interaction[HyperealBot]) -> None:
        await self.bot.services.member_settings.reset(self.guild_id, self.user_id)
        await self._show(interaction, MemberSettings())

    async def _show(self, interaction: discord.Interaction[HyperealBot], settings: MemberSettings) -> None:
        embed = await settings_embed(self.bot, self.guild_id, settings)
        self.stop()
        panel = SettingsPanel(self.bot, self.guild_id, self.user_id, settings)
        await interaction.response.edit_message(embed=embed, view=panel)


async def settings_embed(bot: HyperealBot, guild_id: int, settings: MemberSettings) -> discord.Embed:
    """The panel's text: every setting and where its value comes from."""
    services = bot.services
    server = await services.guild_settings.get(guild_id)
    text = describe(
        settings,
        services.catalog,
        server_chat_model=server.default_chat_model,
        bot_chat_model=services.settings.default_chat_model,
    )
    embed = discord.Embed(title="Your settings in this server", description=text, colour=EMBED_COLOUR)
    embed.set_footer(text="Used when you leave a command's option out; an option you type always wins.")
    return embed


class MemberSettingsCog(commands.Cog, name="Settings"):
    """A member's own defaults."""

    settings = app_commands.Group(name="settings", description="Your own defaults in this server", guild_only=True)

    def __init__(self, bot: HyperealBot) -> None:
        self.bot = bot

    @settings.command(name="edit")
    async def edit(self, interaction: discord.Interaction[HyperealBot]) -> None:
        """See and change your defaults: image model, aspect ratio, chat model, speech, private answers."""
        guild_id = require_guild(interaction)
        current = await self.bot.services.member_settings.get(guild_id, interaction.user.id)
        embed = await settings_embed(self.bot, guild_id, current)
        panel = SettingsPanel(self.bot, guild_id, interaction.user.id, current)
        await interaction.response.send_message(embed=embed, view=panel, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @settings.command(name="reset")
    async def reset(self, interaction: discord.Interaction[HyperealBot]) -> None:
        """Forget all your defaults in this server (the server's and the bot's apply again)."""
        guild_id = require_guild(interaction)
        had = await self.bot.services.member_settings.reset(guild_id, interaction.user.id)
        text = "Your settings are reset: the server's defaults apply again." if had else "You had no settings here."
        await interaction.response.send_message(text, ephemeral=True)


async def setup(bot: HyperealBot) -> None:
    """Extension entry point."""
    await bot.add_cog(MemberSettingsCog(bot))

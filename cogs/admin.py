"""Server admin commands (Manage Server): /quota, /channels and /usage."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, get_args

import discord
from discord import app_commands
from discord.ext import commands

from bot.credits import BUDGET_CATEGORIES
from bot.credits.periods import Period
from bot.credits.usage import GROUP_BY, USAGE_PERIOD_LABELS, USAGE_PERIODS, usage_csv, usage_window
from bot.inputs import CAP_RANGE, CONFIRM_RANGE, check_choice, parse_percentages
from bot.usage_chart import usage_chart_png
from bot.wording import CATEGORY_LABELS, balance_text, credits_text
from cogs._shared import NO_MENTIONS, require_manager

if TYPE_CHECKING:
    from bot.bot import HyperealBot

MANAGERS = discord.Permissions(manage_guild=True)
CATEGORY_CHOICES = [app_commands.Choice(name=CATEGORY_LABELS[c], value=c) for c in BUDGET_CATEGORIES]
USAGE_PERIOD_CHOICES = [app_commands.Choice(name=USAGE_PERIOD_LABELS[p], value=p) for p in USAGE_PERIODS]
USAGE_BY_CHOICES = [app_commands.Choice(name=by.capitalize(), value=by) for by in GROUP_BY]


def _cap_text(cap: int | None) -> str:
    return "unlimited" if cap is None else credits_text(cap)


def _fit(text: str, limit: int = 4000) -> str:
    """An embed description under Discord's 4096 characters (cut on a line)."""
    if len(text) <= limit:
        return text
    return text[: text.rfind("\n", 0, limit)] + "\n…"


class Admin(commands.Cog):
    """Quotas, generation channels and usage reports for server admins."""

    quota = app_commands.Group(
        name="quota", description="Server credit caps (Manage Server)", default_permissions=MANAGERS, guild_only=True
    )
    channels = app_commands.Group(
        name="channels",
        description="Where each kind of generation is allowed (Manage Server)",
        default_permissions=MANAGERS,
        guild_only=True,
    )

    def __init__(self, bot: HyperealBot) -> None:
        self.bot = bot

    # ── /quota ───────────────────────────────────────────────────────────────

    @quota.command(name="show")
    async def quota_show(self, interaction: discord.Interaction[HyperealBot]) -> None:
        """The server's allowance, balance, period and every cap."""
        guild_id = require_manager(interaction)
        ledger = self.bot.services.ledger
        budget = await ledger.budget(guild_id)
        caps = await ledger.caps(guild_id)
        settings = await self.bot.services.guild_settings.get(guild_id)
        resets = f"<t:{budget.resets_at}:R>" if budget.resets_at else "never (a one-off pool)"
        embed = discord.Embed(title="Server quota", colour=discord.Colour.blurple())
        embed.add_field(
            name="Budget",
            value=(
                f"{balance_text(budget.balance, budget.allowance)} (allowance per {budget.period})"
                f" · {credits_text(budget.reserved)} held for requests in progress\nResets {resets}"
                + ("\n❄️ Frozen" if budget.frozen else "")
            ),
            inline=False,
        )
        default = ", ".join(f"{CATEGORY_LABELS[c]} {_cap_text(v)}" for c, v in caps.default.items())
        embed.add_field(name="Default cap per member", value=default or "none (only the balance limits)", inline=False)
        roles = [
            f"<@&{role_id}>: " + ", ".join(f"{CATEGORY_LABELS[c]} {_cap_text(v)}" for c, v in per.items())
            for role_id, per in caps.roles.items()
        ]
        embed.add_field(name="Role caps (a member gets the highest)", value="\n".join(roles) or "none", inline=False)
        users = [
            f"<@{user_id}>: " + ", ".join(f"{CATEGORY_LABELS[c]} {_cap_text(v)}" for c, v in per.items())
            for user_id, per in caps.users.items()
        ]
        embed.add_field(name="Member caps (override roles)", value="\n".join(users[:20]) or "none", inline=False)
        alerts = (
            f"<#{settings.alert_channel_id}> at " + ", ".join(f"{t}%" for t in settings.alert_thresholds)
            if settings.alert_channel_id
            else "off"
        )
        embed.add_field(name="Budget alerts", value=alerts, inline=False)
        embed.add_field(name="Confirmation above", value=credits_text(settings.confirm_threshold), inline=False)
        buttons = "anyone (the member who presses pays)" if settings.shared_buttons else "only the member who asked"
        embed.add_field(name="Image result buttons", value=buttons, inline=False)
        notice = "shown once per member" if settings.voice_clone_notice else "off"
        embed.add_field(name="Voice-clone consent notice", value=notice, inline=False)
        await interaction.response.send_message(embed=embed, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @quota.command(name="user-cap")
    @app_commands.describe(
        member="Whose cap to set",
        category="Which kind of generation",
        cap="Credits per period (leave empty to remove this member's own cap)",
        unlimited="No cap at all for this member in this category",
    )
    @app_commands.choices(category=CATEGORY_CHOICES)
    async def user_cap(
        self,
        interaction: discord.Interaction[HyperealBot],
        member: discord.Member,
        category: app_commands.Choice[str],
        cap: app_commands.Range[int, CAP_RANGE[0], CAP_RANGE[1]] | None = None,
        unlimited: bool = False,
    ) -> None:
        """Set one member's cap for a category (overrides their roles' caps)."""
        guild_id = require_manager(interaction)
        ledger = self.bot.services.ledger
        if cap is None and not unlimited:
            await ledger.clear_user_cap(guild_id, member.id, category.value, by=interaction.user.id)
            text = f"Removed {member.mention}'s own {category.name} cap: their roles' or the default cap applies."
        else:
            await ledger.set_user_cap(
                guild_id, member.id, category.value, None if unlimited else cap, by=interaction.user.id
            )
            text = f"{member.mention} can now spend {_cap_text(None if unlimited else cap)} on {category.name}."
        await interaction.response.send_message(text + " (per period)", ephemeral=True, allowed_mentions=NO_MENTIONS)

    @quota.command(name="default-cap")
    @app_commands.describe(category="Which kind of generation", cap="Credits per period (empty = no default cap)")
    @app_commands.choices(category=CATEGORY_CHOICES)
    async def default_cap(
        self,
        interaction: discord.Interaction[HyperealBot],
        category: app_commands.Choice[str],
        cap: app_commands.Range[int, CAP_RANGE[0], CAP_RANGE[1]] | None = None,
    ) -> None:
        """Set the cap every member gets in a category unless a role or their own cap says otherwise."""
        guild_id = require_manager(interaction)
        ledger = self.bot.services.ledger
        if cap is None:
            await ledger.clear_user_cap(guild_id, 0, category.value, by=interaction.user.id)
            text = f"No default {category.name} cap any more."
        else:
            await ledger.set_user_cap(guild_id, 0, category.value, cap, by=interaction.user.id)
            text = f"Every member can spend up to {credits_text(cap)} on {category.name} per period by default."
        await interaction.response.send_message(text, ephemeral=True)

    @quota.command(name="role-cap")
    @app_commands.describe(
        role="Which role",
        category="Which kind of generation",
        cap="Credits per period (leave empty to remove the role's cap)",
        unlimited="Members with this role are not capped in this category",
    )
    @app_commands.choices(category=CATEGORY_CHOICES)
    async def role_cap(
        self,
        interaction: discord.Interaction[HyperealBot],
        role: discord.Role,
        category: app_commands.Choice[str],
        cap: app_commands.Range[int, CAP_RANGE[0], CAP_RANGE[1]] | None = None,
        unlimited: bool = False,
    ) -> None:
        """Set a role's cap for a category (a member gets the highest of their roles')."""
        guild_id = require_manager(interaction)
        ledger = self.bot.services.ledger
        if cap is None and not unlimited:
            await ledger.clear_role_cap(guild_id, role.id, category.value, by=interaction.user.id)
            text = f"Removed the {category.name} cap of {role.mention}."
        else:
            await ledger.set_role_cap(
                guild_id, role.id, category.value, None if unlimited else cap, by=interaction.user.id
            )
            text = f"Members with {role.mention} can spend {_cap_text(None if unlimited else cap)} on {category.name}."
        await interaction.response.send_message(text + " (per period)", ephemeral=True, allowed_mentions=NO_MENTIONS)

    @quota.command(name="period")
    @app_commands.describe(period="How often the balance goes back to the allowance")
    async def period(self, interaction: discord.Interaction[HyperealBot], period: Period) -> None:
        """Change how often the server's balance resets (starts a fresh period now)."""
        guild_id = require_manager(interaction)
        period = check_choice(period, get_args(Period), name="The period")
        ledger = self.bot.services.ledger
        budget = await ledger.budget(guild_id)
        updated = await ledger.set_allowance(guild_id, budget.allowance, period, by=interaction.user.id)
        resets = f"resets <t:{updated.resets_at}:R>" if updated.resets_at else "never resets (a one-off pool)"
        await interaction.response.send_message(
            f"The server's {updated.allowance}-credit allowance now {resets}; "
            f"{balance_text(updated.balance, updated.allowance)}.",
            ephemeral=True,
        )

    @quota.command(name="alerts")
    @app_commands.describe(
        channel="Where to post budget alerts (leave empty to switch alerts off)",
        threshold="Percentage(s) of the allowance, e.g. 80 or 80,100 (default 80,100)",
    )
    async def alerts(
        self,
        interaction: discord.Interaction[HyperealBot],
        channel: discord.TextChannel | None = None,
        threshold: str = "80,100",
    ) -> None:
        """Post to an admin channel when spend crosses thresholds (once per period each)."""
        guild_id = require_manager(interaction)
        values = parse_percentages(threshold)
        repo = self.bot.services.guild_settings
        await repo.update(
            guild_id,
            by=interaction.user.id,
            alert_channel_id=channel.id if channel else None,
            alert_thresholds=values,
        )
        text = (
            f"Budget alerts go to {channel.mention} at " + ", ".join(f"{v}%" for v in values) + "."
            if channel
            else "Budget alerts are off."
        )
        await interaction.response.send_message(text, ephemeral=True)

    @quota.command(name="confirm")
    @app_commands.describe(credits="Ask for confirmation before requests costing more than this")
    async def confirm(
        self,
        interaction: discord.Interaction[HyperealBot],
        credits: app_commands.Range[int, CONFIRM_RANGE[0], CONFIRM_RANGE[1]],
    ) -> None:
        """Set the price above which members confirm before spending."""
        guild_id = require_manager(interaction)
        await self.bot.services.guild_settings.update(guild_id, by=interaction.user.id, confirm_threshold=credits)
        await interaction.response.send_message(
            f"Requests over {credits_text(credits)} now ask for confirmation first.", ephemeral=True
        )

    @quota.command(name="shared-buttons")
    @app_commands.describe(
        state="on: anyone may press Reroll, Edit, Animate and To 3D (and pays); off: only the requester"
    )
    async def shared_buttons(self, interaction: discord.Interaction[HyperealBot], state: Literal["on", "off"]) -> None:
        """Let every member use the buttons under image results, or only the member who asked."""
        guild_id = require_manager(interaction)
        shared = check_choice(state, ("on", "off"), name="The state") == "on"
        await self.bot.services.guild_settings.update(guild_id, by=interaction.user.id, shared_buttons=shared)
        text = (
            "Anyone can now press the buttons under image results; the member who presses pays."
            if shared
            else "Only the member who asked can now press the buttons under their image results."
        )
        await interaction.response.send_message(text, ephemeral=True)

    @quota.command(name="voice-clone-notice")
    @app_commands.describe(
        state="on: each member accepts a consent notice before their first voice clone; off: no notice"
    )
    async def voice_clone_notice(
        self, interaction: discord.Interaction[HyperealBot], state: Literal["on", "off"]
    ) -> None:
        """Show (or stop showing) the one-time consent notice before a member's first /voice-clone."""
        guild_id = require_manager(interaction)
        shown = check_choice(state, ("on", "off"), name="The state") == "on"
        await self.bot.services.guild_settings.update(guild_id, by=interaction.user.id, voice_clone_notice=shown)
        text = (
            "Each member now accepts the voice-clone notice (only voices they may use; the sample goes to Hypereal) "
            "before their first /voice-clone here."
            if shown
            else "The voice-clone notice is off here: members clone voices without accepting it first."
        )
        await interaction.response.send_message(text, ephemeral=True)

    @quota.command(name="block")
    @app_commands.describe(member="Who may no longer make paid requests here", reason="Shown to them (optional)")
    async def block(
        self,
        interaction: discord.Interaction[HyperealBot],
        member: discord.Member,
        reason: app_commands.Range[str, 1, 200] | None = None,
    ) -> None:
        """Block a member from every paid command on this server."""
        guild_id = require_manager(interaction)
        changed = await self.bot.services.moderation.block(guild_id, member.id, by=interaction.user.id, reason=reason)
        text = (
            f"{member.mention} is now blocked from paid commands here; /quota unblock lets them back."
            if changed
            else f"{member.mention} was already blocked."
        )
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @quota.command(name="unblock")
    @app_commands.describe(member="Who may make paid requests again")
    async def unblock(self, interaction: discord.Interaction[HyperealBot], member: discord.Member) -> None:
        """Let a blocked member use paid commands again."""
        guild_id = require_manager(interaction)
        changed = await self.bot.services.moderation.unblock(guild_id, member.id, by=interaction.user.id)
        text = f"{member.mention} can use paid commands again." if changed else f"{member.mention} was not blocked."
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @quota.command(name="audit")
    @app_commands.describe(member="Only changes made by or about this member")
    async def audit(self, interaction: discord.Interaction[HyperealBot], member: discord.Member | None = None) -> None:
        """The latest 25 admin and operator changes on this server: who, when, what, old → new."""
        guild_id = require_manager(interaction)
        entries = await self.bot.services.audit.latest(guild_id, actor_or_target=member.id if member else None)
        lines = [entry.line() for entry in entries]
        embed = discord.Embed(
            title="Admin audit log" + (f" · {member.display_name}" if member else ""),
            description=_fit("\n".join(lines)) if lines else "No changes recorded yet.",
            colour=discord.Colour.blurple(),
        )
        embed.set_footer(text="Latest 25, newest first.")
        await interaction.response.send_message(embed=embed, ephemeral=True, allowed_mentions=NO_MENTIONS)

    # ── /channels ────────────────────────────────────────────────────────────

    @channels.command(name="enable")
    @app_commands.describe(category="Which kind of generation", channel="Where (default: this channel)")
    @app_commands.choices(category=CATEGORY_CHOICES)
    async def channels_enable(
        self,
        interaction: discord.Interaction[HyperealBot],
        category: app_commands.Choice[str],
        channel: discord.TextChannel | None = None,
    ) -> None:
        """Allow a category in a channel; once enabled somewhere, it is allowed only where enabled."""
        guild_id = require_manager(interaction)
        target = channel.id if channel else interaction.channel_id or 0
        policy = self.bot.services.channels
        await policy.enable(guild_id, category.value, target, by=interaction.user.id)
        now = await policy.policy(guild_id, category.value)
        await interaction.response.send_message(f"{category.name}: {now.describe()}.", ephemeral=True)

    @channels.command(name="disable")
    @app_commands.describe(category="Which kind of generation", channel="Where (default: this channel)")
    @app_commands.choices(category=CATEGORY_CHOICES)
    async def channels_disable(
        self,
        interaction: discord.Interaction[HyperealBot],
        category: app_commands.Choice[str],
        channel: discord.TextChannel | None = None,
    ) -> None:
        """Forbid a category in a channel."""
        guild_id = require_manager(interaction)
        target = channel.id if channel else interaction.channel_id or 0
        policy = self.bot.services.channels
        await policy.disable(guild_id, category.value, target, by=interaction.user.id)
        now = await policy.policy(guild_id, category.value)
        await interaction.response.send_message(f"{category.name}: {now.describe()}.", ephemeral=True)

    @channels.command(name="reset")
    @app_commands.describe(category="Which kind of generation")
    @app_commands.choices(category=CATEGORY_CHOICES)
    async def channels_reset(
        self, interaction: discord.Interaction[HyperealBot], category: app_commands.Choice[str]
    ) -> None:
        """Allow a category everywhere again."""
        guild_id = require_manager(interaction)
        await self.bot.services.channels.reset(guild_id, category.value, by=interaction.user.id)
        await interaction.response.send_message(f"{category.name}: everywhere.", ephemeral=True)

    @channels.command(name="show")
    async def channels_show(self, interaction: discord.Interaction[HyperealBot]) -> None:
        """Where each kind of generation is allowed."""
        guild_id = require_manager(interaction)
        policies = await self.bot.services.channels.show(guild_id, BUDGET_CATEGORIES)
        lines = [f"**{CATEGORY_LABELS[p.category]}**: {p.describe()}" for p in policies]
        embed = discord.Embed(
            title="Generation channels", description="\n".join(lines), colour=discord.Colour.blurple()
        )
        embed.set_footer(text="Threads follow their parent channel.")
        await interaction.response.send_message(embed=embed, ephemeral=True)

    # ── /usage ───────────────────────────────────────────────────────────────

    @app_commands.command(name="usage")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    @app_commands.describe(
        period="The server's budget period now, the one before it, or the last 30 days", by="How to group the spend"
    )
    @app_commands.choices(period=USAGE_PERIOD_CHOICES, by=USAGE_BY_CHOICES)
    async def usage(
        self,
        interaction: discord.Interaction[HyperealBot],
        period: str = "this_period",
        by: str = "member",
    ) -> None:
        """Spend by member, category or channel: a chart (who, and per day) and a CSV file."""
        guild_id = require_manager(interaction)
        period = check_choice(period, USAGE_PERIODS, name="The period")
        by = check_choice(by, GROUP_BY, name="Group by")
        budget = await self.bot.services.ledger.budget(guild_id)
        window = usage_window(period, budget.period, budget.period_start, int(self.bot.services.clock()))
        await interaction.response.defer(ephemeral=True, thinking=True)
        usage = await self.bot.services.usage.report(
            guild_id, window, by, cached_name=self._cached_name(interaction, by)
        )
        title = f"Spend by {by} — {window.describe()}"
        # Drawing takes a few hundred milliseconds of CPU: off the event loop.
        png = await asyncio.to_thread(usage_chart_png, usage, title)
        lines = [
            f"{self._mention(by, row.key, row.label)} — {credits_text(row.credits)} ({row.requests})"
            for row in usage.rows[:15]
        ]
        if len(usage.rows) > 15:
            lines.append(f"… and {len(usage.rows) - 15} more in the CSV.")
        embed = discord.Embed(
            title=f"Spend by {by}",
            description="\n".join(lines) or "No credits were spent in this period.",
            colour=discord.Colour.blurple(),
        )
        embed.set_image(url="attachment://usage.png")
        embed.set_footer(text=f"Total {credits_text(usage.total)} · {window.describe()}")
        await interaction.followup.send(
            embed=embed,
            files=[
                discord.File(io.BytesIO(png), filename="usage.png"),
                discord.File(io.BytesIO(usage_csv(usage)), filename="usage.csv"),
            ],
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )

    @staticmethod
    def _mention(by: str, key: str, label: str) -> str:
        """The name, escaped, with a mention beside it (mentions render without pinging: they are disabled)."""
        if by == "member" and key.isdigit():
            return f"**{discord.utils.escape_markdown(label)}** (<@{key}>)"
        if by == "channel" and key.isdigit() and key != "0":
            return f"<#{key}>"
        return discord.utils.escape_markdown(label)

    @staticmethod
    def _cached_name(interaction: discord.Interaction[HyperealBot], by: str) -> Callable[[str], str | None]:
        """Names from the gateway cache, for rows stored without one (no fetches: no members intent)."""
        guild = interaction.guild

        def lookup(key: str) -> str | None:
            if guild is None or not key.isdigit():
                return None
            if by == "member":
                member = guild.get_member(int(key))
                return member.display_name if member else None
            if by == "channel":
                channel = guild.get_channel_or_thread(int(key))
                return channel.name if channel else None
            return None

        return lookup


async def setup(bot: HyperealBot) -> None:
    """Extension entry point."""
    await bot.add_cog(Admin(bot))

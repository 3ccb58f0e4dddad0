"""Discord helpers shared by the cogs (not an extension: the leading underscore keeps it out of the loader)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

import discord

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

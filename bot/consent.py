"""Voice-clone consent: a one-time notice per member per server before their first ``/voice-clone``.

Cloning a voice sends a recording of someone to Hypereal and makes them say things: the member
confirms once, per server, that they have the right to use the voice. An admin can turn the notice
off for a server (``/quota voice-clone-notice off``, audited like every setting).
"""

from __future__ import annotations

from collections.abc import Callable

from bot.credits import GuildSettingsRepo
from bot.db import Database

NOTICE = (
    "**Before your first voice clone on this server**\n"
    "• Clone only voices you have the right to use: your own, or someone who agreed to it.\n"
    "• The sample you attach is sent to Hypereal, the service that makes the clone.\n"
    "Accept to go on (asked once on this server); nothing is charged until you do."
)


class VoiceCloneConsent:
    """Who has accepted the voice-clone notice on which server, and whether the server shows it."""

    def __init__(self, db: Database, guild_settings: GuildSettingsRepo, clock: Callable[[], float]) -> None:
        self.db = db
        self.guild_settings = guild_settings
        self.clock = clock

    async def needed(self, guild_id: int, user_id: int) -> bool:
        """True when the member must see and accept the notice before cloning a voice here."""
        if not (await self.guild_settings.get(guild_id)).voice_clone_notice:
            return False
        accepted = await self.db.fetch_value(
            "SELECT COUNT(*) FROM voice_clone_consents WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
        )
        return not accepted

    async def accept(self, guild_id: int, user_id: int) -> None:
        """Remember that the member accepted (idempotent)."""
        await self.db.execute(
            "INSERT INTO voice_clone_consents (guild_id, user_id, accepted_at) VALUES (?, ?, ?) "
            "ON CONFLICT (guild_id, user_id) DO NOTHING",
            (guild_id, user_id, int(self.clock())),
        )
